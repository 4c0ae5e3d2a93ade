"""The central consumer's messages between their arrival and their commit: verified in units, stored in batches.

Each store batch costs a commit and one signed ack per device, so under load the consumer stores
batches of `batch_max`. Verification need not wait for a whole batch: messages go to the verify
workers in units of half a batch (one chunk per worker of two), and idle workers get a quarter
batch as soon as it has arrived (the runner reads no more than that at a time), so they start
while the rest of a burst is read. The store step joins consecutive verified units into one batch
of exactly `batch_max` (cutting a unit where a batch ends), in arrival order.

When the flow stops (nothing new this round and under two batches in flight: the end of a burst,
or a message a second), whatever is verified is stored at once, so the consumer thread stores
the first units while the workers check the last one, instead of storing a whole last batch
after they are done; only the last unit is left to store once they are idle.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sync.central.consumer import Incoming

Verdicts = list  # aligned with a unit's messages; an entry None: verify it in the consumer thread


@dataclass(eq=False)
class Unit:
    """Messages submitted together for verification, in arrival order."""

    messages: list[Incoming]
    job: object  # what `submit` returned (None: verified in the consumer thread)
    verdicts: Verdicts | None = None  # once the job is done


class StorePipeline:
    """The units in flight, oldest first, and the rule for what to store next. Used by one thread
    (the consumer's); `submit`, `verdicts` and `done` hand a unit to the workers, wait for its
    verdicts (None: verify in the consumer thread) and tell whether they are in without waiting."""

    def __init__(self, batch_max: int, *, capacity: int, unit_max: int, first_unit: int,
                 submit: Callable[[list[Incoming]], object],
                 verdicts: Callable[[list[Incoming], object], Verdicts | None],
                 done: Callable[[object], bool]) -> None:
        """`capacity`: messages in flight at most (the broker's Receive Maximum holds back the rest);
        `unit_max`: messages per verification unit; `first_unit`: the unit handed to idle workers."""
        self.batch_max, self.capacity = batch_max, capacity
        self.unit_max, self.first_unit = unit_max, first_unit
        self._submit, self._verdicts, self._done = submit, verdicts, done
        self.units: deque[Unit] = deque()
        self.count = 0  # messages in flight

    def __len__(self) -> int:
        return self.count

    def room(self) -> int:
        """How many more messages the pipeline takes now."""
        return max(0, min(self.capacity - self.count, self.unit_size()))

    def unit_size(self) -> int:
        """The next unit's size: a whole unit while the workers have one in hand, else a smaller
        one, so idle workers start on the first messages while the rest arrive."""
        busy = self.units and not self._resolved(self.units[-1], wait=False)
        return self.unit_max if busy else self.first_unit

    def add(self, messages: list[Incoming]) -> None:
        """Hand a unit to the verify workers."""
        self.units.append(Unit(messages, self._submit(messages)))
        self.count += len(messages)

    def clear(self) -> None:
        """Forget everything in flight (nothing of it was acknowledged: the broker redelivers it)."""
        self.units.clear()
        self.count = 0

    def next_batch(self, arriving: bool) -> tuple[list[Incoming], Verdicts] | None:
        """The next store batch with its verdicts, or None to keep receiving. A full batch as soon as
        one is verified; while messages keep `arriving` and there is room, nothing; when the
        pipeline is full, or a full flow pauses, wait for a full batch; when the flow has stopped
        (under two batches in flight), what is verified now (at least the oldest unit)."""
        if not self.units:
            return None
        ready = self._ready(wait=False)
        if ready >= self.batch_max:
            return self._take(self.batch_max)
        if arriving and self.count < self.capacity:
            return None
        if self.count >= min(self.capacity, 2 * self.batch_max):  # full, or a full flow between deliveries
            return self._take(self._ready(wait=True))
        if ready == 0:
            self._resolved(self.units[0], wait=True)
            ready = self._ready(wait=False)
        return self._take(ready)

    def _resolved(self, unit: Unit, *, wait: bool) -> bool:
        if unit.verdicts is None:
            if not wait and not self._done(unit.job):
                return False
            found = self._verdicts(unit.messages, unit.job)
            unit.verdicts = found if found is not None else [None] * len(unit.messages)
        return True

    def _ready(self, *, wait: bool) -> int:
        """Messages verified at the head, in whole units, counted up to `batch_max` (waiting for
        each unit in turn if `wait`)."""
        ready = 0
        for unit in self.units:
            if ready >= self.batch_max or not self._resolved(unit, wait=wait):
                break
            ready += len(unit.messages)
        return ready

    def _take(self, limit: int) -> tuple[list[Incoming], Verdicts]:
        """The first `limit` verified messages (at most `batch_max`) and their verdicts, cutting the
        last unit if it goes past."""
        limit = min(limit, self.batch_max)
        batch: list[Incoming] = []
        verdicts: Verdicts = []
        while len(batch) < limit:
            unit = self.units[0]
            need = limit - len(batch)
            if len(unit.messages) > need:
                batch += unit.messages[:need]
                verdicts += unit.verdicts[:need]
                unit.messages, unit.verdicts = unit.messages[need:], unit.verdicts[need:]
            else:
                batch += unit.messages
                verdicts += unit.verdicts
                self.units.popleft()
        self.count -= len(batch)
        return batch, verdicts
