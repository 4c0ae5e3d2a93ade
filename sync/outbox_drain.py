"""The outbox as the sync daemon sees it: what to publish next, and state changes.

queued --PUBACK--> published --city ack--> acked --(retention_days)--> deleted.
A message published but not acknowledged by the city goes back to queued after
`ack_timeout_s` or on reconnect (the city de-duplicates by id).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from peewee import SqliteDatabase

from pos.clock import iso


class OutboxDrain:
    """The outbox's state changes for the sync daemon, in SQL, so the daemon's loop stays about timing only."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    def next_batch(self, after_seq: int, limit: int) -> list[tuple[int, str, str, bytes]]:
        """Queued messages with seq > after_seq, in sequence order: (seq, msg_id, topic, payload)."""
        if limit <= 0:
            return []
        return self.db.execute_sql(
            "SELECT seq, msg_id, topic, payload FROM outbox_message WHERE state='queued' AND seq>? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()

    def mark_published(self, seqs: list[int], now: datetime) -> None:
        """PUBACKed by the broker: published, waiting for the city's ack."""
        if not seqs:
            return
        with self.db.atomic():
            for i in range(0, len(seqs), 500):
                part = seqs[i : i + 500]
                self.db.execute_sql(
                    f"UPDATE outbox_message SET state='published', published_at=?, attempts=attempts+1, last_error='' "
                    f"WHERE state='queued' AND seq IN ({','.join('?' * len(part))})",
                    (iso(now), *part),
                )

    def mark_failed(self, seq: int, error: str) -> None:
        """The broker refused it: it stays queued, with the reason shown in `ewarung sync status`."""
        self.db.execute_sql(
            "UPDATE outbox_message SET attempts=attempts+1, last_error=? WHERE seq=? AND state='queued'", (error[:200], seq)
        )

    def mark_acked(self, msg_ids: list[str], ranges: list[tuple[int, int]], now: datetime) -> int:
        """Acknowledged by the city (by id or by seq range): stored there, so it may be purged after retention."""
        changed = 0
        with self.db.atomic():
            for i in range(0, len(msg_ids), 500):
                part = msg_ids[i : i + 500]
                changed += self.db.execute_sql(
                    f"UPDATE outbox_message SET state='acked', acked_at=? WHERE state!='acked' AND msg_id IN ({','.join('?' * len(part))})",
                    (iso(now), *part),
                ).rowcount
            for lo, hi in ranges:
                changed += self.db.execute_sql(
                    "UPDATE outbox_message SET state='acked', acked_at=? WHERE state!='acked' AND seq BETWEEN ? AND ?",
                    (iso(now), lo, hi),
                ).rowcount
        return changed

    def requeue_unacked(self, older_than: datetime | None = None) -> int:
        """Published but not acknowledged (optionally only those published before `older_than`) -> queued."""
        if older_than is None:
            cur = self.db.execute_sql("UPDATE outbox_message SET state='queued' WHERE state='published'")
        else:
            cur = self.db.execute_sql(
                "UPDATE outbox_message SET state='queued' WHERE state='published' AND published_at<?", (iso(older_than),)
            )
        return cur.rowcount

    def requeue_ranges(self, ranges: list[tuple[int, int]]) -> int:
        """The city's resend request: every listed message still held goes out again, acknowledged
        ones included (the city asks because it lost them; it acknowledges them once more)."""
        n = 0
        for lo, hi in ranges:
            n += self.db.execute_sql(
                "UPDATE outbox_message SET state='queued' WHERE state IN ('published', 'acked') AND seq BETWEEN ? AND ?",
                (lo, hi),
            ).rowcount
        return n

    def purge_acked(self, now: datetime, retention_days: int) -> int:
        """Drop messages the city has had for `retention_days`, so the device's disk does not fill."""
        cutoff = iso(now - timedelta(days=retention_days))
        return self.db.execute_sql(
            "DELETE FROM outbox_message WHERE state='acked' AND acked_at<?", (cutoff,)
        ).rowcount

    def stats(self, now: datetime) -> dict:
        """Queue counts and the oldest unacknowledged age, for the heartbeat and the status screen."""
        rows = dict(self.db.execute_sql("SELECT state, count(*) FROM outbox_message GROUP BY state").fetchall())
        oldest = self.db.execute_sql(
            "SELECT min(created_at) FROM outbox_message WHERE state!='acked'"
        ).fetchone()[0]
        from pos.clock import parse_iso

        age = int((now - parse_iso(oldest)).total_seconds()) if oldest else 0
        return {
            "queued": rows.get("queued", 0),
            "published": rows.get("published", 0),
            "acked": rows.get("acked", 0),
            "oldest_unacked_age_s": max(age, 0),
        }

