"""The central consumer's verify worker processes: how a batch's checks reach them and come back.

Checking a redemption costs two ECDSA verifications (the device's and the card's), the bulk of
the consumer's work, and pyca/cryptography keeps the GIL while it verifies: so the checks run in
`spawn` worker processes, by default one per core up to four (the consumer thread and the
broker take their share of the same cores; docs/scaling.md has the measurements). Each batch is
split into one chunk per worker, so every core works on the batch the consumer will store next.

The pool is a pipe per worker and nothing else: the consumer thread writes each chunk (marshalled:
device, topic leaf, token) itself and reads the verdicts back itself, so no result or feeder
thread in the consumer process spends the cores the consumer is measured against. A worker
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
from dataclasses import dataclass

from sync.central.verify import Checked, die_with_parent, envelope_of, verify_batch

MIN_CHUNK = 64  # messages: below this a second worker costs more in round trips than it saves
MAX_DEFAULT_WORKERS = 4  # one consumer thread cannot feed more: scale out with more consumers instead
WORKER_GC_THRESHOLD = (50_000, 50, 100)
"""A worker allocates a few dozen short-lived objects per message and frees them by reference
count; the default threshold would run the cyclic collector every few messages for nothing."""
CONSUMER_GC_THRESHOLD = (50_000, 50, 100)
"""The same for the consumer process that owns the pool: its thread parses, judges and stores every
message of a batch, a few dozen container objects each, all freed by reference count."""

Job = tuple[str, str, bytes]  # (device, topic leaf, token)


def default_workers() -> int:
    """One worker per core (at most MAX_DEFAULT_WORKERS) on a machine with 2 or more CPUs, else none
    (verify in the consumer thread): two signatures per message make verification most of the work."""
    cpus = os.cpu_count() or 1
    return min(cpus, MAX_DEFAULT_WORKERS) if cpus >= 2 else 0


def calm_collector() -> None:
    """Run the consumer process's cyclic collector rarely (`CONSUMER_GC_THRESHOLD`), and never over
    what the process holds when its first pool starts (modules, registry, caches): with the default
    thresholds it ran every few messages of a batch and now and then over the whole heap, time
    taken from the consumer thread for garbage reference counting already frees. Done once per process."""
    if gc.get_threshold()[0] < CONSUMER_GC_THRESHOLD[0]:
        gc.collect()  # so no garbage cycle of the start-up is frozen for good
        gc.freeze()
        gc.set_threshold(*CONSUMER_GC_THRESHOLD)


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
    thread takes chunks off the pipe as they come, so the consumer's write never waits for the chunk
    in hand to be verified."""
    die_with_parent(parent_pid)
    gc.freeze()  # the imported modules are never garbage: keep them out of every collection
    gc.set_threshold(*WORKER_GC_THRESHOLD)
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


@dataclass
class Chunk:
    """Part of a submitted batch: which worker of which pool has it, and its place in that worker's queue."""

    pool: VerifyPool
    worker: int
    number: int
    jobs: list[Job]


class VerifyPool:
    """`workers` spawned processes that check batches in chunks; they end with this process, however
    it ends (verify.die_with_parent). Used by one thread (the consumer's)."""

    def __init__(self, workers: int) -> None:
        import multiprocessing

        self.workers = workers
        calm_collector()
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
        self._sent = [0] * workers  # chunks sent to each worker
        self._answers: list[dict[int, bytes]] = [{} for _ in range(workers)]  # answers read, not yet claimed
        self._read = [0] * workers  # answers read from each worker
        self._next = 0  # the worker a small batch goes to (they take turns)

    @property
    def pids(self) -> list[int]:
        """The worker processes (for CPU accounting)."""
        return [p.pid for p in self._procs if p.pid is not None]

    def warm_up(self, *context, timeout: float = 60) -> None:
        """Start every worker and wait until each can answer (a spawned worker imports the verifier
        afresh), so the first batch does not wait for them; raises if they cannot start."""
        chunks = [self._send(w, [], {}, context) for w in range(self.workers)]
        for chunk in chunks:
            if not self._conns[chunk.worker].poll(timeout):
                raise RuntimeError(f"verify worker {chunk.worker} did not answer within {timeout:.0f} s")
        results(chunks)

    def submit(self, jobs: list[Job], pems: dict[str, str], *context) -> list[Chunk]:
        """The jobs in contiguous chunks, one per worker (fewer for a small batch); `results` joins them."""
        count = max(1, min(self.workers, len(jobs) // MIN_CHUNK))
        size = -(-len(jobs) // count)
        chunks = []
        for part in (jobs[i:i + size] for i in range(0, len(jobs), size)):
            worker, self._next = self._next, (self._next + 1) % self.workers
            chunks.append(self._send(worker, part, {d: pems[d] for d in {j[0] for j in part}}, context))
        return chunks

    def _send(self, worker: int, jobs: list[Job], pems: dict[str, str], context: tuple) -> Chunk:
        self._conns[worker].send_bytes(marshal.dumps((jobs, pems, context)))
        self._sent[worker] += 1
        return Chunk(self, worker, self._sent[worker], jobs)

    def _collect(self, worker: int, wait: bool) -> None:
        """Read the worker's answers that have arrived (with `wait`, at least one); raises EOFError or
        OSError if the worker died."""
        conn = self._conns[worker]
        while self._read[worker] < self._sent[worker] and (wait or conn.poll()):
            self._read[worker] += 1
            self._answers[worker][self._read[worker]] = conn.recv_bytes()
            wait = False

    def answer(self, chunk: Chunk) -> bytes:
        """The worker's answer to `chunk`, waiting for it."""
        answers = self._answers[chunk.worker]
        while chunk.number not in answers:
            self._collect(chunk.worker, wait=True)
        return answers.pop(chunk.number)

    def done(self, chunk: Chunk) -> bool:
        """Whether the worker has answered `chunk` (reads what has arrived, never waits)."""
        self._collect(chunk.worker, wait=False)
        return chunk.number in self._answers[chunk.worker]

    def shutdown(self) -> None:
        """Stop the workers without waiting for the batches in hand (they are redelivered)."""
        for conn in self._conns:
            conn.close()
        for proc in self._procs:
            proc.terminate()
        for proc in self._procs:
            proc.join(5)


def results(chunks: list[Chunk]) -> list[tuple[bool, object]]:
    """The verdicts of a submitted batch, in job order; raises if a worker died."""
    out: list[tuple[bool, object]] = []
    for chunk in chunks:
        out += unpack(chunk.pool.answer(chunk), chunk.jobs)
    return out


def all_done(chunks: list[Chunk]) -> bool:
    """Whether every chunk of a batch is verified."""
    return all(c.pool.done(c) for c in chunks)
