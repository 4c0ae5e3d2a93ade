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
                      "--item", "TELUR10=2", "--void", "salah barang", env=AUTO)
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
