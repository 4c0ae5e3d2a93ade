from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pos.period import WITA, Period


def test_month_boundary_is_wita_not_utc():
    assert str(Period.of(datetime(2026, 11, 30, 15, 59, tzinfo=UTC))) == "2026-11"
    assert str(Period.of(datetime(2026, 11, 30, 16, 0, tzinfo=UTC))) == "2026-12"


def test_naive_datetime_refused():
    with pytest.raises(ValueError, match="aware"):
        Period.of(datetime(2026, 1, 1))


@pytest.mark.parametrize("bad", ["2026-13", "26-01", "2026/01", "", "2026-1"])
def test_parse_refuses_bad_periods(bad):
    with pytest.raises(ValueError, match="2026-11"):
        Period.parse(bad)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_period_contains_its_instant(moment):
    p = Period.of(moment)
    wall = moment + timedelta(hours=8)  # WITA is UTC+8 all year (no daylight saving)
    assert (p.year, p.month) == (wall.year, wall.month)
    first = datetime(p.year, p.month, 1, tzinfo=WITA)
    assert p.previous() == Period.of(first - timedelta(microseconds=1))
