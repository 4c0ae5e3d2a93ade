"""`ewarung sale` and `ewarung demo --scripted` on the real stack: the demo deck's card files inserted
as virtual cards through pcscd + vpcd, read by the production PcscReader (run under
`flock /tmp/ewarung-pcscd.lock`, as every pcscd test)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_ewarung

pytestmark = pytest.mark.pcsc
AUTO = {"EWARUNG_DEMO_DECK": "auto"}


def test_sale_refusal_and_void_through_pcscd(stack, tmp_path):
    data = str(tmp_path / "demo")
    res = run_ewarung("sale", "--demo", "--data-dir", data, "--card", "holder", "--item", "BERAS5=1",
                      "--item", "TELUR10=2", "--void", "wrong_items", env=AUTO)
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads(res.stdout)
    assert out["reader"].startswith("Virtual PCD 00")
    assert out["ok"] and out["card_updated"] and out["voided"] and out["receipt_no"] == 1
    res = run_ewarung("sale", "--demo", "--data-dir", data, "--card", "cloned", "--item", "BERAS5=1", env=AUTO)
    assert res.returncode == 1, res.stdout + res.stderr
    assert json.loads(res.stdout)["refusal"] == "card_cloned"


def test_scripted_demo_through_pcscd(stack, tmp_path):
    res = run_ewarung("demo", "--scripted", "--data-dir", str(tmp_path / "demo"), env=AUTO)
    assert res.returncode == 0, res.stdout + res.stderr
    for expected in ("card deck: pcscd + vpcd", "committed durably", "card updated: True", "voided receipt no 1",
                     "REFUSED (allowance_used_up)", "REFUSED (household_revoked)", "hash chain OK"):
        assert expected in res.stdout


def test_a_sale_through_pcscd_sends_card_evidence_the_city_verifies(stack, tmp_path):
    """The redemption a real `ewarung sale` queues (ewarung.redemption/2) carries the card's SPEND
    proof and certificate; the city's check (pos.card_proof + hardware.card.evidence) accepts it,
    for exactly the sale the message reports."""
    import sqlite3

    from hardware.card import evidence
    from hardware.card.fake import demo_issuer_keys
    from pos.card_proof import redemption_evidence
    from pos.signing import b64url_decode

    data = tmp_path / "demo"
    res = run_ewarung("sale", "--demo", "--data-dir", str(data), "--card", "holder", "--item", "BERAS5=1",
                      "--item", "TELUR10=2", env=AUTO)
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads(res.stdout)
    assert out["ok"] and out["card_charged"] and out["reader"].startswith("Virtual PCD 00")
    con = sqlite3.connect(data / "ewarung.db")
    [(payload,)] = con.execute("SELECT payload FROM outbox_message WHERE kind='redemption'").fetchall()
    con.close()
    msg = json.loads(b64url_decode(bytes(payload).decode().split(".")[1]))
    body = msg["body"]
    assert msg["schema"] == "ewarung.redemption/2" and body["redemption_id"] == out["redemption_id"]
    assert body["card"]["proof"]["op"] == 2 and body["card_counter"] == body["card"]["proof"]["counter"]
    certs = evidence.CertificateCache(demo_issuer_keys())
    card = evidence.verify(redemption_evidence(msg["device"], body), certs)
    assert (card.info.card_id, card.info.household_id) == (body["card_id"], body["household"])
    body["total"] += 1_000  # the same proof for another total: refused
    with pytest.raises(evidence.EvidenceError):
        evidence.verify(redemption_evidence(msg["device"], body), certs)
