"""docs/mqtt-contract.md and docs/schemas/ stay in step with the code that sends and accepts messages."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from pos.messages import device_topic, ledger_topic
from sync.ledger_format import TABLES
from sync.ledger_intake import LedgerRefused
from tests.card_fixtures import card_sale

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "mqtt-contract.md").read_text()
SCHEMAS = ROOT / "docs" / "schemas"


def test_every_topic_and_schema_is_documented():
    for leaf in ("redemption", "void", "event", "status", "heartbeat", "request", "ack", "resend"):
        assert f"`{device_topic('{device}', leaf)}`" in DOC
        assert (SCHEMAS / f"{leaf}.json").exists()
    for leaf in ("snapshot", "delta", "hotlist"):
        assert f"`{ledger_topic('{city}', leaf)}`" in DOC
    for path in SCHEMAS.glob("*.json"):
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))
        assert f"schemas/{path.name}" in DOC or path.stem == "jws-header" and "jws-header" in DOC


def test_void_reasons_are_the_cores_codes_and_old_free_text_still_validates():
    """Devices send only pos.redemption.VOID_REASONS; the city keeps accepting free text older ones sent."""
    from pos.redemption import VOID_REASONS

    reason = json.loads((SCHEMAS / "void.json").read_text())["properties"]["body"]["properties"]["reason"]
    for code in VOID_REASONS:
        assert f"`{code}`" in DOC and code in reason["description"]
    jsonschema.validate("salah barang", reason)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate("", reason)


def test_a_data_reports_note_is_cut_where_the_schema_says():
    from pos.redemption import DATA_PROBLEM_NOTE_MAX

    event = json.loads((SCHEMAS / "event.json").read_text())["properties"]["body"]["properties"]
    assert event["note"]["maxLength"] == DATA_PROBLEM_NOTE_MAX


def test_ledger_tables_and_columns_match_the_doc():
    for wire, (_table, columns, _key) in TABLES.items():
        line = next((ln for ln in DOC.splitlines() if ln.startswith(f"| `{wire}` |")), None)
        assert line, f"table {wire} missing from the contract"
        positions = [line.find(c) for c in columns]
        assert all(p > 0 for p in positions) and positions == sorted(positions), f"{wire} columns out of order in doc"


def test_refusal_codes_documented_and_in_event_schema():
    import inspect

    import sync.ledger_intake as intake

    codes = set()
    src = inspect.getsource(intake)
    for part in src.split('LedgerRefused("')[1:]:
        codes.add(part.split('"')[0])
    event = json.loads((SCHEMAS / "event.json").read_text())
    allowed = set(event["properties"]["body"]["properties"]["code"]["enum"])
    assert codes <= allowed, codes - allowed
    for code in codes:
        assert f"`{code}`" in DOC
    assert LedgerRefused("x", "y").code == "x"


def _schemas() -> dict:
    return {p.stem: json.loads(p.read_text()) for p in SCHEMAS.glob("*.json")}


def _check(obj: dict, schemas: dict) -> None:
    jsonschema.validate(obj, schemas[obj["schema"].removeprefix("ewarung.").split("/")[0]])


def _payload(token: bytes) -> dict:
    from pos.signing import b64url_decode

    head, payload, _ = token.decode("ascii").split(".")
    jsonschema.validate(json.loads(b64url_decode(head)), _schemas()["jws-header"])
    return json.loads(b64url_decode(payload))


def test_the_texts_examples_validate_against_the_schemas():
    examples = [json.loads(block.split("```", 1)[0]) for block in DOC.split("```json\n")[1:]]
    kinds = {e["schema"] for e in examples}
    assert {"ewarung.event/1", "ewarung.ack/1", "ewarung.resend/1", "ewarung.ledger-delta/1",
            "ewarung.ledger-hotlist/1"} <= kinds, kinds
    schemas = _schemas()
    for example in examples:
        _check(example, schemas)


@pytest.fixture
def daemon(db, city, device, signer, clock, service):
    from pos.redemption import RedemptionRequest
    from pos.sample_city import demo_key, household_id
    from sync.daemon import SyncDaemon, SyncOptions
    from tests.unit.test_sync_daemon import FakeLink

    for i in range(3):
        card_sale(service, RedemptionRequest(household_id(10 + i), "kasir1", {"TAHU": 1}))
    d = SyncDaemon(db, device, signer, FakeLink(), {"central": demo_key("central").public_key()},
                   {"ledger": demo_key("ledger").public_key()}, SyncOptions(inflight=64, heartbeat_s=3600), clock)
    return d


def _central():
    from pos.sample_city import demo_key
    from pos.signing import EcdsaSigner

    return EcdsaSigner(demo_key("central"), "central")


def _ledger_signer():
    from pos.sample_city import demo_key
    from pos.signing import EcdsaSigner

    return EcdsaSigner(demo_key("ledger"), "ledger")


def test_every_message_the_code_sends_validates(daemon, service, clock, city, db, tmp_path):
    import sqlite3
    from datetime import timedelta

    from pos.clock import iso
    from pos.redemption import RedemptionRequest
    from sync.acks import RESEND_SCHEMA, build_ack
    from sync.central.consumer import CentralConsumer
    from sync.ledger_format import (
        SnapshotBuilder,
        build_delta,
        build_hotlist,
        snapshot_tables_from_db,
    )

    schemas = _schemas()
    first = card_sale(service, RedemptionRequest(city.notable["holder"], "kasir1", {"TAHU": 1}))
    service.void(first.redemption_id, "wrong_quantity", "kasir1", "spv1")
    service.redeem(RedemptionRequest(city.notable["partly_spent"], "kasir1", {"TAHU": 1}, mode="override",
                                     override_reason="card_damaged"))  # no card: `card` is null
    daemon.emit_event("ledger_refused", {"code": "wrong_topic", "reason": "x", "topic": "t"})
    daemon.step()
    daemon.request_snapshot(clock.now(), "test")
    sent = {}
    for _topic, payload, _mid in daemon.link.sent:
        obj = _payload(payload)
        _check(obj, schemas)
        sent[obj["schema"]] = obj
    assert {"ewarung.redemption/2", "ewarung.void/1", "ewarung.event/1", "ewarung.status/1",
            "ewarung.heartbeat/1", "ewarung.request/1"} <= set(sent), set(sent)
    now = iso(clock.now())
    consumer = CentralConsumer(_central(), clock)
    city_tokens = [consumer.ack_token("EW-TEST-0001", [("7c0e5a4e-1f3b-4c1a-9d52-0b8f4a6e2d11", 1)], now),
                   consumer.resend_token("EW-TEST-0001", [2, 3, 5], now),
                   build_ack("EW-TEST-0001", now, _central(), ranges=[[1, 2]], schema=RESEND_SCHEMA)]
    later = iso(clock.now() + timedelta(days=7))
    conn = sqlite3.connect(tmp_path / "ewarung.db")
    builder = SnapshotBuilder("samarinda", 2, now, later, _ledger_signer(), 20)
    city_tokens += list(builder.chunks(snapshot_tables_from_db(conn))) + [builder.manifest()]
    conn.close()
    city_tokens += [build_delta("samarinda", 3, 2, now, later, _ledger_signer(), {"plans": [["P", "Plan", 1, 0]]},
                                {"households": [["SMD-1"]]}),
                    build_hotlist("samarinda", 4, now, later, _ledger_signer(), [("C-1", "stolen", now)], ["C-2"])]
    for token in city_tokens:
        _check(_payload(token), schemas)


def _signed(payload: dict, signer, typ: str) -> bytes:
    from pos.signing import canonical_json, jws_sign

    return jws_sign(canonical_json(payload), signer, typ)


def test_what_the_schemas_allow_the_device_accepts(daemon, clock):
    """Acks with ids only or ranges only, and a resend with ranges only, are valid and accepted."""
    from pos.clock import iso
    from pos.db import OutboxMessage
    from sync.acks import ACK_TYP

    schemas = _schemas()
    ids = [m.msg_id for m in OutboxMessage.select().order_by(OutboxMessage.seq)]
    daemon.step()
    daemon.link.events.pubacks += [(mid, True, "Success") for _, _, mid in daemon.link.sent]
    daemon.step()
    topic = "ewarung/v1/devices/EW-TEST-0001/"
    base = {"device": "EW-TEST-0001", "acked_at": iso(clock.now())}
    by_ids = {"schema": "ewarung.ack/1", **base, "ids": ids[:1]}
    by_ranges = {"schema": "ewarung.ack/1", **base, "ranges": [[2, 3]]}
    resend = {"schema": "ewarung.resend/1", **base, "ranges": [[1, 3]]}
    for payload in (by_ids, by_ranges, resend):
        _check(payload, schemas)
    daemon.link.events.messages += [(topic + "ack", _signed(by_ids, _central(), ACK_TYP), 90, 1),
                                    (topic + "ack", _signed(by_ranges, _central(), ACK_TYP), 91, 1)]
    daemon.step()
    assert [m.state for m in OutboxMessage.select().order_by(OutboxMessage.seq)] == ["acked"] * 3
    assert OutboxMessage.select().where(OutboxMessage.kind == "event").count() == 0, "nothing refused"
    daemon.link.sent.clear()
    daemon.link.events.messages.append((topic + "resend", _signed(resend, _central(), ACK_TYP), 92, 1))
    daemon.step()
    resent = [p for t, p, _ in daemon.link.sent if t.endswith("/redemption")]
    assert len(resent) == 3, "acknowledged messages still held are resent on request"


def _refusal_events() -> list[dict]:
    from pos.db import OutboxMessage

    rows = OutboxMessage.select().where(OutboxMessage.kind == "event").order_by(OutboxMessage.seq)
    return [_payload(bytes(m.payload))["body"] for m in rows]


def test_ledger_tokens_must_match_their_topic_and_refusals_say_why(daemon, clock, tmp_path):
    import sqlite3
    from datetime import timedelta

    from pos.clock import iso
    from sync.ledger_format import (
        SnapshotBuilder,
        build_delta,
        build_hotlist,
        snapshot_tables_from_db,
    )
    from sync.ledger_intake import LedgerRefused

    now, later = iso(clock.now()), iso(clock.now() + timedelta(days=7))
    hotlist = build_hotlist("samarinda", 9, now, later, _ledger_signer(), [("C-1", "stolen", now)])
    delta = build_delta("samarinda", 5, 4, now, later, _ledger_signer(), {"plans": [["P", "Plan", 1, 0]]})
    ledger = "ewarung/v1/ledger/samarinda/"
    daemon.link.events.messages += [(ledger + "delta", hotlist, 80, 1), (ledger + "delta", delta, 81, 1)]
    daemon.step()
    events = _refusal_events()
    assert [e["code"] for e in events] == ["wrong_topic", "base_mismatch"], events
    assert "{live}" not in events[1]["reason"] and "live ledger is 1" in events[1]["reason"]
    assert daemon.intake.handle(hotlist, "hotlist").applied, "the same token on its own topic applies"

    conn = sqlite3.connect(tmp_path / "ewarung.db")
    first = SnapshotBuilder("samarinda", 6, now, later, _ledger_signer(), 20)
    chunks = list(first.chunks(snapshot_tables_from_db(conn)))
    other = SnapshotBuilder("samarinda", 6, now, later, _ledger_signer(), 21)
    rival = list(other.chunks(snapshot_tables_from_db(conn)))[0]
    conn.close()
    assert daemon.intake.handle(chunks[0], "snapshot").detail == "chunk 0 staged"
    assert daemon.intake.handle(chunks[0], "snapshot").detail == "duplicate chunk ignored"  # QoS 1 redelivery
    daemon.link.events.messages.append((ledger + "snapshot", rival, 82, 1))
    daemon.step()
    assert _refusal_events()[-1]["code"] == "duplicate_chunk"
    for token, leaf in ((chunks[1], "delta"), (delta, "hotlist"), (hotlist, "snapshot")):
        try:
            daemon.intake.handle(token, leaf)
        except LedgerRefused as exc:
            assert exc.code == "wrong_topic"
        else:
            raise AssertionError(f"{leaf}: accepted")
    schemas = _schemas()
    for body in _refusal_events():
        assert body["code"] in schemas["event"]["properties"]["body"]["properties"]["code"]["enum"]
