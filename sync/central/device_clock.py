"""A device's clock may not run backwards along its own sequence: the check that dates hold.

The device stamps each message's created_at, and whoever holds the device key can stamp any time:
a sale made today, dated last month and booked into last month's unused allowance, passes every
per-message check (its period is the month of its created_at). What the device cannot rewrite is
its sequence: numbers are taken in the order messages are made, and a message already at the city
keeps its time. So a message dated earlier than the message before it in the device's sequence
(already stored, or earlier in the same batch), by more than the city's allowance for a clock
correction (`CityPolicy.clock_step_back_seconds`), is quarantined (critical), whatever its kind:
a void backdated into its sale's window is caught the same way.

The usual batch continues the device's sequence, so its predecessor is the message at the device's
highest stored number: one query joins central_device_state to it for every device of the batch.
Only devices with a gap being filled need a second query, for their stored numbers above the
contiguous mark (few: the out-of-order ones). A message is judged against the last one before it
that was not itself dated back, so a run of backdated messages is flagged whole, not only its
first (the cost: a device whose clock jumped ahead and came back has its messages flagged until
its clock passes the jump, each a critical finding to look at). A gap filled late with a message later than its stored
successor is not flagged here (the successor is already counted): docs/reliability.md notes it.
"""

from __future__ import annotations

from peewee import SqliteDatabase

from sync.central.message_store import Accepted, select_in, time_seconds
from sync.central.store import central_db


def _by_device(new: list[Accepted]) -> dict[str, list[Accepted]]:
    """The batch's messages grouped by device, each device's in batch order (grouped once: the
    checks below look at every device's messages)."""
    by_device: dict[str, list[Accepted]] = {}
    for m in new:
        by_device.setdefault(m.device, []).append(m)
    return by_device


def stored_predecessors(by_device: dict[str, list[Accepted]]) -> dict[str, dict[int, str]]:
    """{device: {seq: created_at}} of the stored messages a batch's messages (`by_device`) may
    follow, leaving out those quarantined as dated back: each device's highest, for a device filling
    a gap every stored number from its contiguous mark up to the batch's highest gap, and, where
    those were all dated back (rare: after an attack), the last stored message that was not."""
    flag = "LEFT JOIN central_quarantine q ON q.msg_id = m.id AND q.rule = 'created_at'"
    rows = select_in("SELECT s.device, s.contiguous_seq, m.seq, m.created_at, q.msg_id FROM central_device_state s "
                     f"JOIN central_message m ON m.device = s.device AND m.seq = s.highest_seq {flag} "
                     "WHERE s.device IN ({in})", sorted(by_device))
    db = central_db.obj
    mark = "?" if isinstance(db, SqliteDatabase) else "%s"
    found: dict[str, list[tuple[int, str, object]]] = {}
    for device, contiguous, highest, created, flagged in rows:
        found[device] = [(highest, created, flagged)]
        fills = [m.seq for m in by_device[device] if m.seq < highest]
        if fills:
            found[device] += db.execute_sql(f"SELECT m.seq, m.created_at, q.msg_id FROM central_message m {flag} "
                                            f"WHERE m.device = {mark} AND m.seq >= {mark} AND m.seq < {mark}",
                                            (device, contiguous, max(fills))).fetchall()
    known: dict[str, dict[int, str]] = {}
    for device, entries in found.items():
        known[device] = {seq: created for seq, created, flagged in entries if flagged is None}
        first = min(m.seq for m in by_device[device])
        if not any(seq < first for seq in known[device]):
            row = db.execute_sql(
                f"SELECT seq, created_at FROM central_message WHERE device = {mark} AND seq < {mark} AND id NOT IN "
                f"(SELECT msg_id FROM central_quarantine WHERE device = {mark} AND rule = 'created_at') "
                "ORDER BY seq DESC LIMIT 1", (device, first, device)).fetchone()
            if row:
                known[device][row[0]] = row[1]
    return known


def clock_steps_back(new: list[Accepted], allowance_seconds: int) -> list[tuple[Accepted, str]]:
    """(message, reason) for each of the messages dated earlier than their predecessor in the
    device's sequence (the last one not itself dated back) by more than `allowance_seconds`."""
    if not new:
        return []
    by_device = _by_device(new)
    known = stored_predecessors(by_device)
    found: list[tuple[Accepted, str]] = []
    for device, msgs in by_device.items():
        # seq -> (created_at, as POSIX seconds, the batch's message or None for a stored one);
        # the batch's times come parsed from the verify worker (Accepted.seconds)
        timeline: dict[int, tuple[str, float | None, Accepted | None]] = {
            seq: (created, time_seconds(created), None) for seq, created in known.get(device, {}).items()}
        timeline.update({m.seq: (m.envelope["created_at"], m.seconds(), m) for m in msgs})
        previous: tuple[int, str, float | None] | None = None
        for seq in sorted(timeline):
            created, after, msg = timeline[seq]
            if msg is not None and previous is not None:
                before = previous[2]
                if before is not None and after is not None and after < before - allowance_seconds:
                    found.append((msg, f"created_at {created} is {before - after:.0f} s before "
                                       f"that of seq {previous[0]} ({previous[1]}) of the same device: a device's "
                                       f"clock may step back {allowance_seconds} s at most (a correction), so this "
                                       "message was dated back"))
                    continue  # the next message is judged against the one before this
            previous = (seq, created, after)
    return found
