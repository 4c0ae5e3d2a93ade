"""The central consumer's verify worker processes: how a batch's checks reach them and come back.

Checking a redemption costs two ECDSA verifications (the device's and the card's), the bulk of
the consumer's work, and pyca/cryptography keeps the GIL while it verifies: so the checks run in
`spawn` worker processes, by default one per core up to four (the consumer thread and the
broker take their share of the same cores; docs/scaling.md has the measurements). Each batch is
split into one chunk per worker, so every core works on the batch the consumer will store next. A worker sends
its verdicts back as ONE marshal blob (the verified envelopes are plain JSON values), which costs
a fraction of pickling the same verdicts object by object on both sides of the pipe.
"""

from __future__ import annotations

import marshal
import os
from concurrent.futures import Future

from sync.central.verify import Checked, die_with_parent, verify_batch

MIN_CHUNK = 64  # messages: below this a second worker costs more in round trips than it saves
MAX_DEFAULT_WORKERS = 4  # one consumer thread cannot feed more: scale out with more consumers instead


def default_workers() -> int:
    """One worker per core (at most MAX_DEFAULT_WORKERS) on a machine with 2 or more CPUs, else none
    (verify in the consumer thread): two signatures per message make verification most of the work."""
    cpus = os.cpu_count() or 1
    return min(cpus, MAX_DEFAULT_WORKERS) if cpus >= 2 else 0


def verify_packed(jobs: list[tuple[str, str, bytes]], pems: dict[str, str], *context) -> bytes:
    """In a worker: `verify.verify_batch` (with the caller's extra `context` arguments), its verdicts
    marshalled as (True, envelope, problems, at) or (False, reason)."""
    return marshal.dumps([(True, v.envelope, v.problems, v.at) if ok else (False, v)
                          for ok, v in verify_batch(jobs, pems, *context)])


def unpack(blob: bytes) -> list[tuple[bool, object]]:
    """A worker's verdicts as `verify_batch` returns them: (True, Checked) or (False, reason). The
    blob comes from our own worker process over its pipe, never from the network."""
    return [(True, Checked(v[1], v[2], v[3])) if v[0] else (False, v[1]) for v in marshal.loads(blob)]


class VerifyPool:
    """`workers` spawned processes that check batches in chunks; they end with this process, however
    it ends (verify.die_with_parent)."""

    def __init__(self, workers: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.workers = workers
        # spawn, not fork: the consumer process has threads (paho, the fleet page)
        self._executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=die_with_parent, initargs=(os.getpid(),))

    def warm_up(self, *context, timeout: float = 60) -> None:
        """Start every worker and wait until each can answer (a spawned worker imports the verifier
        afresh), so the first batch does not wait for them; raises if they cannot start."""
        for future in [self._executor.submit(verify_packed, [], {}, *context) for _ in range(self.workers)]:
            future.result(timeout=timeout)

    def submit(self, jobs: list[tuple[str, str, bytes]], pems: dict[str, str], *context) -> list[Future]:
        """The jobs in contiguous chunks, one per worker (fewer for a small batch); `results` joins them."""
        chunks = max(1, min(self.workers, len(jobs) // MIN_CHUNK))
        size = -(-len(jobs) // chunks)
        return [self._executor.submit(verify_packed, part, {d: pems[d] for d in {j[0] for j in part}}, *context)
                for part in (jobs[i:i + size] for i in range(0, len(jobs), size))]

    def shutdown(self) -> None:
        """Stop the workers without waiting for the batches in hand (they are redelivered)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def results(futures: list[Future]) -> list[tuple[bool, object]]:
    """The verdicts of a submitted batch, in job order; raises if a worker died."""
    out: list[tuple[bool, object]] = []
    for future in futures:
        out += unpack(future.result())
    return out


def all_done(futures: list[Future]) -> bool:
    """Whether every chunk of a batch is verified."""
    return all(f.done() for f in futures)
