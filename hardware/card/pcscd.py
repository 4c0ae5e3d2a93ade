"""pcscd with vsmartcard's vpcd reader, for the field tester's deck: reuse the machine's daemon, or
run one as our child and stop it with us. Why it cannot be used is a DeckUnavailable that says how
to fix it, in words the counter's catalog can translate (the demo falls back to the in-process deck).

Test and field-tester tool only: vpcd binds every interface and never runs on a shop's appliance.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from hardware.card.vpcd import PCSCD_SOCKET, pcscd_answers, vpcd_listening

PCSCD_COMMAND = ("pcscd", "-f")
BOOTSTRAP_FIX = "run `sudo ./scripts/bootstrap.sh` (installs pcscd and vsmartcard-vpcd), then start the demo again"
VPCD_FIX = ("install vsmartcard-vpcd: run `sudo ./scripts/bootstrap.sh` (installs pcscd and vsmartcard-vpcd), "
            "then start the demo again")


class DeckUnavailable(Exception):
    """pcscd + vpcd cannot be used: `why` it cannot, and how to `fix` it (English, for the log).

    `why_id` and `fix_id` are the same texts as message ids of the screens' gettext catalog with
    `{name}` fields filled from `fields`, so the field tester's panel can say them in the counter's
    language (`fallback_note`)."""

    def __init__(self, why: str, fix: str, **fields: object) -> None:
        self.why_id, self.fix_id, self.fields = why, fix, fields
        self.why, self.fix = why.format(**fields), fix.format(**fields)
        super().__init__(f"{self.why}; {self.fix}")

    def worded(self, translate: Callable[..., str]) -> tuple[str, str]:
        """Why and fix, worded by `translate`."""
        return translate(self.why_id, **self.fields), translate(self.fix_id, **self.fields)


def die_with_parent() -> None:
    """preexec_fn of our children: SIGTERM to the child when the demo dies, even by SIGKILL, so no
    pcscd or virtual card outlives the demo that started it."""
    import ctypes

    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the demo died before prctl took effect
        os._exit(1)


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    """Poll `predicate` until it holds or `timeout` passes: daemons and card processes announce
    nothing, they only become reachable."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def stop_group(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGTERM the child's process group (it runs in its own session), SIGKILL if it lingers."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Pcscd:
    """pcscd with the vpcd reader: a running daemon is reused; otherwise `pcscd -f` runs as our child
    (its own process group, stopped by stop() and if the demo dies)."""

    def __init__(self, port: int, log_path: Path, socket_path: Path | None = None,
                 command: tuple[str, ...] | None = None, timeout: float = 10.0) -> None:
        self.port, self.log_path, self.timeout = port, log_path, timeout
        self.socket_path = socket_path or PCSCD_SOCKET
        self.command = command or PCSCD_COMMAND
        self.proc: subprocess.Popen | None = None

    @property
    def owned(self) -> bool:
        """Whether we started this pcscd (only then may the demo stop it to unplug the reader)."""
        return self.proc is not None

    def ensure(self) -> None:
        """Make pcscd + vpcd usable or raise DeckUnavailable. Blocks up to ~2 x timeout: not on the UI thread."""
        if pcscd_answers(self.socket_path):
            if not wait_until(lambda: vpcd_listening(self.port), 3):
                raise DeckUnavailable("pcscd is running but vpcd is not listening on port {port}",
                                      "install vsmartcard-vpcd (`sudo ./scripts/bootstrap.sh`), then restart pcscd "
                                      "(`sudo systemctl restart pcscd`)", port=self.port)
            return
        exe = shutil.which(self.command[0])
        if exe is None:
            raise DeckUnavailable("pcscd is not installed", BOOTSTRAP_FIX)
        if vpcd_listening(self.port):
            raise DeckUnavailable("pcscd is not running and port {port} (vpcd's) is used by another program",
                                  "stop that program (`sudo ss -ltnp 'sport = :{port}'` names it)", port=self.port)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen([exe, *self.command[1:]], stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                         start_new_session=True, preexec_fn=die_with_parent)
        proc = self.proc
        if not wait_until(lambda: proc.poll() is not None or pcscd_answers(self.socket_path), self.timeout):
            self.stop()
            raise DeckUnavailable("pcscd did not open {socket} within {seconds} s",
                                  "see {log}; or start it yourself: `sudo systemctl start pcscd`",
                                  socket=self.socket_path, seconds=f"{self.timeout:.0f}", log=self.log_path)
        if proc.poll() is not None:
            self.proc = None
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-1:] or [""]
            fix = ("pcscd needs root: run `sudo ./scripts/demo.sh`, or start it once with `sudo systemctl start pcscd`"
                   if os.geteuid() != 0 else "see {log}")
            raise DeckUnavailable("pcscd could not start (exit {code}: {output})", fix,
                                  code=proc.returncode, output=tail[0][-160:], log=self.log_path)
        if not wait_until(lambda: vpcd_listening(self.port), self.timeout):
            self.stop()
            raise DeckUnavailable("pcscd started but vpcd is not listening on port {port}", VPCD_FIX, port=self.port)

    def stop(self) -> None:
        """Stop the pcscd we started (a reused one is left alone) and wait until its socket is gone."""
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_group(proc, 10)
            wait_until(lambda: not pcscd_answers(self.socket_path), 5)

