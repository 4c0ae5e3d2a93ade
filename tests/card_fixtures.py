"""Card fixtures shared by unit and integration tests: the DEMO deck and issuer keys."""

from __future__ import annotations

from datetime import date
from weakref import WeakKeyDictionary

import pytest


def issuer_keys():
    """The trust of a terminal in the demo: the DEMO issuer, which signed the deck."""
    from hardware.card.fake import demo_issuer_keys

    return demo_issuer_keys()


def today_and_period(clock):
    """The test clock's day and period in WITA, which card decisions take."""
    from pos.period import WITA, Period

    now = clock.now()
    return now.astimezone(WITA).date(), Period.of(now)


@pytest.fixture
def deck(tmp_path, clock):
    """The field testers' card files (`ewarung card deck`), valid around the test clock."""
    from hardware.card.issuing import make_deck
    from pos.sample_city import demo_key

    today, period = today_and_period(clock)
    return make_deck(tmp_path / "deck", demo_key("issuer"), today, str(period))


_CARDS: WeakKeyDictionary = WeakKeyDictionary()  # service -> {household: FakeCard}


def card_sale(service, req, *, card=None):
    """A card sale as the counter makes it (prepare, the card's SPEND, commit with its proof): the
    redemption/2 message carries evidence the city verifies. `card` is a hardware.card.fake.FakeCard;
    by default one DEMO card per household and service, kept so its record grows sale by sale.
    Tests that need honest traffic use this rather than `RedemptionService.redeem` (card: null)."""
    from dataclasses import replace

    from hardware.card.fake import FakeCard
    from pos.sale_order import sell_with_card
    from tests.central.card_sales import at_counter

    if card is None:
        cards = _CARDS.setdefault(service, {})
        card = cards.setdefault(req.household_id, FakeCard(req.card_id or f"CARD-{req.household_id}",
                                                           req.household_id))
    counter = at_counter(card)  # authenticated, its PIN verified, as the counter session leaves it
    try:
        auth = counter.auth
        req = replace(req, card_id=auth.certificate.card_id, card_spent=auth.spend.spent,
                      card_counter=auth.spend.counter, card_period=auth.spend.period, mode="card")
        return sell_with_card(service, counter.session, auth, service.prepare(req))
    finally:
        counter.session.close()

__all__ = ["card_sale", "deck", "issuer_keys", "today_and_period", "date"]
