"""Where the session's slow work runs: card, printer and database calls off the screen's thread.

The session hands work to `runner.submit(work, done)`; `work()` runs somewhere else and
`done(result, error)` comes back on the session's thread. Swapping the runner is what makes the
counter flow deterministic in tests (inline, or deferred to interleave card events with pending work).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

Work = Callable[[], Any]
Done = Callable[[Any, BaseException | None], None]


class Runner(Protocol):
    """Runs `work` away from the session's thread and delivers its result to `done` back on it."""

    def submit(self, work: Work, done: Done) -> None:
        """Start `work`; `done(result, error)` follows on the session's thread."""


class InlineRunner:
    """Runs work at once on the calling thread (unit tests and scripted runs)."""

    def submit(self, work: Work, done: Done) -> None:
        """Run `work` now; its result or its exception goes to `done`, as from a worker."""
        try:
            result = work()
        except Exception as exc:  # delivered to the session, which decides what to show
            done(None, exc)
            return
        done(result, None)


class DeferredRunner:
    """Queues work until `run_all()`: lets tests interleave card events with pending work."""

    def __init__(self) -> None:
        self.pending: list[tuple[Work, Done]] = []

    def submit(self, work: Work, done: Done) -> None:
        """Keep the work for later, as a busy worker would."""
        self.pending.append((work, done))

    def run_next(self) -> bool:
        """Finish the oldest pending work; False when there was none."""
        if not self.pending:
            return False
        work, done = self.pending.pop(0)
        InlineRunner().submit(work, done)
        return True

    def run_all(self) -> None:
        """Finish all pending work, including work the finished work submits."""
        while self.run_next():
            pass


class ThreadRunner:
    """One worker thread for card, printer and database work; results go through `post`
    (the app passes a function that schedules the callback on the UI thread)."""

    def __init__(self, post: Callable[[Callable[[], None]], None]) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="counter-worker")
        self._post = post

    def submit(self, work: Work, done: Done) -> None:
        """Queue `work` on the worker; its result is posted back, never applied from the worker."""

        def job() -> None:
            try:
                result = work()
            except Exception as exc:
                self._post(lambda err=exc: done(None, err))
                return
            self._post(lambda: done(result, None))

        self._pool.submit(job)

    def shutdown(self) -> None:
        """Let queued work (a committing sale) finish before the process exits."""
        self._pool.shutdown(wait=True, cancel_futures=False)
