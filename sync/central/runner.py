"""The central consumer on a broker: receive, verify in a worker process, store, then acknowledge.

MQTT 5 shared subscriptions (several consumers split the devices' traffic) and manual PUBACKs:
the broker keeps a message until its row is committed, and the device's end-to-end ack goes out
only after the commit. Each connection announces the city's presence (sync/presence.py): a signed,
retained "online" once subscribed, "offline" as the last will and on stop, so devices resend what
is unacknowledged as soon as central is back. The connection is the project's one paho wrapper,
`sync.mqtt_client.MqttLink`. A device's snapshot request is answered by `SnapshotAnswers`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from pos.clock import SystemClock, iso
from pos.messages import TOPIC_ROOT
from sync.central.consumer import DEVICE_LEAVES, CentralConsumer, Incoming, Outcome
from sync.central.pipeline import StorePipeline
from sync.central.snapshot_answers import SnapshotAnswers
from sync.central.store import central_db
from sync.central.verify_pool import VerifyPool, all_done, default_workers, results
from sync.mqtt_client import MqttLink, MqttSettings
from sync.presence import build_state, state_topic

log = logging.getLogger("ewarung.central")

SESSION_EXPIRY_S = 7 * 24 * 3600  # messages wait on the broker this long while central is down
BATCH_MAX = 2000  # messages per transaction: the per-batch costs (commit, one signed ack per device) shared
PIPELINE = 3  # batches' worth in hand with verify workers: one being stored, the next two verified meanwhile
MAX_RECEIVE = 65_535  # MQTT 5's largest Receive Maximum
READ_MIN = 64  # messages a poll may take at least


def subscriptions(group: str | None) -> list[str]:
    """The device topics central reads; with a group, as a shared subscription so the broker hands
    each message to one consumer of the group."""
    topics = [f"{TOPIC_ROOT}/devices/+/{leaf}" for leaf in DEVICE_LEAVES]
    return [f"$share/{group}/{t}" for t in topics] if group else topics


class MqttRunner:
    """Runs a CentralConsumer against a broker: manual PUBACK after commit, then signed acks."""

    def __init__(self, consumer: CentralConsumer, host: str, port: int, *, client_id: str,
                 group: str | None = "ewarung-central", batch_max: int = BATCH_MAX,
                 gap_retry: timedelta = timedelta(seconds=30), on_batch: Callable[[Outcome], None] | None = None,
                 tls: dict | None = None, username: str | None = None, password: str | None = None,
                 city: str | None = "samarinda", snapshot_every: float = 10.0,
                 verify_workers: int | None = None, ledger_signer=None, confirm_every: float = 5.0) -> None:
        """`verify_workers`: processes that check signatures while this thread receives and stores
        (default one per core, up to 4, on 2 or more CPUs, else 0 = verify in this thread). `tls`
        holds paho's `tls_set` names: ca_certs, certfile, keyfile. `ledger_signer` signs the snapshots
        built for devices that ask (without it, only a stored snapshot of the current version) and
        the deltas of confirmed spending, published every `confirm_every` seconds when there is news."""
        self.consumer, self.batch_max, self.gap_retry, self.on_batch = consumer, batch_max, gap_retry, on_batch
        self.stop_event = threading.Event()
        self.connected = threading.Event()
        self.city = city
        self.answers = SnapshotAnswers(city, ledger_signer, snapshot_every)
        self.ledger_signer, self.confirm_every = ledger_signer, confirm_every
        self.totals = Outcome()
        self.verify_workers = default_workers() if verify_workers is None else max(0, verify_workers)
        self._pool: VerifyPool | None = None
        # room for the pipeline's batches: the broker holds back what is not yet acknowledged
        self.receive_maximum = min(MAX_RECEIVE, PIPELINE * max(1, batch_max))
        # idle workers get the first quarter batch while the rest is read (sync/central/pipeline.py)
        self.first_unit = max(1, batch_max // 4)
        tls = tls or {}
        self.link = MqttLink(MqttSettings(
            client_id=client_id, host=host, port=port, keepalive_s=30, session_expiry_s=SESSION_EXPIRY_S,
            inflight=self.receive_maximum, receive_maximum=self.receive_maximum, tls=bool(tls), ca_file=tls.get("ca_certs"),
            cert_file=tls.get("certfile"), key_file=tls.get("keyfile"), username=username or "",
            password=password or "", backoff_min_s=1.0, backoff_max_s=30.0,
            read_max=max(READ_MIN, self.first_unit) if self.verify_workers else 0,
        ), [(t, 1) for t in subscriptions(group)])
        self._inbox = self.link.events.messages
        self._db_backoff = 1.0
        self._last_error = ""
        self.client_id, self._since = client_id, ""
        self.presence_topic = state_topic(city) if city else ""
        if self.presence_topic:
            self.link.before_connect = self._date_connection

    def start(self) -> None:
        """One thread does both network and storage: no GIL convoy between a paho network thread
        and the CPU-bound store (measured: several times the throughput of two threads). Signatures
        are checked in `verify_workers` processes, started (and warmed up) here unless
        `start_workers` did it before."""
        if self._pool is None:
            self.start_workers()
        self.worker = threading.Thread(target=self._work, name="central-consumer", daemon=True)
        self.worker.start()

    def start_workers(self) -> None:
        """Start the verify worker processes and wait until each has loaded its code (a spawned
        worker imports the verifier afresh), so the first batch does not wait for them."""
        if not self.verify_workers or self._pool is not None:
            return
        try:
            self._new_pool().warm_up(self.consumer.issuer_pems)
        except Exception as exc:  # noqa: BLE001 - no worker: verify in the consumer thread
            self._no_workers(f"did not start ({exc})")

    def stop(self) -> None:
        """Finish the batch in hand, stop the workers and disconnect cleanly."""
        self.stop_event.set()
        self.worker.join(timeout=15)

    def _pump(self, timeout: float) -> None:
        """Run the network loop once (the link reconnects with backoff when it is down)."""
        self.link.poll(timeout)
        events = self.link.events
        events.pubacks.clear()  # acks are fire-and-forget: a lost one is answered again on the resend
        if events.just_connected:
            events.just_connected = False
            if self.presence_topic:  # after the SUBSCRIBE on this connection: resends find it in place
                self.link.publish(self.presence_topic, self.presence("online"), qos=1, retain=True)
        if events.connected:
            self.connected.set()
        else:
            self.connected.clear()
        if events.last_error != self._last_error:
            self._last_error = events.last_error
            if self._last_error:
                log.warning("broker: %s", self._last_error)

    def _date_connection(self) -> None:
        """Each connection gets its own `since` (wall-clock, not the consumer's clock, which tests
        may stop), and the last will that will say this connection is gone."""
        self._since = iso(SystemClock().now())
        self.link.set_will(self.presence_topic, self.presence("offline"))

    def presence(self, state: str) -> bytes:
        """This connection's signed state, for the presence topic."""
        return build_state(self.city or "", state, self._since, self.client_id, self.consumer.signer)

    def _pipeline(self) -> StorePipeline:
        """Units of half a batch to the verify workers, stored in batches of `batch_max`; without
        workers, one batch at a time verified and stored here."""
        if not self.verify_workers:
            return StorePipeline(self.batch_max, capacity=self.batch_max, unit_max=self.batch_max,
                                 first_unit=self.batch_max, submit=self._submit, verdicts=self._verdicts, done=_done)
        return StorePipeline(self.batch_max, capacity=PIPELINE * self.batch_max, unit_max=max(1, self.batch_max // 2),
                             first_unit=self.first_unit, submit=self._submit, verdicts=self._verdicts, done=_done)

    def _work(self) -> None:
        """Receive -> (verify in the worker processes) -> store + commit -> PUBACK + signed acks.
        With verify workers, the next units are verified while a batch is stored (sync/central/
        pipeline.py); batches are stored and acknowledged strictly in order."""
        last_gap_check = last_confirmed = time.monotonic()
        pipeline = self._pipeline()
        try:
            while not self.stop_event.is_set():
                self._pump(0.2 if not self._inbox and not pipeline else 0.0)
                # keep reading while packets are waiting, up to one unit
                while 0 < len(self._inbox) < pipeline.room():
                    before = len(self._inbox)
                    self._pump(0.0)
                    if len(self._inbox) == before:
                        break
                taken = self._take(pipeline.room())
                if taken:
                    pipeline.add(taken)
                found = pipeline.next_batch(arriving=bool(taken))
                if found is not None and not self._store_and_ack(*found):
                    pipeline.clear()  # not acknowledged either: the broker redelivers them
                    self._inbox.clear()
                    continue
                for topic, token in self.answers.due():
                    self.link.publish(topic, token, qos=1)
                if time.monotonic() - last_confirmed > self.confirm_every:
                    last_confirmed = time.monotonic()
                    self._publish_confirmed()
                if time.monotonic() - last_gap_check > 5:
                    last_gap_check = time.monotonic()
                    for topic, token in self.consumer.overdue_gaps(self.gap_retry):
                        self.link.publish(topic, token, qos=1)
        finally:
            self.answers.close()
            self._drop_pool()
            if self.presence_topic:
                self.link.close(self.presence_topic, self.presence("offline"))
            else:
                self.link.close()
            self.connected.clear()

    def _take(self, room: int) -> list[Incoming]:
        """Up to `room` received messages, oldest first, out of the inbox."""
        taken = self._inbox[:room]
        del self._inbox[:len(taken)]
        return list(map(Incoming._make, taken))

    def _publish_confirmed(self) -> None:
        """What the city stored since the last confirmed-spending delta, to every device (retained:
        a device that connects later gets it, and asks for a snapshot if it does not fit)."""
        if self.ledger_signer is None or not self.city or not self.link.events.connected:
            return
        from sync.central.confirmed_publish import publish_confirmed

        try:
            delta = publish_confirmed(signer=self.ledger_signer, city=self.city, now=SystemClock().now())
        except Exception as exc:  # noqa: BLE001 - database down: the store path reports and retries it
            log.warning("confirmed spending not published: %s", exc)
            return
        if delta is not None:
            for topic, token in delta.messages(self.city):
                self.link.publish(topic, token, qos=1, retain=True)
            log.info("ledger v%d: %d confirmed redemptions and voids published", delta.version, delta.households)

    def _store_and_ack(self, batch: list[Incoming], verdicts) -> bool:
        """Commit the batch, then PUBACK it and publish the signed acks; on a database failure
        acknowledge nothing and reconnect, so the broker delivers the batch again."""
        try:
            outcome = self.consumer.process(batch, verdicts)
        except Exception as exc:
            # nothing committed: no PUBACK and no ack; the broker redelivers after the reconnect
            log.error("storing a batch of %d failed (%s); nothing acknowledged, retrying in %.0f s",
                      len(batch), exc, self._db_backoff)
            self.totals.failures += 1
            try:
                central_db.close()  # a fresh connection next time (database restarted)
            except Exception:  # noqa: BLE001 - already broken
                pass
            self.stop_event.wait(self._db_backoff)
            self._db_backoff = min(self._db_backoff * 2, 30.0)
            self.link.reconnect()
            self.connected.clear()
            return False
        # committed: now the broker may forget the messages and the devices may too
        self._db_backoff = 1.0
        self.link.ack_all([(m.mid, m.qos) for m in batch])
        for topic, token in outcome.acks + outcome.resends:
            self.link.publish(topic, token, qos=1)
        self.answers.want(outcome.snapshot_requests)
        self.totals.stored += outcome.stored
        self.totals.duplicates += outcome.duplicates
        self.totals.rejected += outcome.rejected
        if self.on_batch:
            self.on_batch(outcome)
        return True

    # --- signature verification in worker processes ---------------------------------------
    def _submit(self, batch: list[Incoming]) -> tuple | None:
        """Hand the batch's checks to the workers, with the card issuer keys the consumer trusts (a
        few PEMs a batch; None: `process` verifies them here)."""
        if not self.verify_workers:
            return None
        try:
            jobs, where, pems = self.consumer.verify_jobs(batch)
        except Exception:  # noqa: BLE001 - registry unreadable (database down): process() fails the same way and retries
            return None
        if not jobs:
            return None
        try:
            return (self._pool or self._new_pool()).submit(jobs, pems, self.consumer.issuer_pems), where
        except Exception as exc:  # noqa: BLE001 - a broken pool: verify in this thread
            self._no_workers(f"unavailable ({exc})")
            return None

    def _verdicts(self, batch: list[Incoming], job: tuple | None) -> list | None:
        """The workers' verdicts aligned with `batch`; None (verify here) if a worker died."""
        if job is None:
            return None
        futures, where = job
        try:
            found = results(futures)
        except Exception as exc:  # noqa: BLE001 - a worker died: verify this batch here instead
            self._no_workers(f"failed ({exc})")
            return None
        verdicts: list = [None] * len(batch)
        for i, v in zip(where, found, strict=True):
            verdicts[i] = v
        return verdicts

    def _new_pool(self) -> VerifyPool:
        self._pool = VerifyPool(self.verify_workers)
        return self._pool

    def _no_workers(self, why: str) -> None:
        """Verify in the consumer thread from now on (slower, never wrong)."""
        log.warning("signature worker %s; verifying in the consumer thread from now on", why)
        self.verify_workers = 0
        self._drop_pool()

    def _drop_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def _done(job: tuple | None) -> bool:
    return job is None or all_done(job[0])
