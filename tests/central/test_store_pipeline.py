"""The consumer's pipeline (sync/central/pipeline.py): units verified while a batch is stored are
joined into full store batches in arrival order, and when the flow stops what is verified is
stored without waiting for a full batch. Verification here is a stand-in whose units finish when
the test says so, and which fails the test if the pipeline waits for a unit it should not."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from sync.central.consumer import Incoming
from sync.central.pipeline import StorePipeline


@dataclass(eq=False)
class Job:
    """A unit in the stand-in workers' hands."""

    messages: list[Incoming]
    done: bool = False


@dataclass
class Workers:
    """Stand-in verify workers: `finish` marks units verified; waiting for an unfinished unit is
    recorded (the unit then counts as verified, as the real wait returns its verdicts)."""

    jobs: list[Job] = field(default_factory=list)
    waited: list[int] = field(default_factory=list)  # indexes of the units waited for
    dead: bool = False

    def submit(self, messages: list[Incoming]) -> Job:
        self.jobs.append(Job(messages))
        return self.jobs[-1]

    def verdicts(self, messages: list[Incoming], job: Job) -> list | None:
        if not job.done:
            self.waited.append(self.jobs.index(job))
            job.done = True
        return None if self.dead else [(True, m.payload) for m in messages]

    def finish(self, *units: int) -> None:
        for i in units:
            self.jobs[i].done = True


def _messages(n: int, start: int = 0) -> list[Incoming]:
    return [Incoming("ewarung/v1/devices/EW-T-0001/redemption", str(i).encode(), i + 1, 1)
            for i in range(start, start + n)]


def _pipeline(workers: Workers, batch_max: int = 4) -> StorePipeline:
    return StorePipeline(batch_max, capacity=3 * batch_max, unit_max=batch_max // 2, first_unit=1,
                         submit=workers.submit, verdicts=workers.verdicts, done=lambda job: job.done)


def _fill(pipeline: StorePipeline, sizes: list[int]) -> list[Incoming]:
    sent, start = [], 0
    for n in sizes:
        sent += _messages(n, start)
        pipeline.add(sent[-n:])
        start += n
    return sent


def _payloads(found) -> list[bytes]:
    batch, verdicts = found
    assert [v[1] for v in verdicts] == [m.payload for m in batch]  # each verdict beside its own message
    return [m.payload for m in batch]


def test_units_verified_meanwhile_are_stored_as_one_full_batch_in_order():
    workers = Workers()
    pipeline = _pipeline(workers)
    sent = _fill(pipeline, [1, 2, 2, 2, 2])  # a small first unit, then whole ones
    workers.finish(0, 1, 2, 3, 4)  # all verified while the previous batch was stored
    first = pipeline.next_batch(arriving=True)
    second = pipeline.next_batch(arriving=True)
    assert _payloads(first) == [m.payload for m in sent[:4]]  # three units, the third cut at batch_max
    assert _payloads(second) == [m.payload for m in sent[4:8]]
    assert len(pipeline) == 1 and pipeline.next_batch(arriving=True) is None  # one left, more arriving
    assert workers.waited == []


def test_when_the_flow_stops_what_is_verified_is_stored_without_waiting_for_a_full_batch():
    workers = Workers()
    pipeline = _pipeline(workers)
    sent = _fill(pipeline, [2, 2])  # the last messages of a burst
    workers.finish(0)
    assert _payloads(pipeline.next_batch(arriving=False)) == [b"0", b"1"]  # the second unit still in the workers
    assert workers.waited == []
    workers.finish(1)
    assert _payloads(pipeline.next_batch(arriving=False)) == [m.payload for m in sent[2:]]
    assert len(pipeline) == 0 and pipeline.next_batch(arriving=False) is None


def test_a_stopped_flow_with_nothing_verified_waits_for_the_oldest_unit_only():
    workers = Workers()
    pipeline = _pipeline(workers)
    _fill(pipeline, [1, 2])  # a message a second: nothing to gain by waiting for more
    assert _payloads(pipeline.next_batch(arriving=False)) == [b"0"]
    assert workers.waited == [0]


def test_a_full_flow_between_deliveries_waits_for_a_full_batch():
    """Two batches or more in flight and nothing new this round: the broker is about to deliver
    (it refills what was just acknowledged), so a half batch is not stored for it."""
    workers = Workers()
    pipeline = _pipeline(workers)
    sent = _fill(pipeline, [2, 2, 2, 2])
    workers.finish(0)
    assert _payloads(pipeline.next_batch(arriving=False)) == [m.payload for m in sent[:4]]
    assert workers.waited == [1]


def test_while_messages_arrive_a_part_batch_waits():
    workers = Workers()
    pipeline = _pipeline(workers)
    _fill(pipeline, [1, 2])
    workers.finish(0, 1)
    assert pipeline.next_batch(arriving=True) is None  # more may join it
    assert len(_payloads(pipeline.next_batch(arriving=False))) == 3


def test_a_full_pipeline_waits_for_a_full_batch_even_while_arriving():
    workers = Workers()
    pipeline = _pipeline(workers)
    _fill(pipeline, [2] * 6)
    assert pipeline.room() == 0
    assert len(_payloads(pipeline.next_batch(arriving=True))) == 4
    assert workers.waited == [0, 1]


def test_idle_workers_get_a_small_first_unit_busy_ones_a_whole_unit():
    workers = Workers()
    pipeline = _pipeline(workers)
    assert pipeline.room() == 1  # nothing in the workers' hands: start on what has arrived
    _fill(pipeline, [1])
    assert pipeline.room() == 2
    workers.finish(0)
    assert pipeline.room() == 1


def test_a_dead_worker_leaves_its_units_to_the_consumer_thread():
    workers = Workers(dead=True)
    pipeline = _pipeline(workers)
    _fill(pipeline, [2, 2])
    workers.finish(0, 1)
    batch, verdicts = pipeline.next_batch(arriving=False)
    assert len(batch) == 4 and verdicts == [None] * 4  # process() verifies each one itself


@pytest.mark.parametrize("sizes", [[1, 2, 2, 2, 2, 2, 1], [2] * 6, [1] * 12])
def test_every_message_is_stored_once_in_arrival_order(sizes):
    workers = Workers()
    pipeline = _pipeline(workers)
    sent = _fill(pipeline, sizes)
    stored: list[bytes] = []
    while (found := pipeline.next_batch(arriving=False)) is not None:
        assert 0 < len(found[0]) <= 4
        stored += _payloads(found)
    assert stored == [m.payload for m in sent] and len(pipeline) == 0
