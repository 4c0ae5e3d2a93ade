"""The central consumer's verify worker processes: how a unit's checks reach them and come back.

Checking a redemption costs two ECDSA verifications (the device's and the card's), the bulk of
the consumer's work, and pyca/cryptography keeps the GIL while it verifies: so the checks run in
`spawn` worker processes, by default one per core up to four (the consumer thread and the
broker take their share of the same cores; docs/scaling.md has the measurements). Each unit the
consumer submits (half a store batch, sync/central/pipeline.py) is split across the workers, so
every core works on the messages the consumer will store next.

The pool is a pipe per worker: the consumer thread marshals each chunk (device, topic leaf,
token) once, and a dispatcher thread only moves those bytes to the worker with room and the
answers back (no per-message pickling in the consumer process, whose cores the consumer is
measured against). The chunks are handed out as workers free up, so the workers keep pace with
each other whatever share of a core each got. A worker
sends back only its verdicts (problems and created_at seconds, or the reason to refuse), a few
bytes a message; the consumer thread parses the envelope of a verified token itself with the
same parser (verify.envelope_of), which costs less than sending the parsed envelope back.
"""

from __future__ import annotations

import gc
import marshal
import os
import queue
import threading
from collections import deque
from dataclasses import dataclass

from sync.central.verify import Checked, die_with_parent, envelope_of, verify_batch

MIN_CHUNK = 64  # messages: below this a second worker costs more in round trips than it saves
CHUNKS_PER_WORKER = 1  # a unit's chunks per worker: units are half a batch, so a batch is two chunks per worker
WORKER_DEPTH = 2  # chunks a worker holds: one being verified, the next already read off its pipe
WORKER_NICE = 10
"""Workers yield a shared core to the consumer thread and the broker: storing is the pipeline's one
serial step, so a consumer thread kept waiting for a core lags behind the verified batches and,
when the flow stops, leaves the cores idle while it stores them one after another. The workers'
throughput is the same; they take the cores the serial steps leave."""
MAX_DEFAULT_WORKERS = 4  # one consumer thread cannot feed more: scale out with more consumers instead
BATCH_GC_THRESHOLD = (50_000, 50, 100)
"""The verify workers and the consumer process allocate a few dozen short-lived objects per message
(parsing, checking, judging, storing) and free them all by reference count; Python's default
threshold would run the cyclic collector every few messages for nothing."""

Job = tuple[str, str, bytes]  # (device, topic leaf, token)


def default_workers() -> int:
    """One worker per core (at most MAX_DEFAULT_WORKERS) on a machine with 2 or more CPUs, else none
    (verify in the consumer thread): two signatures per message make verification most of the work."""
    cpus = os.cpu_count() or 1
    return min(cpus, MAX_DEFAULT_WORKERS) if cpus >= 2 else 0


def calm_collector() -> None:
    """Run this process's cyclic collector rarely (`BATCH_GC_THRESHOLD`), and never over what it
    holds when it starts working (modules, registry, caches): with the default thresholds it ran
    every few messages of a batch and now and then over the whole heap, time taken for garbage
    reference counting already frees. Called once by each verify worker and by the consumer
    process's composition root (pos.roots.central), not by the pool: a library does not set its
    host process's collector."""
    if gc.get_threshold()[0] < BATCH_GC_THRESHOLD[0]:
        gc.collect()  # so no garbage cycle of the start-up is frozen for good
        gc.freeze()
        gc.set_threshold(*BATCH_GC_THRESHOLD)


def verify_packed(jobs: list[Job], pems: dict[str, str], *context) -> bytes:
    """In a worker: `verify.verify_batch` (with the caller's extra `context` arguments), its verdicts
    marshalled as (True, problems, created_at seconds) or (False, reason): the caller has the
    tokens and parses the envelopes it stores itself (`unpack`)."""
    return marshal.dumps([(True, v.problems, v.at) if ok else (False, v)
                          for ok, v in verify_batch(jobs, pems, *context)])


def unpack(blob: bytes, jobs: list[Job]) -> list[tuple[bool, object]]:
    """A worker's verdicts on `jobs` as `verify_batch` returns them: (True, Checked) or (False,
    reason), each verified token's envelope parsed here. The blob comes from our own worker process
    over its pipe, never from the network."""
    verdicts = marshal.loads(blob)
    if len(verdicts) != len(jobs):
        raise RuntimeError(f"a verify worker answered {len(verdicts)} verdicts for {len(jobs)} messages")
    return [(True, Checked(envelope_of(_payload_part(job[2])), v[1], v[2])) if v[0] else (False, v[1])
            for v, job in zip(verdicts, jobs, strict=True)]


def _payload_part(token: bytes) -> bytes:
    """`token.split(b".", 2)[1]` with one copy, of the part alone, instead of three (a token is kilobytes)."""
    start = token.index(b".") + 1
    return token[start:token.index(b".", start)]


def _serve(conn, parent_pid: int) -> None:
    """A worker process: verify the chunks that arrive on `conn`, in order, answering each. A reader
    thread takes chunks off the pipe as they come, so the dispatcher's write never waits for the
    chunk in hand to be verified."""
    die_with_parent(parent_pid)
    try:
        os.nice(WORKER_NICE)
    except OSError:
        pass  # not allowed here: the same work at the same priority, only a longer drain
    calm_collector()
    inbox: queue.SimpleQueue = queue.SimpleQueue()

    def read() -> None:
        try:
            while True:
                inbox.put(conn.recv_bytes())
        except (EOFError, OSError):
            inbox.put(None)  # the consumer closed its end or died

    threading.Thread(target=read, name="verify-inbox", daemon=True).start()
    while (request := inbox.get()) is not None:
        jobs, pems, context = marshal.loads(request)
        try:
            conn.send_bytes(verify_packed(jobs, pems, *context))
        except (BrokenPipeError, OSError):
            return


@dataclass(eq=False)
class Chunk:
    """Part of a submitted batch, waiting in its pool for a free worker, then for its answer."""

    pool: VerifyPool
    jobs: list[Job]
    blob: bytes  # the request as the worker reads it (marshalled once, by the submitting thread)
    worker: int | None = None  # the worker it was handed to (None: still waiting for one)


class VerifyPool:
    """`workers` spawned processes that check batches in chunks; they end with this process, however
    it ends (verify.die_with_parent). Submitted by one thread (the consumer's).

    A unit is cut into chunks, one per worker, and a dispatcher thread hands the next chunk to
    whichever worker has fewest in hand (at most WORKER_DEPTH each), reading their answers as they
    come: a worker that the scheduler gave less of a core, or whose chunk had more to check, does
    not leave the other idle while units are queued. The dispatcher moves bytes marshalled by the
    submitting thread (a few wake-ups a chunk), never a message object."""

    def __init__(self, workers: int) -> None:
        import multiprocessing

        self.workers = workers
        # spawn, not fork: the consumer process has threads (paho, the fleet page)
        ctx = multiprocessing.get_context("spawn")
        self._conns, self._procs = [], []
        for _ in range(workers):
            here, there = ctx.Pipe(duplex=True)
            proc = ctx.Process(target=_serve, args=(there, os.getpid()), name="ewarung-verify", daemon=True)
            proc.start()
            there.close()
            self._conns.append(here)
            self._procs.append(proc)
        self._lock = threading.Condition()
        self._waiting: deque[Chunk] = deque()  # submitted, not yet sent to a worker
        self._in_hand: list[deque[Chunk]] = [deque() for _ in range(workers)]  # sent, in the worker's order
        self._answers: dict[Chunk, bytes] = {}  # answered, not yet claimed
        self._failure: BaseException | None = None  # a worker died: every wait raises it
        self._closing = False
        self._wake_read, self._wake_write = os.pipe()
        self._dispatcher = threading.Thread(target=self._dispatch, name="verify-dispatch", daemon=True)
        self._dispatcher.start()

    @property
    def pids(self) -> list[int]:
        """The worker processes (for CPU accounting)."""
        return [p.pid for p in self._procs if p.pid is not None]

    def warm_up(self, *context, timeout: float = 60) -> None:
        """Start every worker and wait until each can answer (a spawned worker imports the verifier
        afresh), so the first batch does not wait for them; raises if they cannot start."""
        chunks = [self._chunk([], {}, context) for _ in range(self.workers)]
        with self._lock:
            self._waiting.extend(chunks)  # the dispatcher gives one to each (each has fewest in hand in turn)
        os.write(self._wake_write, b"w")
        with self._lock:
            if not self._lock.wait_for(lambda: self._failure or all(c in self._answers for c in chunks), timeout):
                raise RuntimeError(f"a verify worker did not answer within {timeout:.0f} s")
        results(chunks)

    def submit(self, jobs: list[Job], pems: dict[str, str], *context) -> list[Chunk]:
        """The jobs in contiguous chunks (CHUNKS_PER_WORKER per worker, fewer for a small batch), queued
        for the workers; `results` joins them in order. Raises if a worker has died."""
        count = max(1, min(self.workers * CHUNKS_PER_WORKER, len(jobs) // MIN_CHUNK))
        size = -(-len(jobs) // count)
        chunks = [self._chunk(part, {d: pems[d] for d in {j[0] for j in part}}, context)
                  for part in (jobs[i:i + size] for i in range(0, len(jobs), size))]
        with self._lock:
            if self._failure is not None:
                raise self._failure
            self._waiting.extend(chunks)
        os.write(self._wake_write, b"s")
        return chunks

    def _chunk(self, jobs: list[Job], pems: dict[str, str], context: tuple) -> Chunk:
        return Chunk(self, jobs, marshal.dumps((jobs, pems, context)))

    def answer(self, chunk: Chunk) -> bytes:
        """The worker's answer to `chunk`, waiting for it; raises EOFError or OSError if a worker died."""
        with self._lock:
            self._lock.wait_for(lambda: chunk in self._answers or self._failure is not None)
            if chunk not in self._answers:
                raise self._failure
            return self._answers.pop(chunk)

    def done(self, chunk: Chunk) -> bool:
        """Whether a worker has answered `chunk` (never waits)."""
        return chunk in self._answers or self._failure is not None

    def shutdown(self) -> None:
        """Stop the workers without waiting for the batches in hand (they are redelivered)."""
        self._closing = True
        os.write(self._wake_write, b"q")
        self._dispatcher.join(5)
        for conn in self._conns:
            conn.close()
        for proc in self._procs:
            proc.terminate()
        for proc in self._procs:
            proc.join(5)
        os.close(self._wake_read)
        os.close(self._wake_write)

    # --- the dispatcher thread ------------------------------------------------------------
    def _dispatch(self) -> None:
        """Send waiting chunks to the workers with room, read answers as they arrive; on a dead
        worker, or anything else that stops it, record the failure (every wait raises it) and stop."""
        from multiprocessing.connection import wait

        watched = [*self._conns, self._wake_read]
        try:
            while not self._closing:
                self._send_waiting()
                for ready in wait(watched):
                    if ready == self._wake_read:
                        os.read(self._wake_read, 4096)
                    else:
                        self._take_answer(self._conns.index(ready))
        except Exception as exc:  # noqa: BLE001 - a dead worker (EOFError, OSError) or a bug: never a silent hang
            if not self._closing:
                with self._lock:
                    self._failure = exc
                    self._lock.notify_all()

    def _send_waiting(self) -> None:
        while True:
            with self._lock:
                worker = min(range(self.workers), key=lambda w: len(self._in_hand[w]))
                if not self._waiting or len(self._in_hand[worker]) >= WORKER_DEPTH:
                    return
                chunk = self._waiting.popleft()
                chunk.worker = worker
                self._in_hand[worker].append(chunk)
            self._conns[worker].send_bytes(chunk.blob)

    def _take_answer(self, worker: int) -> None:
        blob = self._conns[worker].recv_bytes()
        with self._lock:
            self._answers[self._in_hand[worker].popleft()] = blob
            self._lock.notify_all()


def results(chunks: list[Chunk]) -> list[tuple[bool, object]]:
    """The verdicts of a submitted batch, in job order; raises if a worker died."""
    out: list[tuple[bool, object]] = []
    for chunk in chunks:
        out += unpack(chunk.pool.answer(chunk), chunk.jobs)
    return out


def all_done(chunks: list[Chunk]) -> bool:
    """Whether every chunk of a batch is verified."""
    return all(c.pool.done(c) for c in chunks)
