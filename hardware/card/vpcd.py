"""The virtual card on vsmartcard's vpcd driver: pcscd sees it inserted while we are connected.

vpcd (loaded by pcscd from /etc/reader.conf.d/vpcd) listens on TCP port 35963 (slot 0) and
35964 (slot 1). We connect as the card. Frames: 2-byte big-endian length, then the bytes.
A 1-byte frame is a control: 0 power off, 1 power on, 2 reset, 4 "send your ATR".
Anything longer is a command APDU; we answer with the response APDU.

TCP_NODELAY plus TCP_QUICKACK (re-armed before every recv: Linux clears it) avoid the ~40 ms
Nagle/delayed-ACK stall per APDU. If the connection drops (pcscd stopped: "reader unplugged")
the card reconnects with backoff, like a card left in a reader that is plugged back in.
Test hooks make it misbehave like a real card: pulled at or after APDU n, silent at APDU n
(`stall_at_apdu`), or silent from now on (`stop_answering`, a chip that hung while in the reader).
vpcd binds every interface: this is a test and field-tester tool, never for a production device.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path

from hardware.card import apdu as apdu_mod
from hardware.card.applet import Applet

BASE_PORT = 35963  # CHANNELID 0x8C7B in Debian's /etc/reader.conf.d/vpcd
PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")  # pcsc-lite's one socket per machine
CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0, 1, 2, 4


def pcscd_answers(path: Path = PCSCD_SOCKET) -> bool:
    """Is a pcscd accepting connections on its socket?"""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


def vpcd_listening(port: int = BASE_PORT) -> bool:
    """Is vpcd (inside a running pcscd) waiting for a card on this port?"""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def pidfile(run_dir: Path, slot: int) -> Path:
    """Where `ewarung card insert` writes its PID once its card is in vpcd's reader `slot` (after
    installing its signal handlers): the demo deck and the tests wait for it."""
    return run_dir / f"virtual-card-slot{slot}.pid"


class Pulled(Exception):
    """The test hook decided to pull the card now."""


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        if hasattr(socket, "TCP_QUICKACK"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("vpcd closed the connection")
        buf += chunk
    return bytes(buf)


class VirtualCard:
    """Holds one connection to vpcd for one Applet until stop()."""

    def __init__(self, applet: Applet, *, host: str = "127.0.0.1", slot: int = 0,
                 pull_at_apdu: int | None = None, pull_after_apdu: int | None = None,
                 stall_at_apdu: int | None = None,
                 log: Callable[[str], None] = lambda s: None) -> None:
        self.applet = applet
        self.address = (host, BASE_PORT + slot)
        self.pull_at_apdu = pull_at_apdu  # close before processing APDU n (1-based, counted from insert)
        self.pull_after_apdu = pull_after_apdu  # process APDU n, then close without answering
        self.stall_at_apdu = stall_at_apdu  # APDU n is never answered (a hung chip) until stop()
        self.stalled = threading.Event()  # set once the stall began
        self.mute = False  # stop_answering(): no APDU is answered any more (a plain flag: set from a signal handler)
        self.log = log
        self.response_filter: Callable[[bytes, bytes], bytes] | None = None  # tests: (command, response) -> sent
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self.connected = threading.Event()
        self.apdus = 0

    def connect(self) -> socket.socket:
        """One connection to vpcd's slot, Nagle off so each answer leaves at once; no timeout once connected."""
        sock = socket.create_connection(self.address, timeout=2.0)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def serve_forever(self, on_connected: Callable[[], None] | None = None, retry: bool = True) -> None:
        """Be the card in vpcd's reader until stop() or a test-hook pull, reconnecting with backoff when pcscd
        goes away (a reader unplugged and back); `on_connected` runs once inserted, `retry` false raises instead."""
        delay = 0.1
        while not self._stop.is_set():
            try:
                self._sock = self.connect()
            except OSError as exc:
                if not retry:
                    raise
                self.log(f"vpcd at {self.address[0]}:{self.address[1]} not reachable ({exc}); retrying")
                self._stop.wait(delay)
                delay = min(delay * 2, 2.0)
                continue
            delay = 0.1
            try:
                self._serve(self._sock, on_connected)
            except Pulled:
                self.log("card pulled (test hook)")
                self._close()
                return
            except OSError as exc:
                if not self._stop.is_set():
                    self.log(f"connection lost: {exc}; reconnecting")
            finally:
                self.connected.clear()
                self._close()
            self.applet.power_on()

    def _serve(self, sock: socket.socket, on_connected: Callable[[], None] | None) -> None:
        first = True
        while not self._stop.is_set():
            (length,) = struct.unpack(">H", _recv_exact(sock, 2))
            frame = _recv_exact(sock, length) if length else b""
            if first:  # vpcd accepted us and pcscd is powering the card: it is in the reader now
                first = False
                self.connected.set()
                self.log("card inserted")
                if on_connected:
                    on_connected()
            if length == 1:
                ctrl = frame[0]
                if ctrl in (CTRL_ON, CTRL_RESET):
                    self.applet.power_on()
                elif ctrl == CTRL_OFF:
                    self.applet.power_on()  # RAM state is lost either way
                elif ctrl == CTRL_ATR:
                    sock.sendall(struct.pack(">H", len(apdu_mod.ATR)) + apdu_mod.ATR)
                continue
            self.apdus += 1
            if self.pull_at_apdu == self.apdus:
                raise Pulled()
            if self.stall_at_apdu == self.apdus or self.mute:
                self._stall(sock)
                return
            response = self.applet.process(frame)
            if self.pull_after_apdu == self.apdus:
                raise Pulled()
            if self.response_filter is not None:
                response = self.response_filter(frame, response)
            sock.sendall(struct.pack(">H", len(response)) + response)

    def stop_answering(self) -> None:
        """From the next APDU on, answer none (a hung chip) until stop(). Safe in a signal handler."""
        self.mute = True

    def _stall(self, sock: socket.socket) -> None:
        """Hold the connection open and say nothing, until stop() or pcscd drops the connection
        (then serve_forever reconnects, and a muted card stalls again: it stays hung until pulled)."""
        self.log(f"not answering APDU {self.apdus} (test hook)")
        self.stalled.set()
        while not self._stop.is_set():
            if not sock.recv(4096):  # pcscd sends nothing while it waits for the answer
                raise ConnectionError("vpcd closed the connection")

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def stop(self) -> None:
        """Pull the card: serve_forever ends and pcscd sees the card removed."""
        self._stop.set()
        self._close()
