"""`ewarung sync`: the store-and-forward daemon (a separate process sharing the database).

One thread, one loop: poll the MQTT link, apply what arrived (acks, ledger updates), publish
queued outbox messages in sequence order within a bounded in-flight window, record PUBACKs,
heartbeat, requeue what the city has not acknowledged, purge old acknowledged messages.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from peewee import SqliteDatabase

from firmware_config import systemd_notify
from firmware_config.config import Config
from pos import health, journal, settings
from pos.clock import Clock, SystemClock, iso
from pos.db import durable_transaction
from pos.device import DeviceIdentity
from pos.messages import device_topic, ledger_topic
from pos.outbox import enqueue
from pos.signing import Signer
from sync.acks import RESEND_SCHEMA, AckRefused, parse_ack
from sync.ledger_intake import LedgerIntake, LedgerRefused
from sync.mqtt_client import MqttLink
from sync.outbox_drain import OutboxDrain
from sync.presence import StateRefused, parse_state, state_topic
from sync.status import heartbeat_body, signed, status_body

log = logging.getLogger("ewarung.sync")


@dataclass
class SyncOptions:
    """The daemon's pace (from [mqtt] in the config): how much in flight, how often it reports,
    when it gives up waiting for the city's ack and resends, how long acked messages are kept."""

    inflight: int = 64
    heartbeat_s: float = 60
    ack_timeout_s: float = 300
    retention_days: int = 90
    status_every_s: float = 1.0


class SyncDaemon:
    """The device's store-and-forward loop: a redemption is done only when the city acknowledges
    it, so the daemon owns the outbox between the counter's commit and the city's ack."""

    def __init__(self, db: SqliteDatabase, device: DeviceIdentity, signer: Signer, link: MqttLink,
                 central_keys: dict, ledger_keys: dict, opts: SyncOptions, clock: Clock | None = None) -> None:
        self.db, self.device, self.signer, self.link, self.opts = db, device, signer, link, opts
        self.clock = clock or SystemClock()
        self.central_keys = central_keys
        self.drain = OutboxDrain(db)
        self.intake = LedgerIntake(db, ledger_keys, device.city, self.clock, on_applied=self._on_ledger_applied)
        self.inflight: dict[int, int] = {}  # mid -> seq
        self.cursor = 0
        self.started = self.clock.now()
        self.connected_since = ""
        self._last_heartbeat = 0.0
        self._last_status = 0.0
        self._last_housekeeping = 0.0
        self.stop = False
        self.topics = {
            "ack": device_topic(device.device_id, "ack"),
            "resend": device_topic(device.device_id, "resend"),
            "status": device_topic(device.device_id, "status"),
            "heartbeat": device_topic(device.device_id, "heartbeat"),
            "request": device_topic(device.device_id, "request"),
            "city": state_topic(device.city),
        }
        self.city_since = ""  # `since` of the last "online" seen from central
        self.city_version = 0  # the newest ledger version seen from the city, applied or not
        self._digest: tuple[tuple, str] | None = None  # (what it was computed for, digest of the live ledger)
        self._content_changes = 0
        self._snapshot_seen: dict = {}  # snapshot progress at the last check, to notice one that stalled
        self.ledger_topics = {ledger_topic(device.city, leaf): leaf for leaf in ("snapshot", "delta", "hotlist")}

    @staticmethod
    def subscriptions(device: DeviceIdentity) -> list[tuple[str, int]]:
        """What the device listens to (its acks and resend requests, its city's ledger), QoS 1 so
        nothing the city sends while the device is offline is lost from its persistent session."""
        subs = [(device_topic(device.device_id, "ack"), 1), (device_topic(device.device_id, "resend"), 1)]
        subs += [(ledger_topic(device.city, leaf), 1) for leaf in ("snapshot", "delta", "hotlist")]
        return subs + [(state_topic(device.city), 1)]

    # --- one turn of the loop ---------------------------------------------------------------

    def step(self, timeout: float = 0.02) -> None:
        """One turn of the loop; tests drive the daemon turn by turn, `run` loops it."""
        self.link.poll(timeout)
        ev = self.link.events
        now = self.clock.now()
        if ev.just_connected:
            ev.just_connected = False
            self._on_connected(now)
        if ev.messages:
            msgs, ev.messages = ev.messages, []
            for topic, payload, mid, qos in msgs:
                self._on_message(topic, payload, now)  # commits before the PUBACK below
                self.link.ack(mid, qos)
        if ev.pubacks:
            acks, ev.pubacks = ev.pubacks, []
            self._on_pubacks(acks, now)
        if not ev.connected and self.inflight:
            # paho keeps and resends its own in-flight messages; we republish from the outbox too
            self.inflight.clear()
            self.cursor = 0
        if ev.connected:
            self._publish_window()
        mono = time.monotonic()
        if ev.connected and mono - self._last_heartbeat >= self.opts.heartbeat_s:
            self._last_heartbeat = mono
            self.publish_heartbeat(now)
            behind = self.behind()
            if behind:  # the last request may have found no central listening, or its answer was lost
                self.request_snapshot(now, f"still {behind}")
        if mono - self._last_status >= self.opts.status_every_s:
            self._last_status = mono
            self._write_status(now)
        if mono - self._last_housekeeping >= 30:
            self._last_housekeeping = mono
            self._housekeeping(now)

    def run(self, once: bool = False, max_seconds: float | None = None, offline_limit_s: float = 30) -> str | None:
        """Run until stopped; `once` drains what is queued now and returns (cron / tests).

        With `once`, a broker out of reach for `offline_limit_s` in a row ends the run: the reason
        is returned (None when the run ended normally), so a cron job fails instead of hanging."""
        systemd_notify.ready("sync started")
        wd = systemd_notify.watchdog_interval_s()
        last_wd = 0.0
        deadline = time.monotonic() + max_seconds if max_seconds else None
        offline_since = time.monotonic()
        gave_up = None
        try:
            while not self.stop:
                self.step()
                if wd and time.monotonic() - last_wd >= wd:
                    last_wd = time.monotonic()
                    systemd_notify.watchdog()
                if once and self.link.events.connected and self.idle():
                    break
                if self.link.events.connected:
                    offline_since = time.monotonic()
                elif once and time.monotonic() - offline_since > offline_limit_s:
                    gave_up = (f"no connection to the broker for {offline_limit_s:g} s "
                               f"({self.link.events.last_error or 'no answer'})")
                    break
                if deadline and time.monotonic() > deadline:
                    break
        finally:
            systemd_notify.stopping()
            was_connected = self.link.events.connected
            self.link.close(self.topics["status"], signed("status", self.device.device_id, status_body("offline"),
                                                           self.signer, self.clock.now()))
            self.link.events.connected = False  # closed, whatever paho last reported
            if gave_up or was_connected:  # else the link's own error says why it was offline
                self.link.events.last_error = gave_up or "the sync daemon is not running"
            self._write_status(self.clock.now())
        return gave_up

    def idle(self) -> bool:
        """Nothing in flight and nothing queued: `run(once=True)` may stop."""
        return not self.inflight and not self.drain.next_batch(self.cursor, 1)

    # --- handlers -------------------------------------------------------------------------

    def _on_connected(self, now: datetime) -> None:
        self.connected_since = iso(now)
        self.inflight.clear()
        self.cursor = 0
        n = self.drain.requeue_unacked()
        log.info("connected (session present: %s); %d unacknowledged messages requeued",
                 self.link.events.session_present, n)
        self.link.publish(self.topics["status"], signed("status", self.device.device_id, status_body("online"),
                                                         self.signer, now), retain=True)
        self.publish_heartbeat(now)
        self._last_heartbeat = time.monotonic()
        behind = self.behind()
        if behind:
            self.request_snapshot(now, behind)

    def behind(self) -> str:
        """Why this device is not on the city's current ledger as far as it knows ("" when it is):
        no ledger, a newer version seen that did not apply, or hotlist updates missed. A snapshot
        being received counts as on its way while it makes progress between two calls."""
        progress = self.intake.progress()
        if progress:
            if progress != self._snapshot_seen:
                self._snapshot_seen = progress
                return ""
            return f"snapshot v{progress['version']} stalled at {progress['received']} chunks of {progress['total']}"
        live = self.intake.live_version()
        if live == 0:
            return "no ledger on this device"
        if self.city_version > live:
            return f"on ledger v{live}, the city has v{self.city_version}"
        complete, newest = self.intake.hotlist_complete(), self.intake.hotlist_serial()
        if complete < newest:
            return f"hotlist updates {complete + 1}..{newest - 1} missing"
        return ""

    def _publish_window(self) -> None:
        room = self.opts.inflight - len(self.inflight)
        if room <= 0:
            return
        for seq, _msg_id, topic, payload in self.drain.next_batch(self.cursor, room):
            mid = self.link.publish(topic, bytes(payload), qos=1)
            if mid is None:
                break
            self.inflight[mid] = seq
            self.cursor = seq

    def _on_pubacks(self, acks: list[tuple[int, bool, str]], now: datetime) -> None:
        ok = []
        for mid, good, reason in acks:
            seq = self.inflight.pop(mid, None)
            if seq is None:
                continue  # a duplicate PUBACK, a resent message from before a reconnect, or status
            if good:
                ok.append(seq)
            else:
                # refused by the broker (e.g. not authorized): stays queued, retried next reconnect
                self.drain.mark_failed(seq, f"broker refused: {reason}")
                log.warning("broker refused message seq %d: %s", seq, reason)
        self.drain.mark_published(ok, now)

    def _on_message(self, topic: str, payload: bytes, now: datetime) -> None:
        if topic == self.topics["city"]:
            self._on_city_state(payload)
            return
        if topic in (self.topics["ack"], self.topics["resend"]):
            try:
                ack = parse_ack(payload, self.central_keys, self.device.device_id)
            except AckRefused as exc:
                self.emit_event("ack_refused", {"reason": str(exc)[:300], "topic": topic})
                return
            if ack.schema == RESEND_SCHEMA:
                n = self.drain.requeue_ranges(ack.ranges)
                self.cursor = 0
                log.info("city asked to resend %s: %d requeued", ack.ranges, n)
            else:
                self.drain.mark_acked(ack.ids, ack.ranges, now)
            settings.put(settings.LAST_CITY_CONTACT, iso(now))
            return
        leaf = self.ledger_topics.get(topic)
        if leaf is None:
            return
        try:
            result = self.intake.handle(payload, leaf)
            log.info("ledger %s: %s", leaf, result.detail)
            if result.missing:
                self.request_snapshot(now, result.detail[:200])
        except LedgerRefused as exc:
            if exc.code == "already_current":  # a snapshot built for another device that asked
                log.debug("ledger %s: %s", leaf, exc)
                return
            log.warning("ledger update refused (%s): %s", exc.code, exc)
            self.emit_event("ledger_refused", {"code": exc.code, "reason": str(exc)[:300], "topic": topic})
            if exc.code == "base_mismatch":
                self.city_version = max(self.city_version, exc.version)
            if exc.code in ("base_mismatch", "snapshot_mismatch"):
                self.request_snapshot(now, str(exc)[:200])

    def _on_ledger_applied(self, result) -> None:
        """Every applied update, held deltas included: the ledger digest is due again when more
        than confirmed spending changed."""
        self._content_changes += result.content

    def _on_city_state(self, payload: bytes) -> None:
        """Central is back (a new `since`): what it has not acknowledged may have reached a broker
        with no consumer subscribed, so publish it again now rather than after ack_timeout_s."""
        try:
            state = parse_state(payload, self.central_keys, self.device.city)
        except StateRefused as exc:
            log.warning("%s", exc)
            return
        if state.online and state.since != self.city_since:
            self.city_since = state.since
            n = self.drain.requeue_unacked()
            self.cursor = 0
            log.info("city online since %s: %d unacknowledged messages requeued", state.since, n)

    def emit_event(self, event: str, detail: dict) -> None:
        """A signed, sequenced event for the city (queued in the outbox like a redemption)."""
        created_at = iso(self.clock.now())
        with durable_transaction(self.db):
            msg = enqueue("event", {"event": event, **detail}, device=self.device, signer=self.signer,
                          created_at=created_at)
            journal.append(created_at, event, "", {"seq": msg.seq, **{k: str(v)[:200] for k, v in detail.items()}})

    def request_snapshot(self, now: datetime, reason: str) -> None:
        """Ask the city for a full ledger: a delta that does not follow the live version cannot apply."""
        body = {"request": "snapshot", "have_version": self.intake.live_version(),
                "have_hotlist": self.intake.hotlist_complete(), "reason": reason}
        self.link.publish(self.topics["request"], signed("request", self.device.device_id, body, self.signer, now))

    def convergence(self) -> dict:
        """The hotlist serial this device has in full and the digest of its live ledger, for the
        city's convergence check. The digest is computed again only when the ledger content may
        have changed (a snapshot, a hotlist update, a delta of more than confirmed spending)."""
        from sync.ledger_format import live_digest

        key = (self.intake.hotlist_serial(), self._content_changes)
        if self._digest is None or self._digest[0] != key:
            self._digest = (key, live_digest(self.db.connection()))
        return {"hotlist_serial": self.intake.hotlist_complete(), "digest": self._digest[1]}

    def publish_heartbeat(self, now: datetime) -> None:
        """Queue depth, ledger version and progress for the city's fleet page (QoS 0: the next one replaces it)."""
        body = heartbeat_body(self.drain.stats(now), now, self.started, self.intake.progress(), self.connected_since,
                              self.convergence())
        self.link.publish(self.topics["heartbeat"], signed("heartbeat", self.device.device_id, body, self.signer, now),
                          qos=0)

    def _write_status(self, now: datetime) -> None:
        stats = self.drain.stats(now)
        status = {"at": iso(now), "connected": self.link.events.connected, "last_error": self.link.events.last_error,
                  "inflight": len(self.inflight), **stats, "ledger_version": self.intake.live_version(),
                  "snapshot_progress": self.intake.progress() or None}
        health.put_sync_status(status)
        systemd_notify.status(f"{'online' if status['connected'] else 'offline'}; queued {stats['queued']}, "
                              f"unacked {stats['published']}; ledger v{status['ledger_version']}")

    def _housekeeping(self, now: datetime) -> None:
        n = self.drain.requeue_unacked(now - timedelta(seconds=self.opts.ack_timeout_s))
        if n:
            self.cursor = 0
        self.drain.purge_acked(now, self.opts.retention_days)


def status_summary(config: Config) -> dict:
    """What `ewarung sync status` shows, read from the database the daemon writes, so it works
    whether or not the daemon runs."""
    from pos.db import open_database

    db = open_database(config.database_path)
    try:
        return {"sync": health.sync_status(), "outbox": OutboxDrain(db).stats(SystemClock().now()),
                "last_city_contact": settings.get(settings.LAST_CITY_CONTACT)}
    finally:
        db.close()
