"""`ewarung card issue` refuses ids a conforming terminal cannot parse, and a missing folder,
with a clear message and nothing written."""

from __future__ import annotations

import pytest

from tests.conftest import run_ewarung


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--card-id", "CARD-1\n"), ("--card-id", "CARD 1"), ("--card-id", "KARTU-Ä"), ("--household", "SSN-1\nX"),
     ("--household", "SSN/1"), ("--card-id", "C" * 41)],
)
def test_ids_outside_the_card_alphabet_are_refused(tmp_path, flag, value):
    out = tmp_path / "card.json"
    args = ["card", "issue", str(out), "--household", "SSN-6472-0000001", flag, value]
    res = run_ewarung(*args)
    assert res.returncode == 2, res.stdout
    assert "alphabet" in res.stderr and "nothing written" in res.stderr and "Traceback" not in res.stderr
    assert list(tmp_path.iterdir()) == []


def test_missing_output_folder_is_a_message_not_a_traceback(tmp_path):
    res = run_ewarung("card", "issue", str(tmp_path / "no" / "such" / "card.json"), "--household", "SSN-1")
    assert res.returncode == 2 and "does not exist" in res.stderr and "Traceback" not in res.stderr


def test_a_newline_in_an_id_is_refused_by_the_parser_too():
    """The terminal's parser used `$`, which lets one trailing newline through."""
    from hardware.card import certificate

    assert certificate.valid_id("CARD-1") and not certificate.valid_id("CARD-1\n")


def test_a_good_card_is_still_issued(tmp_path):
    res = run_ewarung("card", "issue", str(tmp_path / "card.json"), "--household", "SSN-6472-0000001")
    assert res.returncode == 0, res.stderr
    info = run_ewarung("card", "info", str(tmp_path / "card.json"))
    assert "SSN-6472-0000001" in info.stdout and "valid" in info.stdout
