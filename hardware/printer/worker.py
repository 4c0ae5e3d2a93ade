"""PrintWorker: printing off the UI thread, with self-recovery after a printer fault.

The counter app submits job ids (RedemptionResult.print_job_id) and gets every PrintOutcome
through a callback on the worker's thread (marshal it to the UI thread, e.g. Kivy's Clock).
At start it prints jobs left pending by a restart; every `retry_interval_s` it retries jobs that
failed before sending anything (paper loaded, cover closed, printer back on: the original
prints by itself). Jobs that may be partly on paper are never retried (see pos.printing).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from pos.db import PrintJob
from pos.printing import NOT_SENT, PrintOutcome, PrintService

log = logging.getLogger(__name__)


class PrintWorker:
    def __init__(
        self,
        service: PrintService,
        on_outcome: Callable[[PrintOutcome], None] | None = None,
        retry_interval_s: float = 5.0,
    ) -> None:
        self.service = service
        self.on_outcome = on_outcome
        self.retry_interval_s = retry_interval_s
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="print-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._queue.put(None)
        if self._thread:
            self._thread.join(timeout)

    def submit(self, job_id: str) -> None:
        self._queue.put(("job", job_id))

    def reprint(self, redemption_id: str) -> None:
        self._queue.put(("reprint", redemption_id))

    def _emit(self, outcomes: list[PrintOutcome]) -> None:
        for o in outcomes:
            if self.on_outcome:
                try:
                    self.on_outcome(o)
                except Exception:  # noqa: BLE001  (a UI callback must not kill the worker)
                    log.exception("print outcome callback failed")

    def _run(self) -> None:
        self._safely(self.service.print_pending)
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=self.retry_interval_s)
            except queue.Empty:
                if PrintJob.select().where(
                    (PrintJob.state == "failed") & PrintJob.last_error.startswith(NOT_SENT + "|")
                ).exists():
                    self._safely(self.service.retry_unsent)
                continue
            if item is None:
                break
            kind, ref = item
            if kind == "job":
                self._safely(lambda ref=ref: [self.service.print_job(ref)])
            else:
                self._safely(lambda ref=ref: [self.service.reprint(ref)])

    def _safely(self, fn: Callable[[], list[PrintOutcome]]) -> None:
        try:
            self._emit(fn())
        except Exception:  # noqa: BLE001  (never let one bad job stop printing)
            log.exception("print worker step failed")
