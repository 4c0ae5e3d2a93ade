"""Card fixtures shared by unit and integration tests: the DEMO deck and issuer keys."""

from __future__ import annotations

from datetime import date

import pytest


def issuer_keys():
    from hardware.card.certificate import key_id
    from pos.sample_city import demo_key

    pub = demo_key("issuer").public_key()
    return {key_id(pub): pub}


def today_and_period(clock):
    from pos.period import WITA, Period

    now = clock.now()
    return now.astimezone(WITA).date(), Period.of(now)


@pytest.fixture
def deck(tmp_path, clock):
    from hardware.card.issuing import make_deck
    from pos.sample_city import demo_key

    today, period = today_and_period(clock)
    return make_deck(tmp_path / "deck", demo_key("issuer"), today, str(period))


__all__ = ["deck", "issuer_keys", "today_and_period", "date"]
