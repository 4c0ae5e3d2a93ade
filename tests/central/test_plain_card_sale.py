"""The verify worker judges the usual card sale in few steps (EvidenceChecks.plain_card_sale) and
everything else check by check (detailed_redemption). A hostile device signs whatever JSON it likes,
so the two must never disagree: from real card sales (a real Applet charged through the terminal's
CardClient), mutate fields, types, lines, proof, certificate, period and created_at, add and drop
keys, and the verdict (Checked, or the refusal's text) must equal the detailed checks' alone."""

from __future__ import annotations

import copy
import json
from datetime import date

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware.card import evidence
from hardware.card.certificate import key_id
from hardware.card.fake import FakeCard, demo_issuer, demo_issuer_keys
from hardware.card.issuing import IssueRequest, personalise
from pos.card_proof import CardProof, CardTransaction, lines_digest, redemption_evidence
from pos.messages import MESSAGE_TYP, build_envelope, schema_name
from pos.ports import AuthenticatedCard, CardCertificate, SpendRecord
from pos.signing import EcdsaSigner, b64url, jws_sign
from sync.central import verify
from sync.central.evidence_checks import sale_moment
from sync.central.verify import Checked, Verifier
from tests.central.card_sales import CREATED_AT, PERIOD, Counter, at_counter, sale_body

SHOPS = (Counter("EW-PF-0001"), Counter("EW-PF-0002"))
NOVEMBER_ONLY = FakeCard("SSN-PF-0002", "SMD-000002", valid_from=date(2026, 11, 1), valid_until=date(2026, 11, 30))
ROGUE_KEY = ec.generate_private_key(ec.SECP256R1())
"""A chip that signs whatever it is sent, with a genuine certificate valid 10 to 20 November: the
test re-signs a mutated sale with it, so the mutation meets the checks after the card's signature."""
ROGUE = IssueRequest("SSN-PF-ROGUE", "SMD-000003", date(2026, 11, 10), date(2026, 11, 20), "1234", 3, "")


def _rogue_sale(shop: Counter) -> dict:
    certificate = bytes.fromhex(personalise(ROGUE, demo_issuer(), card_key=ROGUE_KEY).certificate_hex)
    tx = CardTransaction(shop.device_id, "rogue-1", PERIOD, 20_000, 50_000, lines_digest((("GULA1", 1, 20_000),)))
    proof = CardProof(tx, 9, 2, bytes(range(16)), b"", b"unsigned")
    info = CardCertificate(ROGUE.card_id, ROGUE.household_id, ROGUE.valid_from, ROGUE.valid_until,
                           key_id(demo_issuer().public_key()))
    body = sale_body(AuthenticatedCard(info, SpendRecord(PERIOD, 0, 8), 3, certificate), proof,
                     (("GULA1", 1, 20_000),), card_counter=9)
    _resign(shop, body)
    return body


def _resign(shop: Counter, body: dict) -> None:
    """The rogue chip signs the transaction the (mutated) message now describes, if it can be encoded."""
    try:
        message = evidence.signed_message(redemption_evidence(shop.device_id, body))
    except (ValueError, TypeError, AttributeError):
        return
    body["card"]["proof"]["signature"] = b64url(ROGUE_KEY.sign(message, ec.ECDSA(hashes.SHA256())))


def _sales() -> list[tuple[Counter, dict]]:
    """Honest card sales: two sales of one card (op 2), the second read back (op 3), a three-line
    sale (unsorted codes, a free item) by a card valid for November only, and the rogue chip's."""
    first = at_counter(FakeCard("SSN-PF-0001", "SMD-000001"))
    sales = [(SHOPS[0], sale_body(first.auth, first.charge(SHOPS[0].device_id)))]
    tahu = (("TAHU", 3, 5_000),)
    second = first.charge(SHOPS[0].device_id, tahu)
    sales.append((SHOPS[0], sale_body(first.auth, second, tahu, card_counter=second.counter)))
    read_back = first.session.last_transaction()
    sales.append((SHOPS[0], sale_body(first.auth, read_back, tahu, card_counter=read_back.counter)))
    november = at_counter(NOVEMBER_ONLY)
    basket = (("ZZ.9", 1, 1_500), ("AIR-1", 2, 0), ("MIE_2", 4, 3_000))
    sold = november.charge(SHOPS[1].device_id, basket)
    sales.append((SHOPS[1], sale_body(november.auth, sold, basket, card_counter=sold.counter)))
    sales.append((SHOPS[1], _rogue_sale(SHOPS[1])))
    return [(shop, build_envelope("redemption", f"id-{n}", shop.device_id, n + 1, CREATED_AT, body))
            for n, (shop, body) in enumerate(sales)]


SALES = _sales()


class Detailed(Verifier):
    """The reference: every envelope and every sale judged check by check."""

    def __init__(self) -> None:
        super().__init__(demo_issuer_keys())
        self.evidence.plain_card_sale = lambda *args: None

    def envelope(self, device_id: str, leaf: str, key, token: bytes) -> dict:
        return verify._checked_envelope(self.token(device_id, key, token), device_id, leaf)


FAST, DETAILED = Verifier(demo_issuer_keys()), Detailed()


def verdict(verifier: Verifier, shop: Counter, token: bytes, leaf: str = "redemption") -> object:
    try:
        return verifier.check(shop.device_id, leaf, verifier.key_for(shop.pem()), token)
    except ValueError as exc:  # BadSignature is a ValueError
        return type(exc).__name__, str(exc)


def sign(shop: Counter, env: object) -> bytes:
    """The envelope signed as a hostile device may sign it: any JSON (floats, duplicate keys aside)."""
    return jws_sign(json.dumps(env).encode("utf-8"), EcdsaSigner(shop.key, shop.device_id), MESSAGE_TYP)


# --- mutations --------------------------------------------------------------------------------

BODY_KEYS = ("redemption_id", "household", "card_id", "card_counter", "period", "mode", "override_reason", "lines",
             "total", "card", "shop_id", "void_id", "event", "extra")
CARD_KEYS = ("certificate", "proof", "transaction", "extra")
PROOF_KEYS = ("op", "counter", "period_total", "challenge", "signature", "extra")
LINE_KEYS = ("item", "qty", "unit_price", "amount", "extra")
ENVELOPE_KEYS = ("created_at", "id", "seq", "device", "schema", "body", "extra")
PATHS = ([(k,) for k in ENVELOPE_KEYS] + [("body", k) for k in BODY_KEYS] + [("body", "card", k) for k in CARD_KEYS]
         + [("body", "card", "proof", k) for k in PROOF_KEYS]
         + [("body", "lines", i, k) for i in (0, 1, 2) for k in LINE_KEYS])
TIMES = ("2026-11-15T02:00:00.000Z", "2026-11-30T15:59:59Z", "2026-11-30T16:00:00Z", "2026-12-01T00:04:59+08:00",
         "2026-12-01T00:05:00+08:00", "2026-10-31T16:00:00Z", "2026-11-01T00:00:00+08:00", "2026-11-15T10:00:00",
         "2026-11-15", "2026-11-09T15:59:59Z", "2026-11-09T16:00:00Z", "2026-11-20T15:59:59Z",
         "2026-11-20T16:00:00Z", "2026-11-25T02:00:00Z", "2026-11-05T02:00:00.5-03:00", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00", "not a time", "2026-11-15T02:00:00+00:00")
SCALARS = st.one_of(
    st.sampled_from([0, 1, 2, 3, -1, 7, 2**32 - 1, 2**32, 2**63, -(2**63), True, False, None, "", "card", "override",
                     "2026-11", "2026-12", "2026-13", "2099-11", "1999-11", "x" * 70, "é", 1.0, 2.0, 0.5,
                     "00112233445566778899aabbccddeeff", "00112233445566778899AABBCCDDEEFF", "TAHU", "AAA"]),
    st.integers(-3, 2**33), st.text(max_size=12), st.floats(allow_nan=False, allow_infinity=False))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.text(max_size=4), SCALARS, max_size=3))


def _parent(env: dict, path: tuple) -> tuple[object, object]:
    node = env
    for step in path[:-1]:
        inside = isinstance(node, list) and isinstance(step, int) and step < len(node)
        if not inside and not (isinstance(node, dict) and step in node):
            return None, None
        node = node[step]
    return node, path[-1]


def _apply(env: dict, donor: dict, op: tuple) -> None:
    kind, path, value = op
    node, key = _parent(env, path)
    if node is None or (isinstance(node, list) and not (isinstance(key, int) and key < len(node))):
        return
    if not isinstance(node, dict | list):
        return
    if kind == "drop" and isinstance(node, dict):
        node.pop(key, None)
    elif kind == "set":
        node[key] = value
    elif kind == "donor":
        other, other_key = _parent(donor, path)
        if isinstance(other, dict) and other_key in other:
            node[key] = copy.deepcopy(other[other_key])
    elif kind == "nudge":
        old = node.get(key) if isinstance(node, dict) else node[key]
        if type(old) is int:
            node[key] = old + value
        elif type(old) is str and old:
            at = abs(value) % len(old)
            node[key] = old[:at] + ("A" if old[at] != "A" else "B") + old[at + 1:]


def _lines_op(env: dict, op: str) -> None:
    body = env.get("body")
    lines = body.get("lines") if isinstance(body, dict) else None
    if not isinstance(lines, list):
        return
    if op == "reverse":
        lines.reverse()
    elif op == "drop" and lines:
        lines.pop()
    elif op == "repeat" and lines:
        lines.append(copy.deepcopy(lines[0]))
    elif op == "empty":
        lines.clear()


OPS = st.one_of(
    st.tuples(st.just("drop"), st.sampled_from(PATHS), st.none()),
    st.tuples(st.just("set"), st.sampled_from(PATHS), VALUES),
    st.tuples(st.just("set"), st.just(("created_at",)), st.sampled_from(TIMES)),
    st.tuples(st.just("donor"), st.sampled_from(PATHS), st.none()),
    st.tuples(st.just("nudge"), st.sampled_from(PATHS), st.integers(-2, 2)),
    st.tuples(st.just("lines"), st.sampled_from(["reverse", "drop", "repeat", "empty"]), st.none()),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sale=st.integers(0, len(SALES) - 1), donor=st.integers(0, len(SALES) - 1), ops=st.lists(OPS, max_size=3),
       signer=st.integers(0, 1), resign=st.booleans(), leaf=st.sampled_from(["redemption"] * 4 + ["void", "event"]))
def test_the_plain_path_judges_every_message_as_the_detailed_checks_do(sale, donor, ops, signer, resign, leaf):
    shop, env = SALES[sale]
    env = copy.deepcopy(env)
    if leaf != "redemption":  # the other sequenced kinds, with a body of theirs
        env["schema"] = schema_name(leaf)
        env["body"] = {"void_id": "v-1", "redemption_id": "r-1"} if leaf == "void" else {"event": "card_removed"}
    for op in ops:
        if op[0] == "lines":
            _lines_op(env, op[1])
        else:
            _apply(env, SALES[donor][1], op)
    shop = SHOPS[signer] if signer else shop  # a sale's proof reported by the other shop too
    if resign and isinstance(env.get("body"), dict):
        _resign(shop, env["body"])  # the card's signature over the mutated sale: the checks after it decide
    token = sign(shop, env)
    assert verdict(FAST, shop, token, leaf) == verdict(DETAILED, shop, token, leaf)


@pytest.mark.parametrize("n", range(len(SALES)))
def test_every_honest_sale_takes_the_plain_path_and_has_no_problem(n):
    """Without this, a fast path that always gave up would pass the property above."""
    shop, env = SALES[n]
    got = FAST.check(shop.device_id, "redemption", FAST.key_for(shop.pem()), sign(shop, env))
    assert isinstance(got, Checked) and got.problems == ()
    plain = FAST.evidence.plain_card_sale
    assert plain(shop.device_id, got.envelope["body"], sale_moment(got.envelope["created_at"])) == []


def test_a_forged_signature_is_worded_by_the_card_evidence_on_the_plain_path_too():
    """The plain path says the card's own reason when only the card's signature fails (no second
    verification in the detailed checks), in exactly the detailed checks' words."""
    shop, env = SALES[0]
    body = copy.deepcopy(env["body"])
    body["card"]["proof"]["signature"] = SALES[1][1]["body"]["card"]["proof"]["signature"]
    moment = sale_moment(env["created_at"])
    plain = FAST.evidence.plain_card_sale(shop.device_id, body, moment)
    assert plain is not None and len(plain) == 1 and "did not sign this transaction" in plain[0]
    assert plain == DETAILED.evidence.detailed_redemption(shop.device_id, body, env["created_at"], moment)


KEY_PATHS = [("body", "card_counter"), ("body", "card_id"), ("body", "household"), ("body", "period"),
             ("body", "total"), ("body", "mode"), ("body", "card", "proof", "counter"),
             ("body", "card", "proof", "period_total"), ("body", "card", "proof", "op"),
             ("body", "lines", 0, "qty"), ("body", "lines", 0, "unit_price"), ("body", "lines", 0, "amount"),
             ("body", "lines", 0, "item")]
ROGUE_OPS = st.one_of(
    st.tuples(st.sampled_from(["set"]), st.sampled_from(KEY_PATHS), SCALARS),
    st.tuples(st.sampled_from(["nudge", "drop"]), st.sampled_from(KEY_PATHS), st.integers(-2, 2)),
    st.tuples(st.just("set"), st.just(("created_at",)), st.sampled_from(TIMES)),
    st.tuples(st.just("set"), st.just(("body", "period")), st.sampled_from(["2026-10", "2026-12", "2027-11", "2026-1"])),
    st.tuples(st.just("set"), st.sampled_from([("body", "household"), ("body", "card_id")]),
              st.sampled_from(["SMD-000001", "SSN-PF-0001", "", "smd-000003"])),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(ROGUE_OPS, min_size=1, max_size=3))
def test_a_chip_that_signs_anything_meets_the_same_checks_on_both_paths(ops):
    """The rogue chip's signature holds over each mutated sale, so what decides is every check after
    it (card, household, dates, counter, period total, arithmetic, period), on both paths."""
    shop, env = SALES[-1]
    env = copy.deepcopy(env)
    for op in ops:
        _apply(env, env, op)
    _resign(shop, env["body"])
    token = sign(shop, env)
    assert verdict(FAST, shop, token) == verdict(DETAILED, shop, token)


ENVELOPE_VALUES = {
    "id": ["", "x" * 64, "x" * 65, 5, None, ["a"]],
    "seq": [0, 1, -1, True, 1.0, "1", 2**70],
    "device": ["EW-PF-0002", None, "ew-pf-0001"],
    "schema": ["ewarung.redemption/1", "ewarung.redemption/2", "ewarung.void/1", "ewarung.event/1", None],
    "body": [[], None, {}, "x", {"void_id": "v", "redemption_id": 3}, {"void_id": "v", "redemption_id": "r"}],
    "created_at": [5, None, "", *TIMES[:3]],
}
ENVELOPE_OPS = st.sampled_from(sorted(ENVELOPE_VALUES)).flatmap(
    lambda key: st.tuples(st.sampled_from(["set", "drop"]), st.just((key,)), st.sampled_from(ENVELOPE_VALUES[key])))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sale=st.integers(0, len(SALES) - 1), ops=st.lists(ENVELOPE_OPS, min_size=1, max_size=2),
       leaf=st.sampled_from(["redemption", "redemption", "void", "event"]))
def test_the_quick_look_at_an_envelope_refuses_as_the_close_one(sale, ops, leaf):
    shop, env = SALES[sale]
    env = copy.deepcopy(env)
    for op in ops:
        _apply(env, env, op)
    token = sign(shop, env)
    assert verdict(FAST, shop, token, leaf) == verdict(DETAILED, shop, token, leaf)


def _tampered(token: bytes, how: str) -> bytes:
    head, payload, signature = token.split(b".")
    if how == "signature":
        return b".".join((head, payload, (b"A" if signature[:1] != b"A" else b"B") + signature[1:]))
    if how == "payload":
        return b".".join((head, payload[:-2] + (b"A" if payload[-2:-1] != b"A" else b"B") + payload[-1:], signature))
    if how == "form":
        return head + b"." + payload
    return token


MESSAGES = st.tuples(st.integers(0, len(SALES) - 1), st.lists(OPS, max_size=2), st.integers(0, 1), st.booleans(),
                     st.sampled_from(["redemption"] * 5 + ["void", "event"]),
                     st.sampled_from(["none"] * 5 + ["signature", "payload", "form", "other shop"]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=st.lists(MESSAGES, min_size=1, max_size=8))
def test_a_batch_in_phases_judges_each_message_as_check_does(messages):
    """verify_batch checks a batch in phases (every device signature, then every card signature):
    each message's verdict is still the one `check` gives it alone, refusals included."""
    jobs = []
    for sale, ops, signer, resign, leaf, tamper in messages:
        shop, env = SALES[sale]
        env = copy.deepcopy(env)
        if leaf != "redemption":
            env["schema"] = schema_name(leaf)
            env["body"] = {"void_id": "v-1", "redemption_id": "r-1"} if leaf == "void" else {"event": "card_removed"}
        for op in ops:
            _lines_op(env, op[1]) if op[0] == "lines" else _apply(env, SALES[0][1], op)
        shop = SHOPS[signer] if signer else shop
        if resign and isinstance(env.get("body"), dict):
            _resign(shop, env["body"])
        token = sign(SHOPS[1 - SHOPS.index(shop)] if tamper == "other shop" else shop, env)
        jobs.append((shop.device_id, leaf, _tampered(token, tamper)))
    pems = {shop.device_id: shop.pem() for shop in SHOPS}
    want = []
    for device_id, leaf, token in jobs:
        got = verdict(DETAILED, next(s for s in SHOPS if s.device_id == device_id), token, leaf)
        want.append((True, got) if isinstance(got, Checked) else (False, got[1]))
    assert FAST.check_batch(jobs, pems) == want
    assert verify.verify_batch(jobs, pems) == want  # the worker's entry, with its own Verifier
    slices, verify.PHASED_JOBS = verify.PHASED_JOBS, 3  # a long batch, in slices
    try:
        assert FAST.check_batch(jobs, pems) == want
    finally:
        verify.PHASED_JOBS = slices
