"""`ewarung card issue|deck|info|remove` as a user runs them."""

from tests.conftest import run_ewarung


def test_issue_info_and_bad_input(tmp_path):
    out = tmp_path / "c.json"
    r = run_ewarung("card", "issue", str(out), "--household", "SSN-6472-0000001", "--pin", "2468")
    assert r.returncode == 0, r.stderr
    r = run_ewarung("card", "info", str(out))
    assert "signature valid" in r.stdout and "PIN tries     3 of 3" in r.stdout
    r = run_ewarung("card", "issue", str(tmp_path / "x.json"), "--household", "H1", "--pin", "12")
    assert r.returncode == 2 and "4 to 12 digits" in r.stderr and not (tmp_path / "x.json").exists()


def test_deck_and_remove_without_card(tmp_path):
    r = run_ewarung("card", "deck", str(tmp_path / "deck"))
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "deck").glob("*.card.json"))) == 8
    r = run_ewarung("card", "info", str(tmp_path / "deck" / "forged.card.json"))
    assert "signature INVALID" in r.stdout
    r = run_ewarung("card", "remove", env={"EWARUNG_RUN_DIR": str(tmp_path / "run")})
    assert r.returncode == 1 and "no virtual card" in r.stderr
