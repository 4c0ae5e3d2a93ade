"""The city checks every sale against the card that paid for it, without trusting the device.

The attacker is a shop owner with root on the device: they hold its registered key, so every
message below carries a valid device signature, and they drive their own terminal, so the card
signs whatever transaction they send it. Each attack must come out of the verify worker
(`verify_batch`, what the consumer's worker processes run) with a problem naming it, so the sale is
quarantined, never counted; the honest sale comes out with none."""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import date
from pathlib import Path

import jsonschema
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from hardware.card import evidence
from hardware.card.applet import Applet
from hardware.card.certificate import key_id
from hardware.card.fake import ChipMemory, FakeCard, demo_issuer, demo_issuer_keys
from hardware.card.issuing import IssueRequest, personalise
from pos.card_proof import CardEvidence, CardProof, CardTransaction, lines_digest
from pos.messages import build_envelope
from pos.ports import AuthenticatedCard, CardCertificate, SpendRecord
from sync.central.evidence_checks import issuer_pems
from sync.central.verify import Checked, Verifier, verify_batch
from tests.central.card_sales import (
    CREATED_AT,
    LINES,
    PERIOD,
    Counter,
    at_counter,
    charge_body,
    override_body,
    sale_body,
)

ISSUERS = issuer_pems(demo_issuer_keys())
ROOT = Path(__file__).resolve().parents[2]


def _card(n: int = 1, **kw) -> FakeCard:
    return FakeCard(f"SSN-CV-{n:04d}", f"SMD-{n:06d}", **kw)


def checked(counter: Counter, token: bytes, leaf: str = "redemption", issuers=ISSUERS) -> Checked:
    """The worker's verdict on one message from `counter`: it must be storable (device-signed, shaped)."""
    [(ok, value)] = verify_batch([(counter.device_id, leaf, token)], {counter.device_id: counter.pem()}, issuers)
    assert ok, value
    assert isinstance(value, Checked)
    return value


def problems(counter: Counter, body: dict, leaf: str = "redemption", **kw) -> str:
    return " | ".join(checked(counter, counter.sign(body, leaf, **kw), leaf).problems)


@pytest.fixture
def shop() -> Counter:
    return Counter("EW-CV-0001")


def test_an_honest_card_sale_and_an_honest_override_have_no_problem(shop):
    card = at_counter(_card())
    proof = card.charge(shop.device_id)
    assert problems(shop, sale_body(card.auth, proof)) == ""
    again = card.charge(shop.device_id, (("TAHU", 3, 5_000),))  # a second sale: counter and period total grow
    assert problems(shop, sale_body(card.auth, again, (("TAHU", 3, 5_000),))) == ""
    assert problems(shop, override_body("SMD-000002")) == ""


def test_a_sale_committed_with_the_read_back_proof_is_honest_too(shop):
    """The terminal lost SPEND's answer and read the card's last transaction (op 3): the same sale."""
    card = at_counter(_card())
    spent = card.charge(shop.device_id)
    read_back = card.session.last_transaction()
    assert read_back is not None and read_back.op == 3 and read_back.transaction == spent.transaction
    assert problems(shop, sale_body(card.auth, read_back)) == ""


def test_a_card_sale_with_no_card_proof(shop):
    """A device key alone fabricates a sale for a household in its ledger: no card, no sale."""
    card = at_counter(_card())
    body = sale_body(card.auth, card.charge(shop.device_id), card=None)
    assert "without the card's proof" in problems(shop, body)
    del body["card"]  # a v1 body under the v2 schema
    assert "no card field" in problems(shop, body)


def test_a_card_proof_taken_from_another_sale(shop):
    """The card's proof of one sale, copied into a made-up sale of the same household."""
    card = at_counter(_card())
    first = sale_body(card.auth, card.charge(shop.device_id))
    made_up = sale_body(card.auth, card.charge(shop.device_id), card=first["card"],
                        card_counter=first["card_counter"])
    assert "did not sign this transaction" in problems(shop, made_up)
    bigger = dict(first, lines=[{"item": "BERAS5", "qty": 2, "unit_price": 70_000, "amount": 140_000},
                                *first["lines"][1:]], total=first["total"] + 70_000)
    assert "did not sign this transaction" in problems(shop, bigger)


def test_a_card_proof_replayed_by_another_device(shop):
    """A proof a card gave shop A, reported as a sale by shop B (whose key the attacker holds)."""
    card = at_counter(_card())
    body = sale_body(card.auth, card.charge(shop.device_id))
    assert "did not sign" in problems(Counter("EW-CV-0002"), body)


def test_a_forged_certificate_and_an_unknown_issuer(shop):
    """A chip personalised by the attacker: a certificate naming the city's issuer but signed by
    their own key, accepted by their own terminal; and one from an issuer the city does not know."""
    attacker = ec.generate_private_key(ec.SECP256R1())
    demo_id = key_id(demo_issuer().public_key())
    request = IssueRequest("SSN-FAKE-1", "SMD-000001", date(2025, 1, 1), date(2029, 12, 31), "1234", 3, "")
    forged = Applet(ChipMemory(personalise(request, demo_issuer(), sign_with=attacker)))
    card = at_counter(forged, {demo_id: attacker.public_key()})  # type: ignore[arg-type]
    assert "forged" in problems(shop, sale_body(card.auth, card.charge(shop.device_id)))
    own = Applet(ChipMemory(personalise(request, attacker)))
    card = at_counter(own, {key_id(attacker.public_key()): attacker.public_key()})  # type: ignore[arg-type]
    assert "unknown issuer key" in problems(shop, sale_body(card.auth, card.charge(shop.device_id)))


def test_an_inflated_total_the_card_was_made_to_sign(shop):
    """The attacker's terminal asks the card to sign 150,000 for one item priced 7,000: the card
    signs any amount its record allows, so the city adds the lines up itself."""
    card = at_counter(_card())
    lines = (("TAHU", 1, 7_000),)
    proof = card.charge(shop.device_id, lines, amount=150_000)
    found = problems(shop, sale_body(card.auth, proof, lines))
    assert "total 150000 is not the sum of its lines (7000)" in found
    assert "did not sign" not in found  # the card did sign it: the arithmetic is what catches it


def test_a_line_at_the_wrong_amount_for_its_quantity(shop):
    card = at_counter(_card())
    lines = (("TAHU", 2, 7_000),)
    proof = card.charge(shop.device_id, lines, amount=7_000)
    body = sale_body(card.auth, proof, lines)
    body["lines"][0]["amount"] = 7_000
    found = problems(shop, body)
    assert "line 'TAHU': amount 7000 is not 2 x 7000" in found and "not the sum of its lines (14000)" in found


@pytest.mark.parametrize(("lines", "wanted"), [
    ((("TAHU", 1, -5_000),), "total -5000 is not positive"),
    ((("TAHU", 1, 0),), "total 0 is not positive"),
    ((("TAHU", -2, 5_000),), "quantity -2 is below 1"),
    ((("TAHU", 1, -5_000),), "unit price -5000 is negative"),
    ((), "at least one line"),
])
def test_negative_zero_and_empty_sales_without_a_card(shop, lines, wanted):
    """The override path needs no card, so the arithmetic is all that stands between a device key
    and a negative total that would lower the household's spending (totals add up here)."""
    assert wanted in problems(shop, override_body("SMD-000001", lines))


def test_the_household_or_card_swapped(shop):
    """A genuine proof from household A's card, reported as household B's sale (the card's
    signature does not cover the household: the certificate does)."""
    card = at_counter(_card())
    proof = card.charge(shop.device_id)
    assert "household 'SMD-000999' is not the card's household SMD-000001" in problems(
        shop, sale_body(card.auth, proof, household="SMD-000999"))
    assert "is not the certificate's card SSN-CV-0001" in problems(
        shop, sale_body(card.auth, proof, card_id="SSN-CV-0002"))
    assert "card_counter 99 is not the proof's counter" in problems(
        shop, sale_body(card.auth, proof, card_counter=99))


def test_an_override_that_carries_a_card_or_no_reason(shop):
    card = at_counter(_card())
    body = sale_body(card.auth, card.charge(shop.device_id), mode="override", override_reason="card_damaged")
    assert "an override carries card evidence" in problems(shop, body)
    assert "without an override_reason" in problems(shop, override_body("SMD-000001", override_reason=""))
    assert "neither card nor override" in problems(shop, override_body("SMD-000001", mode="cash"))


@pytest.mark.parametrize(("valid_from", "valid_until", "wanted"), [
    (date(2024, 1, 1), date(2026, 10, 31), "valid 2024-01-01..2026-10-31, not on the sale's date 2026-11-15"),
    (date(2026, 11, 16), date(2029, 12, 31), "not on the sale's date 2026-11-15"),
])
def test_a_card_outside_its_certificate_dates(shop, valid_from, valid_until, wanted):
    """The card itself does not know the date; the terminal is supposed to refuse it, and a
    device key can skip the terminal."""
    card = at_counter(_card(valid_from=valid_from, valid_until=valid_until))
    assert wanted in problems(shop, sale_body(card.auth, card.charge(shop.device_id)))


def test_the_sale_date_is_the_day_in_samarinda(shop):
    """A certificate valid until 14 November: 15:59 UTC on the 14th is 23:59 WITA, still the 14th;
    16:00 UTC is midnight WITA, the 15th, one day too late (a UTC date would still say the 14th)."""
    card = at_counter(_card(valid_until=date(2026, 11, 14)))
    body = sale_body(card.auth, card.charge(shop.device_id))
    assert problems(shop, body, created_at="2026-11-14T15:59:00.000Z") == ""
    assert "not on the sale's date 2026-11-15" in problems(shop, body, created_at="2026-11-14T16:00:00.000Z")


def test_a_period_with_trailing_bytes_or_a_month_13(shop):
    for period in ("2026-11\n", "2026-13", "2026-1", "२०२६-11"):
        assert "is not an exact YYYY-MM month" in problems(shop, override_body("SMD-000001", period=period))


def test_a_sale_booked_into_another_month_with_a_genuine_proof(shop):
    """Attack 12: a sale made on 15 November, booked into October (an allowance left unused) or into
    2099-12, each with the card's genuine proof for that period (a card signs any period not before
    its record): the period is not the month the sale was made."""
    for period in ("2026-10", "2099-12"):
        card = at_counter(_card())
        body = sale_body(card.auth, card.charge(shop.device_id, period=period), period=period)
        assert f"period {period} is not the month of the sale's created_at" in problems(shop, body)
    assert "is not the month" in problems(shop, override_body("SMD-000001", period="2026-10"))


def test_a_sale_begun_just_before_midnight_keeps_its_month(shop):
    """Honest: the counter takes the period when it prepares the sale and stamps created_at after
    the card signed, so a sale begun at 23:59:58 WITA on 30 November and committed at 00:00:03 on
    1 December is booked in November. Past the few minutes a card exchange takes, it is not."""
    card = at_counter(_card())
    body = sale_body(card.auth, card.charge(shop.device_id))
    assert problems(shop, body, created_at="2026-11-30T16:00:03.000Z") == ""
    assert "is not the month" in problems(shop, body, created_at="2026-11-30T16:10:00.000Z")


def test_a_charge_booked_after_the_month_it_was_reported_in(shop):
    """A card_charged_not_sold event is made at or after the charge (at once, or at the card's next
    insertion, maybe months later): a charge from October reported in November is honest; a charge
    booked into 2099-12, or into December when the event says 15 November, is not."""
    card = at_counter(_card())
    card.charge(shop.device_id, period="2026-10")
    assert problems(shop, charge_body(card.auth, card.session.last_transaction()), "event") == ""
    for period in ("2026-12", "2099-12"):
        card = at_counter(_card())
        card.charge(shop.device_id, period=period)
        found = problems(shop, charge_body(card.auth, card.session.last_transaction()), "event")
        assert f"the charge's period {period} is after the month of the event's created_at" in found


def test_a_period_total_below_the_amount_from_a_rogue_card(shop):
    """A chip that signs whatever it is sent (a faulty applet, a genuine certificate on a chip an
    insider programmed): the city still refuses a period total below the sale."""
    card_key = ec.generate_private_key(ec.SECP256R1())
    request = IssueRequest("SSN-ROGUE-1", "SMD-000001", date(2025, 1, 1), date(2029, 12, 31), "1234", 3, "")
    certificate = bytes.fromhex(personalise(request, demo_issuer(), card_key=card_key).certificate_hex)
    tx = CardTransaction(shop.device_id, "6f1c3a52-0d8e-4b7e-9a55-3c2f1e0b7d10", PERIOD, 120_000, 1_000,
                         lines_digest(LINES))
    challenge = secrets.token_bytes(16)
    message = evidence.signed_message(CardEvidence(certificate, tx, 7, 2, challenge, b""))
    proof = CardProof(tx, 7, 2, challenge, b"", card_key.sign(message, ec.ECDSA(hashes.SHA256())))
    info = CardCertificate(request.card_id, request.household_id, request.valid_from, request.valid_until,
                           key_id(demo_issuer().public_key()))
    auth = AuthenticatedCard(info, SpendRecord(PERIOD, 0, 6), 3, certificate)
    assert problems(shop, sale_body(auth, proof)) == "the card's period total 1000 is below this sale's 120000"


@pytest.mark.parametrize("card", [
    {}, [], "x", 7, {"certificate": "!!", "proof": {}},
    {"certificate": "AAAA", "proof": {"op": 2, "counter": 1, "period_total": 1, "challenge": "00" * 16,
                                      "signature": "AAAA"}},
    {"certificate": "AAAA", "proof": {"op": 2, "counter": 2**40, "period_total": 1, "challenge": "00" * 16,
                                      "signature": "AAAA"}},
])
def test_a_malformed_card_object_is_a_problem_not_a_crash(shop, card):
    found = problems(shop, override_body("SMD-000001", mode="card", card=card, card_id="SSN-CV-0001"))
    assert "card" in found and found


# --- card_charged_not_sold: the household is credited only for a charge the card proves -------------

def test_a_charge_the_card_proves_is_believed(shop):
    card = at_counter(_card())
    card.charge(shop.device_id)
    last = card.session.last_transaction()
    assert last is not None
    assert problems(shop, charge_body(card.auth, last), "event") == ""


def test_a_charge_made_by_another_device_or_restated(shop):
    """Shop B reports a charge the card made at shop A (credit claimed for another's sale); a charge
    whose event fields claim more than the card signed; a made-up charge."""
    card = at_counter(_card())
    card.charge("EW-CV-0002")
    last = card.session.last_transaction()
    assert last is not None
    assert "made by device 'EW-CV-0002', not by EW-CV-0001" in problems(shop, charge_body(card.auth, last), "event")
    other = Counter("EW-CV-0002")
    assert "amount 999999 is not the card's" in problems(other, charge_body(card.auth, last, amount=999_999), "event")
    assert "household 'SMD-000777' is not the card's" in problems(
        other, charge_body(card.auth, last, household="SMD-000777"), "event")
    body = charge_body(card.auth, last)
    body["card"]["transaction"]["amount"] += 50_000
    body["amount"] += 50_000
    assert "did not sign" in problems(other, body, "event")
    body["card"] = {"certificate": "AAAA"}
    assert "malformed" in problems(other, body, "event")


def test_other_events_and_voids_have_no_card_checks(shop):
    assert problems(shop, {"event": "data_problem", "household": "SMD-000001", "problem": "moved"}, "event") == ""
    assert problems(shop, {"void_id": "v-1", "redemption_id": "r-1"}, "void") == ""


# --- schema version and the issuer keys ------------------------------------------------------------

def test_a_redemption_1_is_refused_with_what_to_do(shop):
    token = shop.sign(override_body("SMD-000001"), schema="ewarung.redemption/1")
    [(ok, reason)] = verify_batch([(shop.device_id, "redemption", token)], {shop.device_id: shop.pem()}, ISSUERS)
    assert not ok and "no longer accepted" in reason and "update the device's software" in reason
    [(ok, reason)] = verify_batch([(shop.device_id, "event", shop.sign({"event": "x"}, "event",
                                                                       schema="ewarung.event/2"))],
                                  {shop.device_id: shop.pem()}, ISSUERS)
    assert not ok and "expected ewarung.event/1" in reason


def test_only_the_issuers_given_are_believed(shop):
    """The worker believes the issuer PEMs it is handed, not the DEMO issuer by habit."""
    card = at_counter(_card())
    body = sale_body(card.auth, card.charge(shop.device_id))
    token = shop.sign(body)
    city_issuer = ec.generate_private_key(ec.SECP256R1())
    assert checked(shop, token).problems == ()
    found = checked(shop, token, issuers=issuer_pems({key_id(city_issuer.public_key()): city_issuer.public_key()}))
    assert "unknown issuer key" in " ".join(found.problems)
    assert checked(shop, token, issuers=None).problems == ()  # no keys given: the DEMO issuer (tests, demo)


# --- the contract: schemas and the worked example ---------------------------------------------------

def _schema(kind: str) -> dict:
    return json.loads((ROOT / "docs" / "schemas" / f"{kind}.json").read_text())


def test_the_contracts_worked_example_verifies():
    """docs/mqtt-contract.md's example is the card-protocol test vectors' sale: a consumer written
    from the text must find it genuine, and its schema must accept it."""
    doc = (ROOT / "docs" / "mqtt-contract.md").read_text()
    example = json.loads(doc.split("### Worked example", 1)[1].split("```json\n", 1)[1].split("```", 1)[0])
    jsonschema.validate(example, _schema("redemption"))
    assert Verifier().content_problems(example["device"], "redemption", example) == ()
    example["body"]["lines"][1]["qty"] = 1
    example["body"]["lines"][1]["amount"] = example["body"]["total"] = 93_000
    assert "did not sign" in " ".join(Verifier().content_problems(example["device"], "redemption", example))


def test_what_a_device_sends_validates_against_the_schemas(shop):
    card = at_counter(_card())
    proof = card.charge(shop.device_id)
    last = card.session.last_transaction()
    assert last is not None
    for leaf, body in (("redemption", sale_body(card.auth, proof)), ("redemption", override_body("SMD-000002")),
                       ("event", charge_body(card.auth, last))):
        env = build_envelope(leaf, str(uuid.uuid4()), shop.device_id, 1, CREATED_AT, body)
        jsonschema.validate(env, _schema(leaf))
    bad = build_envelope("redemption", str(uuid.uuid4()), shop.device_id, 1, CREATED_AT,
                         override_body("SMD-000002", card=sale_body(card.auth, proof)["card"]))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, _schema("redemption"))


def test_the_consumer_refuses_a_redemption_1_unacknowledged_and_stores_a_v2(central, central_signer, clock):
    """What is observable through CentralConsumer.process: an old device's /1 sale is refused (kept
    by the device until it is updated), the v2 sale is stored and acknowledged."""
    from sync.central.consumer import CentralConsumer, Incoming
    from sync.central.registry import add_device
    from sync.central.store import RedemptionRecord, Rejected

    shop = Counter("EW-CV-0003")
    add_device(shop.device_id, shop.pem().encode(), shop_id="SHOP-0003", now=clock.now())
    consumer = CentralConsumer(central_signer, clock)
    topic = f"ewarung/v1/devices/{shop.device_id}/redemption"
    old = Incoming(topic, shop.sign(override_body("SMD-000001"), schema="ewarung.redemption/1"))
    out = consumer.process([old])
    assert (out.stored, out.rejected, out.acks) == (0, 1, [])
    assert "update the device's software" in Rejected.get().reason
    card = at_counter(_card())
    out = consumer.process([Incoming(topic, shop.sign(sale_body(card.auth, card.charge(shop.device_id))))])
    assert (out.stored, out.rejected, len(out.acks)) == (1, 0, 1) and RedemptionRecord.select().count() == 1


def test_a_bug_in_a_check_quarantines_the_message_instead_of_stalling_the_batch(shop, monkeypatch):
    """An exception escaping the worker fails the whole batch's verification, and the batch is
    redelivered and fails again: one message would stop the city's intake. It is a problem instead."""
    from sync.central.evidence_checks import UNCHECKED, EvidenceChecks

    def broken(self, device_id, body, created_at, moment=None):
        raise KeyError("lines")

    monkeypatch.setattr(EvidenceChecks, "detailed_redemption", broken)
    found = problems(shop, override_body("SMD-000001"))
    assert found.startswith(UNCHECKED) and "KeyError" in found and "report it" in found
