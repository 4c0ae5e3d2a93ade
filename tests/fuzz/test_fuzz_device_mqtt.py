"""The device's MQTT intake fuzzed: acknowledgements, resend requests and ledger messages.

Raw bytes (anyone who can publish), and well-signed messages with hostile content (a city bug
or a leaked key: the signature is not the only defence). Only the documented refusals may come
out: AckRefused for acks and resend requests, LedgerRefused for ledger messages. A ledger update
that is refused leaves the live ledger as it was.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pos.clock import FixedClock, iso
from pos.sample_city import demo_key
from pos.signing import EcdsaSigner, canonical_json, jws_sign
from sync.acks import ACK_SCHEMA, ACK_TYP, RESEND_SCHEMA, AckRefused, parse_ack
from sync.ledger_format import CHUNK, DELTA, HOTLIST, LEDGER_TYP, MANIFEST, TABLES, encode_rows
from sync.ledger_intake import LedgerIntake, LedgerRefused
from tests.conftest import NOW
from tests.fuzz.profiles import FUZZ
from tests.fuzz.strategies import DEEP_JSON, JSON, near

DEVICE = "EW-FUZZ-0001"
CENTRAL = EcdsaSigner(demo_key("central"), "central")
LEDGER = EcdsaSigner(demo_key("ledger"), "ledger")
CENTRAL_KEYS = {"central": demo_key("central").public_key()}
LEDGER_KEYS = {"ledger": demo_key("ledger").public_key()}
ISSUED, EXPIRES = iso(NOW - timedelta(hours=1)), iso(NOW + timedelta(days=3))


def _sign(obj, signer, typ) -> bytes:
    return jws_sign(canonical_json(obj), signer, typ)


def _sign_raw(text: str, signer, typ) -> bytes:
    return jws_sign(text.encode(), signer, typ)


RAW = st.one_of(st.binary(max_size=600), st.text(max_size=600).map(str.encode),
                st.lists(st.text(alphabet="abcXYZ-_019", max_size=80), min_size=3, max_size=3).map(
                    lambda p: ".".join(p).encode()))

ACK_LIKE = near({
    "schema": st.sampled_from([ACK_SCHEMA, RESEND_SCHEMA]),
    "device": st.just(DEVICE),
    "acked_at": st.just(ISSUED),
    "ids": st.lists(st.text(max_size=40), max_size=5),
    "ranges": st.lists(st.lists(st.integers(-5, 2**65), min_size=0, max_size=3), max_size=4),
})


@FUZZ
@given(st.one_of(RAW, ACK_LIKE.map(lambda o: _sign(o, CENTRAL, ACK_TYP)),
                 DEEP_JSON.map(lambda t: _sign_raw(t, CENTRAL, ACK_TYP))))
def test_ack_and_resend_only_ack_refused(token):
    try:
        ack = parse_ack(token, CENTRAL_KEYS, DEVICE)
    except AckRefused as exc:
        assert str(exc).startswith("acknowledgement refused")
        return
    assert ack.device == DEVICE and all(1 <= a <= b for a, b in ack.ranges)
    assert all(isinstance(i, str) for i in ack.ids)


@pytest.fixture(scope="module")
def intake(tmp_path_factory):
    from pos.db import open_database
    from pos.sample_city import build_sample_city

    db = open_database(tmp_path_factory.mktemp("ledger-fuzz") / "ewarung.db")
    build_sample_city(db, households=20, now=NOW)
    yield LedgerIntake(db, LEDGER_KEYS, "samarinda", FixedClock(NOW))
    db.close()


def _ledger_like():
    version = st.one_of(st.integers(2, 6), st.integers(-3, 2**70))
    wire = st.sampled_from(sorted(TABLES))
    rows = st.lists(st.lists(JSON, max_size=8), max_size=4)
    common = {"city": st.just("samarinda"), "version": version, "issued_at": st.just(ISSUED),
              "expires_at": st.just(EXPIRES)}
    manifest = near({"schema": st.just(MANIFEST), **common, "chunks": st.integers(0, 3),
                     "rows": st.dictionaries(wire, st.integers(-2, 5), max_size=8),
                     "chunk_sha256": st.lists(st.text(max_size=64), max_size=3)})
    chunk = near({"schema": st.just(CHUNK), "city": st.just("samarinda"), "version": version,
                  "index": st.integers(-2, 2**40), "table": wire,
                  "columns": st.one_of(wire.map(lambda w: list(TABLES[w][1])), st.lists(st.text(max_size=8), max_size=3)),
                  "count": st.integers(0, 4), "data": rows.map(encode_rows)})
    delta = near({"schema": st.just(DELTA), **common, "base_version": st.integers(0, 3),
                  "upserts": st.dictionaries(wire, near({"columns": wire.map(lambda w: list(TABLES[w][1])),
                                                         "rows": rows}), max_size=2),
                  "deletes": st.dictionaries(wire, st.lists(st.lists(JSON, max_size=2), max_size=3), max_size=2)})
    hotlist = near({"schema": st.just(HOTLIST), "city": st.just("samarinda"), "serial": st.integers(-2, 2**70),
                    "issued_at": st.just(ISSUED), "expires_at": st.just(EXPIRES),
                    "add": st.lists(st.lists(JSON, max_size=4), max_size=3), "remove": st.lists(JSON, max_size=3)})
    return st.one_of(manifest, chunk, delta, hotlist)


def _ledger_state(db):
    return db.execute_sql("SELECT version, kind FROM ledger_state").fetchall(), \
        db.execute_sql("SELECT count(*) FROM household").fetchone()[0]


@FUZZ
@given(st.one_of(RAW, _ledger_like().map(lambda o: _sign(o, LEDGER, LEDGER_TYP)),
                 DEEP_JSON.map(lambda t: _sign_raw(t, LEDGER, LEDGER_TYP))))
def test_ledger_messages_only_ledger_refused(intake, token):
    before = _ledger_state(intake.db)
    try:
        result = intake.handle(token)
    except LedgerRefused as exc:
        assert exc.code and str(exc)
        assert _ledger_state(intake.db) == before, "a refused ledger update changed the live ledger"
        return
    if not result.applied:
        assert _ledger_state(intake.db) == before
    json.dumps(result.detail)
