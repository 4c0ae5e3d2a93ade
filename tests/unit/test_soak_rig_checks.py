"""The kill soak's checks catch what they claim to (torn sale, lost confirmed sale, card ahead)."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

import pytest

from pos.redemption import RedemptionRequest
from tests.soak_rig import CardSeen, Confirmed, check_card, check_device


@pytest.fixture
def sold(tmp_path, db, city, service):
    hid = city.notable["holder"]
    sales = [service.redeem(RedemptionRequest(hid, "kasir1", {"TAHU": 1})) for _ in range(3)]
    shop = SimpleNamespace(db_path=tmp_path / "ewarung.db", household=hid)
    confirmed = Confirmed({s.redemption_id: (s.seq, s.total, 0, False) for s in sales})
    return shop, confirmed, sales


def test_a_whole_device_passes(sold):
    shop, confirmed, sales = sold
    stats = check_device(shop, confirmed)
    assert stats["sales"] == 3 and stats["messages"] == 3


def test_a_torn_sale_is_caught(sold):
    shop, confirmed, sales = sold
    con = sqlite3.connect(shop.db_path)
    con.execute("PRAGMA foreign_keys = OFF")
    con.execute("DELETE FROM redemption_line WHERE redemption_id = ?", (sales[1].redemption_id,))
    con.commit()
    con.close()
    with pytest.raises(AssertionError, match="torn"):
        check_device(shop, confirmed)


def test_a_lost_confirmed_sale_is_caught(sold):
    shop, confirmed, sales = sold
    confirmed.sales["not-there"] = (4, 7_000, 0, False)
    with pytest.raises(AssertionError, match="lost"):
        check_device(shop, confirmed)


def test_card_ahead_of_the_device_or_behind_what_was_written_is_caught():
    written = Confirmed({"r1": (1, 7_000, 7_000, True)})
    check_card(CardSeen("", 7_000, 1), None, 7_000, written)
    with pytest.raises(AssertionError, match="device holds"):
        check_card(CardSeen("", 14_000, 2), None, 7_000, written)
    with pytest.raises(AssertionError, match="below"):
        check_card(CardSeen("", 0, 0), None, 7_000, written)
    with pytest.raises(AssertionError, match="backwards"):
        check_card(CardSeen("", 7_000, 1), CardSeen("", 7_000, 2), 7_000, written)
    # the card signs first: a charge with no sale is accounted for once reported, or while it
    # waits for the card's next insertion; a sale the card was not charged for is caught
    check_card(CardSeen("", 14_000, 2), None, 7_000, written, charged=7_000)
    check_card(CardSeen("", 14_000, 2, unsettled=7_000), None, 7_000, written)
    with pytest.raises(AssertionError, match="without the card's charge"):
        check_card(CardSeen("", 7_000, 1), None, 14_000, written)
