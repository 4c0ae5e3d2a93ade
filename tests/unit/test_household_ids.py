"""Household ids: the counter's screens type a number, the core writes the city's id around it."""

from __future__ import annotations

import pytest

from pos.household_ids import household_id, household_number, household_prefix
from pos.sample_city import household_id as sample_household_id


def test_a_typed_number_becomes_the_citys_id_and_back():
    assert household_id("42") == household_id(42) == "SSN-6472-0000042"
    assert household_id("") == ""  # nothing typed: no household
    assert household_number("SSN-6472-0000042") == "0000042"
    assert household_id(household_number("SSN-6472-1234567")) == "SSN-6472-1234567"


def test_the_sample_city_writes_ids_the_same_way():
    assert sample_household_id(7) == household_id(7)


@pytest.mark.parametrize("hid", ["SSN-1234-0000042", "SSN-6472-42", "SSN-6472-00000x2", "KTP-0000042", ""])
def test_an_id_of_another_form_gives_no_number_to_start_from(hid):
    assert household_number(hid) == ""


@pytest.mark.parametrize("typed", ["12345678", "4a", "-1"])
def test_a_number_no_household_of_this_city_has_is_refused(typed):
    with pytest.raises(ValueError, match="1 to 7 digits"):
        household_id(typed)


def test_another_citys_area_code_is_written_and_read_back():
    assert household_prefix("6471") == "SSN-6471-"
    assert household_id("42", "6471") == "SSN-6471-0000042"
    assert household_number("SSN-6471-0000042", "6471") == "0000042"
    assert household_number("SSN-6472-0000042", "6471") == ""  # Samarinda's id is not this city's


@pytest.mark.parametrize("code", ["647", "64721", "64a2", ""])
def test_an_area_code_that_is_not_four_digits_is_refused(code):
    with pytest.raises(ValueError, match="area_code"):
        household_id("42", code)
