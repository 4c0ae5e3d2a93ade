"""The central consumer fuzzed: redemptions, voids, events, status, heartbeats, requests.

One message goes through CentralConsumer.process at a time (central database on SQLite). It may
store, ignore or reject it (kept in `rejected` with the reason); it must never raise, because a
batch that raises is not acknowledged, is redelivered, and raises again: one poison message would
stall the whole city's intake. Inputs: raw bytes on every device topic, unsigned JSON status,
envelopes signed by the registered device with hostile fields, and envelopes signed by another
device (identity theft). Known consumer bugs are in test_central_known_bugs.py.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from pos.clock import FixedClock, iso
from pos.messages import MESSAGE_TYP, TOPIC_ROOT, schema_name
from pos.sample_city import demo_key
from pos.signing import (
    EcdsaSigner,
    b64url,
    canonical_json,
    jws_peek,
    jws_sign,
    public_pem,
)
from sync.central.consumer import DEVICE_LEAVES, CentralConsumer, Incoming
from sync.central.evidence_checks import MAX_PROBLEMS, UNCHECKED
from sync.central.verify import Checked, verify_batch
from tests.conftest import NOW
from tests.fuzz.profiles import FUZZ
from tests.fuzz.strategies import DEEP_JSON, JSON, SCALARS, near

DEVICE, OTHER = "EW-FZ-0001", "EW-FZ-0002"
KEYS = {d: ec.generate_private_key(ec.SECP256R1()) for d in (DEVICE, OTHER)}
SIGNERS = {d: EcdsaSigner(k, d) for d, k in KEYS.items()}
PUBLIC = {d: k.public_key() for d, k in KEYS.items()}


@pytest.fixture(scope="module")
def consumer(tmp_path_factory):
    from sync.central.registry import add_device
    from sync.central.store import open_central

    db = open_central(tmp_path_factory.mktemp("central-fuzz") / "central.db")
    for d, k in KEYS.items():
        add_device(d, public_pem(k.public_key()), shop_id=f"S-{d[-4:]}", now=NOW)
    yield CentralConsumer(EcdsaSigner(demo_key("central"), "central"), FixedClock(NOW))
    db.close()


def topic(device: str, leaf: str) -> str:
    return f"{TOPIC_ROOT}/devices/{device}/{leaf}"


def _genuine() -> tuple[dict, dict]:
    """A real DEMO card's sale body and its charge event body (both honest), to mutate below."""
    from hardware.card.fake import FakeCard
    from tests.central.card_sales import at_counter, charge_body, sale_body

    card = at_counter(FakeCard("SSN-FZ-1", "SSN-6472-0000001"))
    sale = sale_body(card.auth, card.charge(DEVICE))
    last = card.session.last_transaction()
    assert last is not None
    return sale, charge_body(card.auth, last)


GENUINE_SALE, GENUINE_CHARGE = _genuine()
GENUINE = GENUINE_CHARGE["card"]


def _near_genuine(body: dict, fields: tuple[str, ...]) -> st.SearchStrategy[dict]:
    """An honest body with its card's values and a few of its own fields sometimes changed, so the
    fuzz reaches the issuer and card signature checks, not only the parsing before them."""
    def nested(value):
        return near({k: nested(v) for k, v in value.items()}) if isinstance(value, dict) else st.just(value)

    return st.builds(lambda keep, card, name, value: {**body, "card": body["card"] if keep else card, name: value},
                     st.booleans(), nested(body["card"]), st.sampled_from(fields),
                     st.one_of(SCALARS, st.sampled_from([body[f] for f in fields])))


# status and heartbeat numbers stay within 64 bits here: past that the consumer raises (a known bug,
# see test_central_known_bugs.py); everything else may be any size
INT64 = st.integers(-(2**63), 2**63 - 1)
LINE = near({"item": st.sampled_from(["TAHU", "TEMPE", "BERAS"]), "qty": st.integers(-3, 2**70),
             "unit_price": st.integers(0, 10**6), "amount": st.integers(0, 10**7)})
B64 = st.one_of(st.binary(max_size=300).map(lambda b: b64url(b)), st.text(max_size=40))
PROOF = near({"op": st.sampled_from([1, 2, 3]), "counter": st.integers(-1, 2**33), "period_total": st.integers(-1, 2**33),
              "challenge": st.one_of(st.binary(min_size=16, max_size=16).map(bytes.hex), st.text(max_size=40)),
              "signature": B64})
TRANSACTION = near({"device_id": st.sampled_from([DEVICE, OTHER, ""]), "redemption_id": st.uuids().map(str),
                    "period": st.sampled_from(["2026-11", "2026-11\n", "9999-12"]), "amount": st.integers(-1, 2**33),
                    "period_total": st.integers(-1, 2**33),
                    "lines_digest": st.binary(min_size=32, max_size=32).map(bytes.hex)})
CARD = st.one_of(near({"certificate": st.one_of(st.just(GENUINE["certificate"]), B64), "proof": PROOF,
                       "transaction": TRANSACTION}), st.none(), JSON)
BODIES = {
    "redemption": st.one_of(_near_genuine(GENUINE_SALE, ("household", "card_id", "card_counter", "total", "mode",
                                                         "period", "redemption_id", "lines")), near({"redemption_id": st.uuids().map(str), "receipt_no": st.integers(1, 99),
                        "household": st.just("SSN-6472-0000001"), "period": st.just("2026-11"),
                        "total": st.integers(-5, 2**70), "lines": st.lists(LINE, max_size=3),
                        "mode": st.sampled_from(["card", "override"]), "card_counter": SCALARS,
                        "card_id": SCALARS, "override_reason": SCALARS, "card": CARD})),
    "void": near({"void_id": st.uuids().map(str), "redemption_id": st.uuids().map(str), "reason": SCALARS}),
    "event": st.one_of(_near_genuine(GENUINE_CHARGE, ("household", "card_id", "redemption_id", "amount", "period")),
                       near({"event": st.sampled_from(["ack_refused", "card_forged", "data_problem",
                                                       "card_charged_not_sold"]),
                             "detail": JSON, "household": SCALARS, "card_id": SCALARS, "redemption_id": SCALARS,
                             "amount": SCALARS, "period": SCALARS, "card": CARD})),
    "status": near({"state": st.sampled_from(["online", "offline"]), "software": SCALARS}),
    "heartbeat": near({"software": SCALARS, "queue_depth": INT64, "uptime_s": SCALARS,
                       "ledger": near({"version": INT64}), "reader": JSON, "printer": JSON}),
    "request": near({"request": st.sampled_from(["snapshot", "other"]), "have_version": SCALARS}),
}


@st.composite
def signed_message(draw):
    leaf = draw(st.sampled_from(DEVICE_LEAVES))
    signer_id = draw(st.sampled_from([DEVICE, DEVICE, DEVICE, OTHER]))  # OTHER: another device's key
    claimed = draw(st.sampled_from([DEVICE, DEVICE, OTHER]))  # the envelope's device field
    env = draw(near({"schema": st.just(schema_name(leaf)), "id": st.uuids().map(str),
                     "device": st.just(claimed), "seq": st.integers(1, 50) if leaf in ("redemption", "void", "event")
                     else st.none(), "created_at": st.just(iso(NOW)), "body": BODIES[leaf]}))
    return Incoming(topic(DEVICE, leaf), jws_sign(canonical_json(env), SIGNERS[signer_id], MESSAGE_TYP), 1, 1)


RAW = st.one_of(st.binary(max_size=500), st.text(max_size=300).map(str.encode))
raw_message = st.builds(Incoming, st.one_of(st.sampled_from(DEVICE_LEAVES).map(lambda leaf: topic(DEVICE, leaf)),
                                            st.text(max_size=60)), RAW, st.just(1), st.just(1))
unsigned_status = st.builds(
    lambda leaf, body: Incoming(topic(DEVICE, leaf), canonical_json(body), 1, 1),
    st.sampled_from(["status", "heartbeat"]), st.one_of(BODIES["status"], BODIES["heartbeat"]))
deep_header = DEEP_JSON.map(lambda t: Incoming(topic(DEVICE, "redemption"), b64url(t.encode()).encode() + b".e30.AAAA",
                                               1, 1))


def _process_one(consumer, msg: Incoming):
    out = consumer.process([msg])  # must not raise: see the module docstring
    assert out.stored + out.duplicates + out.rejected + out.status_updates + len(out.snapshot_requests) <= 1
    return out


@FUZZ
@given(st.one_of(raw_message, deep_header))
def test_raw_payloads_never_raise(consumer, msg):
    _process_one(consumer, msg)


@FUZZ
@given(signed_message())
def test_signed_hostile_envelopes_never_raise(consumer, msg):
    out = _process_one(consumer, msg)
    if out.stored:  # only what the topic's own device signed, naming itself, is stored
        assert jws_peek(msg.payload)["kid"] == DEVICE


@FUZZ
@given(st.one_of(*(st.tuples(st.just(leaf), BODIES[leaf]) for leaf in ("redemption", "event"))))
def test_the_verify_worker_never_raises_on_card_evidence(message):
    """The worker itself (what the runner's processes run): any card object is a rejection or a
    problem, never an exception that would fail the whole batch's verification."""
    leaf, body = message
    env = {"schema": schema_name(leaf), "id": "7c0e5a4e-1f3b-4c1a-9d52-0b8f4a6e2d11", "device": DEVICE, "seq": 1,
           "created_at": iso(NOW), "body": body}
    token = jws_sign(canonical_json(env), SIGNERS[DEVICE], MESSAGE_TYP)
    [(ok, value)] = verify_batch([(DEVICE, leaf, token)], {DEVICE: public_pem(PUBLIC[DEVICE]).decode()})
    assert isinstance(value, Checked if ok else str)
    if ok:
        assert all(isinstance(p, str) and p and not p.startswith(UNCHECKED) for p in value.problems), value.problems
        assert len(value.problems) <= MAX_PROBLEMS


@FUZZ
@given(unsigned_status)
def test_unsigned_status_never_raises(consumer, msg):
    _process_one(consumer, msg)
