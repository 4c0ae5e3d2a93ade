"""The real PC/SC stack for tests: one pcscd per machine (fixed socket /run/pcscd/pcscd.comm)
with vsmartcard's vpcd reader, and virtual cards inserted as `ewarung card insert` processes.

Only the card tests start or stop pcscd. If a pcscd is already running (started by someone
else), it is used as is and tests that must stop it are skipped.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hardware.card.vpcd import pcscd_answers, pidfile, vpcd_listening

PIDFILE = Path("/run/pcscd/pcscd.pid")
ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class PcscStack:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.owned = False
        self.cards: list[subprocess.Popen] = []
        self.run_dir: Path | None = None

    # --- pcscd -----------------------------------------------------------------------
    def start(self) -> None:
        if pcscd_answers():
            return
        if shutil.which("pcscd") is None:
            pytest.skip("pcscd is not installed (apt-get install pcscd vsmartcard-vpcd)")
        self.proc = subprocess.Popen(["pcscd", "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        self.owned = True
        wait_for(pcscd_answers, 10, "pcscd socket")
        wait_for(vpcd_listening, 10, "vpcd listening on 35963 (is vsmartcard-vpcd installed?)")

    def stop(self) -> None:
        """Stop pcscd: to every client, the reader is unplugged."""
        if not self.owned or self.proc is None:
            pytest.skip("pcscd was not started by these tests; not stopping someone else's daemon")
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        wait_for(lambda: not pcscd_answers(), 5, "pcscd to stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def shutdown(self) -> None:
        self.remove_all()
        if self.owned and self.proc is not None:
            self.stop()

    # --- virtual cards ---------------------------------------------------------------
    def env(self) -> dict:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        if self.run_dir is not None:
            env["EWARUNG_RUN_DIR"] = str(self.run_dir)
        return env

    def insert(self, cardfile: Path, *extra: str, slot: int = 0) -> subprocess.Popen:
        """Insert a virtual card (foreground `ewarung card insert` as a child); returns once connected."""
        assert self.run_dir is not None
        pid_path = pidfile(self.run_dir, slot)
        proc = subprocess.Popen(
            [sys.executable, "-m", "pos.cli.main", "card", "insert", str(cardfile), "--reader", str(slot),
             "--quiet", *extra],
            env=self.env(), cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True,
        )
        self.cards.append(proc)
        wait_for(lambda: (pid_path.exists() and pid_path.read_text().strip() == str(proc.pid)) or proc.poll() is not None,
                 15, "the virtual card to connect to vpcd")
        if proc.poll() is not None:
            raise AssertionError(f"virtual card exited: {proc.stderr.read().decode()}")
        return proc

    def remove(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()
        if proc in self.cards:
            self.cards.remove(proc)

    def remove_all(self) -> None:
        for proc in list(self.cards):
            self.remove(proc)
        if pcscd_answers():
            self.wait_card_state(present=False)

    def wait_card_state(self, present: bool, reader: str = "Virtual PCD 00 00", timeout: float = 5.0) -> None:
        """Wait until pcscd itself reports the card present/absent (vpcd polls about every 400 ms)."""
        from smartcard import scard as sc

        rc, ctx = sc.SCardEstablishContext(sc.SCARD_SCOPE_USER)
        if rc != sc.SCARD_S_SUCCESS:
            return
        try:
            def ok():
                rc, states = sc.SCardGetStatusChange(ctx, 0, [(reader, sc.SCARD_STATE_UNAWARE)])
                return rc == sc.SCARD_S_SUCCESS and bool(states[0][1] & sc.SCARD_STATE_PRESENT) == present
            wait_for(ok, timeout, f"pcscd to see the card {'present' if present else 'gone'}")
        finally:
            sc.SCardReleaseContext(ctx)
