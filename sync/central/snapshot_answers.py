"""Answer devices' snapshot requests with the city's current ledger, built once for all who asked.

A device asks when it has no ledger, when a delta does not fit the version it has, or when it
missed hotlist updates. The answer is a snapshot built at that moment from the central database
(`ledger_publish.current_snapshot`), broadcast on the snapshot topic: every device that asked
before its publication is served by that one build, and devices already at its version and hotlist
serial ignore it. The build runs in its own thread (a 1,000,000-household ledger takes seconds),
so the consumer keeps storing and acknowledging meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from pos.clock import SystemClock
from pos.signing import Signer
from sync.central.store import central_db

log = logging.getLogger("ewarung.central")


@dataclass
class _Build:
    """One build in progress: who it is for, and what it produced (or why it failed)."""

    devices: set[str]
    thread: threading.Thread | None = None
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    label: str = ""
    error: str = ""


class SnapshotAnswers:
    """Collects requests, runs at most one build at a time, and hands the finished answer to the
    consumer thread to publish. `every`: seconds at least between two builds, so a burst of
    requests (a whole fleet back after an outage) costs one build, not one each."""

    def __init__(self, city: str | None, signer: Signer | None, every: float = 10.0) -> None:
        self.city, self.signer, self.every = city, signer, every
        self.wanted: set[str] = set()
        self._build: _Build | None = None
        self._last = -1e9

    def want(self, devices: list[str]) -> None:
        """Devices that asked for a snapshot (from a committed batch)."""
        self.wanted.update(devices)

    def due(self) -> list[tuple[str, bytes]]:
        """(topic, token) pairs to publish now: the finished build's answer, or nothing. Starts a
        build when devices wait and none runs."""
        build = self._build
        if build is not None:
            if build.thread is not None and build.thread.is_alive():
                return []
            self._build = None
            if build.error:
                log.error("snapshot for %s not built: %s", ", ".join(sorted(build.devices)), build.error)
                self.wanted |= build.devices
                return []
            log.info("%s sent for %s", build.label, ", ".join(sorted(build.devices)) or "-")
            self.wanted -= build.devices
            return build.messages
        if not self.wanted or time.monotonic() - self._last < self.every or not self.city:
            return []
        self._last = time.monotonic()
        self._build = _Build(set(self.wanted))
        self._build.thread = threading.Thread(target=self._run, args=(self._build,), name="snapshot-build",
                                              daemon=True)
        self._build.thread.start()
        return []

    def _run(self, build: _Build) -> None:
        try:
            build.messages, build.label = self._answer()
        except Exception as exc:  # noqa: BLE001 - database down: the devices stay wanted, asked again later
            build.error = repr(exc)
        finally:
            try:
                central_db.close()  # this thread's connection
            except Exception:  # noqa: BLE001 - already closed or broken
                pass

    def _answer(self) -> tuple[list[tuple[str, bytes]], str]:
        from sync.central.ledger_publish import current_snapshot, current_version, latest_snapshot

        started = time.monotonic()
        if self.signer is not None:
            snap = current_snapshot(signer=self.signer, city=self.city, now=SystemClock().now())
        else:  # no ledger key on this server: a stored snapshot, and only while it is the current version
            snap = latest_snapshot()
            if snap is not None and snap.version != current_version()[0]:
                log.warning("devices asked for a snapshot; the stored one (v%d) is older than the current version "
                            "and this server has no ledger key to build one (central serve --ledger-key)",
                            snap.version)
                snap = None
        if snap is None:
            log.warning("devices asked for a snapshot; there is none to send (ewarung central publish-ledger)")
            return [], "nothing"
        label = f"snapshot v{snap.version} ({snap.households} households, {snap.size} bytes, " \
                f"built in {time.monotonic() - started:.1f} s)"
        return snap.messages(self.city), label

    def close(self) -> None:
        """Wait briefly for a build in progress (its thread is a daemon: it never blocks exit)."""
        if self._build is not None and self._build.thread is not None:
            self._build.thread.join(timeout=5)
