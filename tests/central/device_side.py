"""Stand-in for the device's sync daemon in the end-to-end test, until the sync branch merges.

It applies the interim ledger snapshot published by central and moves outbox rows through
queued -> published -> acked on central's signed acks. At merge, the end-to-end test switches to
sync's daemon (`ewarung sync`) and sync.ledger_format; this module then goes away.
"""

from __future__ import annotations

import json
import queue
import threading

from pos.clock import iso
from pos.db import (
    CatalogItem,
    Household,
    LedgerState,
    OutboxMessage,
    Plan,
    PlanQuota,
    Representative,
    durable_transaction,
)
from pos.signing import jws_verify
from sync.central.ledger_publish import LEDGER_TYP


def apply_snapshot(db, token: bytes, ledger_keys: dict, now) -> int:
    obj = jws_verify(token, ledger_keys, LEDGER_TYP).json()
    assert obj["kind"] == "snapshot"
    current = LedgerState.select(LedgerState.version).where(LedgerState.id == 1).scalar() or 0
    if obj["version"] <= current and LedgerState.get_by_id(1).kind != "sample":
        raise ValueError(f"ledger v{obj['version']} is not newer than v{current}")
    with durable_transaction(db):
        for model in (Representative, Household, PlanQuota, Plan, CatalogItem):
            model.delete().execute()
        CatalogItem.insert_many([dict(zip(("code", "name_id", "name_en", "unit", "price"), c, strict=True))
                                 for c in obj["catalog"]]).execute()
        Plan.insert_many([{"code": c, "name": n, "allowance": a, "rollover": r} for c, n, a, r, _ in obj["plans"]]).execute()
        quotas = [{"plan": c, "item": i, "max_qty": q} for c, _, _, _, qs in obj["plans"] for i, q in qs.items()]
        if quotas:
            PlanQuota.insert_many(quotas).execute()
        hh = obj["households"]
        for i in range(0, len(hh), 500):
            Household.insert_many([dict(zip(("id", "name", "area", "plan", "status", "valid_from", "valid_until"),
                                            h[:7], strict=True)) for h in hh[i:i + 500]]).execute()
        reps = [{"id": r[0], "household": h[0], "name": r[1], "relation": r[2]} for h in hh for r in h[7]]
        if reps:
            Representative.insert_many(reps).execute()
        LedgerState.delete().execute()
        LedgerState.insert(id=1, version=obj["version"], issued_at=obj["issued_at"], expires_at=obj["expires_at"],
                           applied_at=iso(now), kind="snapshot", signer="ledger").execute()
    return obj["version"]


class DeviceLink:
    """A device's MQTT side: ledger in, outbox out, acks in (QoS 1, MQTT 5)."""

    def __init__(self, port: int, device_id: str, city: str, central_keys: dict) -> None:
        import paho.mqtt.client as mqtt

        self.device_id, self.central_keys = device_id, central_keys
        self.inbox: queue.Queue = queue.Queue()
        self.ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"dev-{device_id}", protocol=mqtt.MQTTv5)
        topics = [(f"ewarung/v1/ledger/{city}/snapshot", 1), (f"ewarung/v1/devices/{device_id}/ack", 1),
                  (f"ewarung/v1/devices/{device_id}/resend", 1)]
        self.client.on_connect = lambda c, u, f, rc, p: (c.subscribe(topics), self.ready.set())
        self.client.on_message = lambda c, u, m: self.inbox.put((m.topic, m.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.ready.wait(10)

    def publish_outbox(self) -> int:
        rows = list(OutboxMessage.select().where(OutboxMessage.state == "queued").order_by(OutboxMessage.seq))
        for row in rows:
            info = self.client.publish(row.topic, bytes(row.payload), qos=1)
            info.wait_for_publish(10)
            assert info.is_published()
            OutboxMessage.update(state="published").where(OutboxMessage.seq == row.seq).execute()
        return len(rows)

    def apply_ack(self, token: bytes, now) -> int:
        ack = jws_verify(token, self.central_keys, "ewarung-ack+jws").json()
        assert ack["schema"] == "ewarung.ack/1" and ack["device"] == self.device_id
        return OutboxMessage.update(state="acked", acked_at=iso(now)).where(
            OutboxMessage.msg_id.in_(ack["ids"])).execute()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def dump(token: bytes) -> dict:
    import base64

    return json.loads(base64.urlsafe_b64decode(token.split(b".")[1] + b"=="))
