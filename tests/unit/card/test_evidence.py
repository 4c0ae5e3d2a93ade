"""The card's evidence as a message carries it: a real applet's SPEND proof verifies offline for
exactly the sale it was given, and every tampering with the message or the certificate is caught."""

from __future__ import annotations

import pytest

from hardware.card import evidence
from hardware.card.applet import Applet
from hardware.card.cardfile import CardFile
from hardware.card.fake import FakeCard, FakeReader, demo_issuer_keys
from pos.card_proof import (
    CardTransaction,
    _b64url,
    charge_card,
    charge_evidence,
    lines_digest,
    redemption_card,
    redemption_evidence,
)
from tests.card_fixtures import issuer_keys

DEVICE = "ew-test-0001"


def _sale(path, clock, city, lines=(("BERAS5", 1, 70_000), ("TELUR", 2, 25_000))):
    reader = FakeReader(issuer_keys())
    reader.insert(Applet(CardFile.load(path)))
    card = reader.open_session()
    auth = card.authenticate()
    card.verify_pin("123456")
    total = sum(q * p for _, q, p in lines)
    tx = CardTransaction(DEVICE, "r-1", city.period, total, total, lines_digest(lines))
    proof = card.spend(tx)
    body = {"redemption_id": "r-1", "period": city.period, "total": total, "household": auth.certificate.household_id,
            "lines": [{"item": c, "qty": q, "unit_price": p, "amount": q * p} for c, q, p in lines],
            "card": redemption_card(auth.certificate_bytes, proof)}
    return card, auth, proof, body


def test_a_genuine_spend_verifies_from_the_message_alone(deck, clock, city):
    _, auth, _, body = _sale(deck["holder"], clock, city)
    certs = evidence.CertificateCache(demo_issuer_keys())
    got = evidence.verify(redemption_evidence(DEVICE, body), certs)
    assert got.info.household_id == auth.certificate.household_id


@pytest.mark.parametrize("tamper", ["total", "line_price", "line_qty", "redemption_id", "period", "period_total",
                                    "counter", "device"])
def test_any_change_to_the_sale_breaks_the_card_signature(deck, clock, city, tamper):
    _, _, _, body = _sale(deck["holder"], clock, city)
    device = DEVICE
    if tamper == "total":
        body["total"] += 1000
    elif tamper == "line_price":
        body["lines"][0]["unit_price"] -= 1000
    elif tamper == "line_qty":
        body["lines"][1]["qty"] = 3
    elif tamper == "redemption_id":
        body["redemption_id"] = "r-2"
    elif tamper == "period":
        body["period"] = "2099-01"
    elif tamper == "period_total":
        body["card"]["proof"]["period_total"] -= 1
    elif tamper == "counter":
        body["card"]["proof"]["counter"] += 1
    else:
        device = "ew-test-0002"  # another device's key signing the same card proof
    with pytest.raises(evidence.EvidenceError, match="did not sign"):
        evidence.verify(redemption_evidence(device, body), evidence.CertificateCache(demo_issuer_keys()))


def test_an_unknown_issuer_or_a_forged_certificate_is_refused(deck, clock, city):
    _, _, _, body = _sale(deck["holder"], clock, city)
    with pytest.raises(evidence.EvidenceError, match="unknown issuer"):
        evidence.verify(redemption_evidence(DEVICE, body), evidence.CertificateCache({}))
    forged = bytes.fromhex(FakeCard("SSN-FORGED", "H-1", behaviour="forged").memory.certificate_hex)
    body["card"]["certificate"] = _b64url(forged)
    with pytest.raises(evidence.EvidenceError, match="forged"):
        evidence.verify(redemption_evidence(DEVICE, body), evidence.CertificateCache(demo_issuer_keys()))


def test_a_charge_read_back_verifies_as_a_recovery_report(deck, clock, city):
    card, auth, proof, _ = _sale(deck["holder"], clock, city)
    last = card.last_transaction()
    assert last is not None and last.op == 3 and last.transaction == proof.transaction
    event = {"event": "card_charged_not_sold", "card": charge_card(auth.certificate_bytes, last)}
    got = evidence.verify(charge_evidence(event), evidence.CertificateCache(demo_issuer_keys()))
    assert got.info.card_id == auth.certificate.card_id
    event["card"]["transaction"]["amount"] += 1
    with pytest.raises(evidence.EvidenceError):
        evidence.verify(charge_evidence(event), evidence.CertificateCache(demo_issuer_keys()))


@pytest.mark.parametrize("card", [None, {}, {"certificate": "!!", "proof": {}},
                                  {"certificate": "AA", "proof": {"op": 1, "counter": 1, "challenge": "00" * 16}},
                                  {"certificate": "AA", "proof": {"op": 2, "counter": -1, "challenge": "00" * 16}},
                                  {"certificate": "AA", "proof": {"op": 2, "counter": 1, "challenge": "00"}}])
def test_malformed_evidence_is_a_value_error_that_says_what(card):
    body = {"redemption_id": "r", "period": "2026-12", "total": 1, "lines": [{"item": "A", "qty": 1, "unit_price": 1}],
            "card": card}
    with pytest.raises(ValueError, match="card"):
        redemption_evidence(DEVICE, body)
