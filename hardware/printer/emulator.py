"""The virtual printer: a network receipt printer on loopback for field testers and tests.

It accepts ESC/POS on TCP (like port 9100 of a real printer), answers DLE EOT status queries
in-stream, and for every cut writes the receipt as receipt-NNNN.png (what a person looks at),
.txt (the decoded lines) and .bin (the exact bytes). It can be put into a fault:
paper_out, cover_open or offline (silent: no status answers, nothing printed), by API
(set_state) or by writing one word into OUT/printer-state (ok | paper_out | paper_low |
cover_open | offline), which it re-reads at every connection and status query.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from hardware.printer.decoder import Cut, Decoder, Document, StatusQuery
from hardware.printer.render import save_png

STATES = ("ok", "paper_out", "paper_low", "cover_open", "offline")
JOB_PREFIXES = ("Cetak ", "Print ")


def status_byte(n: int, state: str) -> int:
    """The DLE EOT n answer a real printer gives in `state`, with the fixed bits clients check."""
    base = 0x12
    if n == 1:
        return base | (0x08 if state in ("paper_out", "cover_open") else 0)
    if n == 2:
        return base | (0x04 if state == "cover_open" else 0) | (0x20 if state == "paper_out" else 0)
    if n == 3:
        return base
    if n == 4:
        return base | (0x60 if state == "paper_out" else 0) | (0x0C if state == "paper_low" else 0)
    return base


@dataclass
class PrintedDocument:
    """One piece of paper the virtual printer produced, with its
    bytes, its picture and the job id printed on it."""

    number: int
    document: Document
    data: bytes
    png: Path | None
    job_id: str = ""


@dataclass
class VirtualPrinter:
    """A network receipt printer on loopback that prints to files
    and can be put into faults, for field testers and tests."""

    port: int = 9100
    out_dir: Path = Path("printed")
    width_mm: int = 58
    host: str = "127.0.0.1"
    state: str = "ok"
    render_png: bool = True
    printed: list[PrintedDocument] = field(default_factory=list)
    discarded_bytes: int = 0
    status_queries: int = 0

    def __post_init__(self) -> None:
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the virtual printer listens on loopback only (127.0.0.1)")
        if self.state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        self.out_dir = Path(self.out_dir)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.on_printed = None

    # --- control -------------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        """The file whose one word puts the printer into a fault from outside the process."""
        return self.out_dir / "printer-state"

    def set_state(self, state: str) -> None:
        """Put the printer into a fault (or back to ok),
        keeping the state file in step if there is one."""
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        self.state = state
        if self.state_file.exists():
            self.state_file.write_text(state + "\n")

    def current_state(self) -> str:
        """The state now: the state file's word when it has a
        known one, else the state set in-process."""
        try:
            word = self.state_file.read_text().strip()
        except OSError:
            return self.state
        return word if word in STATES else self.state

    @property
    def job_ids(self) -> list[str]:
        """The job ids printed on the paper so far, to check a job printed once."""
        return [d.job_id for d in self.printed if d.job_id]

    # --- server --------------------------------------------------------------------------
    def start(self) -> None:
        """Listen on loopback (port 0 picks a free one) and serve connections on a daemon thread."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(8)
        sock.settimeout(0.2)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="virtual-printer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        if self._sock:
            self._sock.close()

    def _serve(self) -> None:
        assert self._sock
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        dec = Decoder()
        current = Document()
        raw = bytearray()
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                state = self.current_state()
                if state == "offline":
                    self.discarded_bytes += len(data)  # a dead printer: no answer, no paper
                    continue
                raw += data
                for item in dec.feed(data):
                    if isinstance(item, StatusQuery):
                        self.status_queries += 1
                        try:
                            conn.sendall(bytes([status_byte(item.n, self.current_state())]))
                        except OSError:
                            return
                        continue
                    if self.current_state() in ("paper_out", "cover_open"):
                        self.discarded_bytes += 1
                        continue
                    current.items.append(item)
                    if dec.codepage is not None:
                        current.codepage = dec.codepage
                    if isinstance(item, Cut):
                        current.cut = True
                        self._finish(current, bytes(raw))
                        current, raw = Document(), bytearray()

    def _finish(self, doc: Document, data: bytes) -> None:
        job_id = ""
        for text in doc.texts:
            for prefix in JOB_PREFIXES:
                if text.strip().startswith(prefix):
                    idx = doc.texts.index(text)
                    job_id = "".join(t.strip() for t in doc.texts[idx:]).removeprefix(prefix.strip()).strip()
        with self._lock:
            number = len(self.printed) + 1
            stem = self.out_dir / f"receipt-{number:04d}"
            png = save_png(doc, stem.with_suffix(".png"), self.width_mm) if self.render_png else None
            stem.with_suffix(".txt").write_text(doc.text() + "\n", encoding="utf-8")
            stem.with_suffix(".bin").write_bytes(data)
            rec = PrintedDocument(number, doc, data, png, job_id)
            self.printed.append(rec)
            with (self.out_dir / "printed.jsonl").open("a") as fh:
                fh.write(json.dumps({"n": number, "job_id": job_id, "png": str(png) if png else None,
                                     "qr": [q.data for q in doc.qr_codes]}) + "\n")
        if self.on_printed:
            self.on_printed(rec)
