"""Card fixtures shared by unit and integration tests: the DEMO deck and issuer keys."""

from __future__ import annotations

from datetime import date

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


__all__ = ["deck", "issuer_keys", "today_and_period", "date"]
