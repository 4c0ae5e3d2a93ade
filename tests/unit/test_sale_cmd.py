"""`ewarung sale` with the in-process deck: the headless counter sells, refuses and voids through
the same CounterSession, reader and printer as the touchscreen."""

from __future__ import annotations

import json

import pytest

from pos.cli.sale_cmd import DECK_ROLES, SaleScript, open_counter
from pos.clock import FixedClock
from tests.conftest import NOW, run_ewarung


@pytest.fixture
def counter(tmp_path):
    from firmware_config.config import demo_config

    c = open_counter(demo_config(tmp_path / "demo"), demo=True, deck="fake", language="en", clock=FixedClock(NOW))
    yield c
    c.close()


def test_a_sale_charges_the_card_and_prints(counter):
    out = counter.sale(SaleScript(items={"BERAS5": 1, "TELUR10": 2}, card="holder"))
    assert out["ok"] and out["card_updated"] and out["printed"] and out["receipt_no"] == 1
    card = counter.parts.deck[DECK_ROLES.index("holder")]
    assert card.spend.spent == out["total"] and card.spend.counter == 1
    assert counter.parts.printer.printed[-1][1].redemption_id == out["redemption_id"]
    assert counter.session.state == "idle" and not counter.session.card_present


def test_refusals_carry_the_code_and_the_catalog_words(counter):
    out = counter.sale(SaleScript(items={"BERAS5": 1}, card="cloned"))
    assert (out["ok"], out["stage"], out["refusal"]) == (False, "card", "card_cloned")
    assert "copy" in out["message"]
    out = counter.sale(SaleScript(items={"BERAS5": 1}, card="holder", pin="0000"))
    assert (out["stage"], out["refusal"]) == ("pin", "pin_wrong")
    assert counter.session.state == "idle"  # the visit was left, the next sale can start
    assert counter.sale(SaleScript(items={"BERAS5": 1}, card="holder"))["ok"]


def test_a_card_recording_a_future_period_is_refused(counter):
    card = counter.parts.deck[DECK_ROLES.index("holder")]
    card.memory.spend_period, card.memory.spent = "9999-12", 5_000
    out = counter.sale(SaleScript(items={"BERAS5": 1}, card="holder"))
    assert (out["ok"], out["refusal"]) == (False, "card_period_future")
    assert "not come yet" in out["message"]


def test_sale_and_void_from_the_command_line(tmp_path):
    res = run_ewarung("sale", "--demo", "--data-dir", str(tmp_path / "demo"), "--deck", "fake", "--card",
                      "representative", "--collector", "representative", "--item", "BERAS5", "--item", "MINYAK1=2",
                      "--void", "wrong_items")
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads(res.stdout)
    assert out["ok"] and out["voided"] and out["voided_receipt_no"] == 1 and out["receipt_no"] == 1
    assert out["reader"] == "Demo Reader 00"
    res = run_ewarung("sale", "--demo", "--data-dir", str(tmp_path / "demo"), "--deck", "fake", "--card", "used_up",
                      "--item", "BERAS5=1", "--language", "en")
    assert res.returncode == 1
    out = json.loads(res.stdout)
    assert (out["ok"], out["refusal"]) == (False, "allowance_used_up") and "used up" in out["message"]


def test_help_has_examples():
    res = run_ewarung("sale", "--help")
    assert res.returncode == 0 and "examples:" in res.stdout and "--void" in res.stdout
    res = run_ewarung("sale", "--demo", "--item", "BERAS5=0")
    assert res.returncode == 2 and "CODE=QTY" in res.stderr


def test_a_void_reason_the_core_does_not_know_is_refused_before_selling(tmp_path):
    """Free text ("salah barang") was once sent as a void reason; now only the core's codes, named in the error."""
    res = run_ewarung("sale", "--demo", "--data-dir", str(tmp_path / "demo"), "--deck", "fake", "--card", "holder",
                      "--item", "BERAS5", "--void", "salah barang")
    assert res.returncode == 2 and "wrong_items" in res.stderr and "cashier_mistake" in res.stderr
    assert not (tmp_path / "demo").exists()  # nothing sold: the reason is checked first


def test_deck_roles_name_the_demo_deck_in_order(counter):
    deck = counter.parts.deck
    assert len(deck) == len(DECK_ROLES)
    by_role = dict(zip(DECK_ROLES, deck, strict=True))
    assert by_role["hotlisted"].card_id == "CARD-REVOKED-DEMO"
    assert (by_role["forged"].behaviour, by_role["cloned"].behaviour) == ("forged", "cloned")
    assert by_role["expired"].card_id.startswith("CARD-E-")


def test_the_outcome_says_when_the_card_was_charged_but_nothing_sold(counter, monkeypatch):
    """A wedge loses the spend's answer and the read-back: nothing is sold and the JSON says the
    charge is unknown; the card's next sale here reports the charge to the city first."""
    from hardware.card import apdu
    from hardware.card.client import TransportError

    def wedge(command, response):
        if command[1] in (apdu.INS_SPEND, apdu.INS_LAST_TX) and counter.session.state == "committing":
            raise TransportError("answer lost")
        return response

    counter.parts.reader.transmit_hook = wedge
    out = counter.sale(SaleScript(items={"BERAS5": 1}, card="holder"))
    assert (out["ok"], out["refusal"], out["card_charged"]) == (False, "card_charge_unknown", None)
    counter.parts.reader.transmit_hook = None
    out = counter.sale(SaleScript(items={"TELUR10": 1}, card="holder"))
    assert out["ok"] and out["card_charged"] and out["charge_reported"]["seq"] >= 1
    assert "Reported to the city" in out["charge_reported"]["message"]
    again = counter.sale(SaleScript(items={"TELUR10": 1}, card="holder"))
    assert again["ok"] and "charge_reported" not in again

    def broken(*_a):
        raise RuntimeError("the database refused the write")

    monkeypatch.setattr(counter.session.service, "commit", broken)
    out = counter.sale(SaleScript(items={"TELUR10": 1}, card="holder"))
    assert (out["ok"], out["refusal"], out["card_charged"]) == (False, "card_charged_not_sold", True)
    assert "credit" in out["message"]
    out = counter.sale(SaleScript(items={"BERAS5": 1}, card="cloned"))
    assert out["card_charged"] is False
