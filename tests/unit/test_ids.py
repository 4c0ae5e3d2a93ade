"""The ids a device mints (pos/ids.py): UUID version 7, so the city's indexes keyed by them grow
at one end; and a sale, its void and their messages all carry such ids."""

from __future__ import annotations

import time
import uuid

from pos import ids
from pos.db import OutboxMessage, PrintJob, Void
from pos.ids import new_id
from pos.redemption import RedemptionRequest


def _v7(text: str) -> uuid.UUID:
    u = uuid.UUID(text)
    assert str(u) == text  # the usual 36-character lowercase text form
    assert u.version == 7 and u.variant == uuid.RFC_4122
    return u


def test_ids_are_uuid7_text_and_unique():
    ids = [new_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        _v7(text)


def test_later_ids_sort_later_within_one_millisecond_and_across_a_clock_step_back(monkeypatch):
    first = [new_id() for _ in range(200)]  # many fall in one millisecond
    assert first == sorted(first)
    now = time.time_ns()
    monkeypatch.setattr(ids.time, "time_ns", lambda: now - 3_600 * 10**9)  # the clock steps an hour back
    after = [new_id() for _ in range(50)]
    assert after == sorted(after) and after[0] > first[-1]


def test_more_ids_in_one_millisecond_than_the_counter_holds_stay_ordered(monkeypatch):
    for name, value in (("_last_ms", 0), ("_counter", 0)):  # a fresh process (put back afterwards)
        monkeypatch.setattr(ids, name, value)
    frozen = time.time_ns()  # the clock stands still
    monkeypatch.setattr(ids.time, "time_ns", lambda: frozen)
    minted = [new_id() for _ in range(5000)]  # the 12-bit counter holds 4096 at most
    assert minted == sorted(minted) and len(set(minted)) == 5000
    stamps = [_v7(i).int >> 80 for i in minted]
    assert stamps[0] == frozen // 1_000_000 and stamps[-1] == stamps[0] + 1  # one millisecond taken ahead


def test_the_time_field_is_the_minting_millisecond():
    before = time.time_ns() // 1_000_000
    minted = _v7(new_id()).int >> 80
    assert before <= minted <= time.time_ns() // 1_000_000 + 1


def test_ids_from_several_threads_are_unique():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        minted = [i for chunk in pool.map(lambda _: [new_id() for _ in range(500)], range(8)) for i in chunk]
    assert len(set(minted)) == len(minted) == 4000


def test_the_ids_of_a_sale_its_void_and_their_messages_are_uuid7(service, city):
    sale = service.redeem(RedemptionRequest(city.notable["holder"], "kasir1", {"BERAS5": 1}))
    service.void(sale.redemption_id, "wrong_items", "kasir1", "spv1")
    void = Void.get()
    minted = [sale.redemption_id, void.id, *(m.msg_id for m in OutboxMessage.select().order_by(OutboxMessage.seq)),
              *(j.id for j in PrintJob.select())]
    assert len(minted) >= 4 and len(set(minted)) == len(minted)
    for text in minted:
        _v7(text)
    messages = [m.msg_id for m in OutboxMessage.select().order_by(OutboxMessage.seq)]
    assert messages == sorted(messages)  # minted later, sorts later
