"""End to end, as a field tester does it: `ewarung printer emulate` in its own process, a sale
in the sample city, `ewarung printer print-pending` through the network backend, the PNG,
`ewarung receipt verify` on the QR token, `ewarung receipt reprint`, `ewarung report end-of-day`."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_ewarung
from tests.printer.printer_fixtures import free_port

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, port: int) -> Path:
    cfg = tmp_path / "ewarung.toml"
    cfg.write_text(
        f'[device]\ndata_dir = "{tmp_path / "data"}"\n\n'
        f'[printer]\nkind = "network"\nhost = "127.0.0.1"\nport = {port}\ntimeout_s = 2.0\n\n'
        "[demo]\nhouseholds = 60\n"
    )
    return cfg


@pytest.fixture
def emulator(tmp_path):
    port = free_port()
    out = tmp_path / "printed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pos.cli.main", "printer", "emulate", "--port", str(port), "--out", str(out)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline()
    assert "virtual printer on 127.0.0.1" in line, line + proc.stderr.read()
    yield port, out
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=10)


def _wait_for(path: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), f"{path} never appeared"


def test_sample_city_sale_prints_to_emulator(tmp_path, emulator, artifacts):
    from firmware_config.config import load_config
    from pos.clock import SystemClock
    from pos.ledger import Ledger
    from pos.redemption import Collector, RedemptionRequest
    from pos.roots.appliance import build_appliance, ensure_demo_data
    from pos.sample_city import household_id

    port, out = emulator
    cfg_path = _config(tmp_path, port)
    config = load_config(cfg_path)
    ensure_demo_data(config, SystemClock())
    app = build_appliance(config)
    hid = household_id(2)
    rep = Ledger().household(hid).representatives[0]
    sale = app.redemptions.redeem(RedemptionRequest(
        hid, "kasir1", {"BERAS5": 1, "TELUR10": 1}, card_id="CARD-SMD-77310042",
        collector=Collector("representative", rep.id)))
    quota_hid = household_id(7)  # plan with per-item quotas
    quota_sale = app.redemptions.redeem(RedemptionRequest(quota_hid, "kasir2", {"BERAS5": 1, "GULA1": 1},
                                                          card_id="CARD-SMD-77310007"))
    app.close()

    st = run_ewarung("--config", str(cfg_path), "printer", "status")
    assert st.returncode == 0 and "online, paper ok" in st.stdout, st.stdout + st.stderr
    res = run_ewarung("--config", str(cfg_path), "printer", "print-pending")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"job {sale.print_job_id}: printed" in res.stdout
    assert f"job {quota_sale.print_job_id}: printed" in res.stdout
    _wait_for(out / "receipt-0002.png")
    quota_text = (out / "receipt-0002.txt").read_text()
    assert "Sisa jatah" in quota_text and "pemegang kartu" in quota_text, quota_text
    (artifacts / "receipts").mkdir(parents=True, exist_ok=True)
    shutil.copy(out / "receipt-0002.png", artifacts / "receipts" / "receipt-sample-city-quotas.png")
    text = (out / "receipt-0001.txt").read_text()
    for needle in ("E-Warung Mawar (DEMO)", "Jl. Pahlawan No. 12", "STRUK BANTUAN PANGAN", f"No {sale.seq:06d}",
                   "WITA", "EW-DEMO-0001", "Rina Kasir", "****0042", hid, rep.name, "wakil terdaftar",
                   "TOTAL", "Sisa bantuan", "TIDAK DAPAT", "Pengaduan: 0541-123456"):
        assert needle in text, needle
    (artifacts / "receipts").mkdir(exist_ok=True)
    shutil.copy(out / "receipt-0001.png", artifacts / "receipts" / "receipt-sample-city.png")

    records = [json.loads(x) for x in (out / "printed.jsonl").read_text().splitlines()]
    assert [r["job_id"] for r in records] == [sale.print_job_id, quota_sale.print_job_id]
    record = records[0]
    assert record["job_id"] == sale.print_job_id
    token = record["qr"][0]
    ok = run_ewarung("--config", str(cfg_path), "receipt", "verify", token)
    assert ok.returncode == 0 and "VALID" in ok.stdout and "matches this device's record" in ok.stdout, ok.stdout
    tampered = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    bad = run_ewarung("--config", str(cfg_path), "receipt", "verify", tampered)
    assert bad.returncode == 1 and "INVALID" in bad.stdout

    again = run_ewarung("--config", str(cfg_path), "printer", "print-pending")
    assert "nothing waiting to print" in again.stdout
    rp = run_ewarung("--config", str(cfg_path), "receipt", "reprint", str(sale.seq))
    assert rp.returncode == 0, rp.stdout + rp.stderr
    _wait_for(out / "receipt-0003.png")
    assert "*** SALINAN ***" in (out / "receipt-0003.txt").read_text()

    csv_path = tmp_path / "eod.csv"
    eod = run_ewarung("--config", str(cfg_path), "report", "end-of-day", "--csv", str(csv_path), "--print")
    assert eod.returncode == 0, eod.stdout + eod.stderr
    rows = list(csv.DictReader(csv_path.open()))
    sales = next(r for r in rows if r["section"] == "summary" and r["key"] == "sales")
    assert (int(sales["count"]), int(sales["amount_rupiah"])) == (2, sale.total + quota_sale.total)
    assert {r["key"] for r in rows if r["section"] == "item"} == {"BERAS5", "TELUR10", "GULA1"}
    _wait_for(out / "receipt-0004.png")
    assert "LAPORAN AKHIR HARI" in (out / "receipt-0004.txt").read_text()
    shutil.copy(out / "receipt-0004.png", artifacts / "receipts" / "end-of-day.png")


def test_paper_out_via_cli(tmp_path, emulator):
    port, out = emulator
    cfg_path = _config(tmp_path, port)
    (out / "printer-state").write_text("paper_out\n")
    st = run_ewarung("--config", str(cfg_path), "printer", "status")
    assert st.returncode == 1 and "paper out" in st.stdout and "Kertas printer habis" in st.stdout
    test = run_ewarung("--config", str(cfg_path), "printer", "test")
    assert test.returncode == 1 and "paper_out" in test.stderr
    (out / "printer-state").write_text("ok\n")
    test = run_ewarung("--config", str(cfg_path), "printer", "test")
    assert test.returncode == 0
    _wait_for(out / "receipt-0001.png")
    assert "TES PRINTER" in (out / "receipt-0001.txt").read_text()
