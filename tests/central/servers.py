"""Real servers for the central tests: a private PostgreSQL 15 cluster and a private mosquitto,
each on a free loopback port, in a temp dir, stopped at the end of the session."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class PostgresServer:
    """initdb + pg_ctl as the unprivileged `postgres` user (postgres refuses to run as root)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ewarung-pg-"))
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.data = self.dir / "data"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [*args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True, cwd=self.dir)

    def start(self) -> PostgresServer:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "ewarung", "--auth=trust",
                  "-E", "UTF8", "--no-sync")
        self.resume()
        self._run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "ewarung", "central")
        return self

    def resume(self) -> None:
        opts = f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=on -c listen_addresses=127.0.0.1"
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-o", opts, "-w", "start")
        wait_port(self.port)

    def pause(self) -> None:
        """Stop the server, keeping its data (a database outage)."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)

    def url(self, db: str = "central") -> str:
        return f"postgresql://ewarung@127.0.0.1:{self.port}/{db}"

    def createdb(self, name: str) -> str:
        self._run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "ewarung", name)
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop", timeout=60)
        except (subprocess.SubprocessError, OSError):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


class Mosquitto:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ewarung-mq-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> Mosquitto:
        conf = self.dir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"user root\nmax_inflight_messages 1000\nmax_queued_messages 100000\n"
            f"log_dest file {self.dir / 'log'}\n"
        )
        self.proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
