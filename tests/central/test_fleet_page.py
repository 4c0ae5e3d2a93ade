"""The fleet page in real headless Chromium, with a screenshot kept as a test artifact."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import urllib.request
from datetime import timedelta

import pytest

from sync.central.consumer import Incoming

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _populate(make_device, consumer, clock):
    start = clock.now()
    a, b, c = make_device("EW-SMD-0001"), make_device("EW-SMD-0002"), make_device("EW-SMD-0003")
    households = [f"SSN-6472-{i:07d}" for i in range(10, 31)]
    for back in range(13, -1, -1):
        day = start - timedelta(days=back)
        for k, dev in enumerate((a, b, c)):
            if dev is c and back < 3:
                continue  # device 3 went dark three days ago
            dev.clock.set(day + timedelta(minutes=10 * k))
            for j in range((back * 7 + k * 3) % 6 + 1 + (k == 0) * 2):
                dev.redeem(households[(back + j + 5 * k) % len(households)], {"TEMPE": 1})
        clock.set(day + timedelta(hours=1))
        consumer.process([m for dev in (a, b, c) for m in dev.incoming() if m.payload not in _seen])
        _seen.update(m.payload for dev in (a, b, c) for m in dev.incoming())
        if back == 3:
            consumer.process([Incoming("ewarung/v1/devices/EW-SMD-0003/status", b'{"state": "offline"}')])
    clock.set(start)
    consumer.process([
        Incoming("ewarung/v1/devices/EW-SMD-0001/heartbeat",
                 b'{"queue_depth": 0, "ledger_version": 2, "reader": "ok", "printer": "ok", "software": "0.1.1-1"}'),
        Incoming("ewarung/v1/devices/EW-SMD-0002/heartbeat",
                 b'{"queue_depth": 140, "ledger_version": 1, "reader": "ok", "printer": "paper_out",'
                 b' "software": "0.1.0-1 (rolled back from 0.1.1-1)"}'),
    ])


_seen: set[bytes] = set()


@pytest.fixture
def fleet(make_device, consumer, clock, city, tmp_path):
    from pos.sample_city import demo_key, write_beneficiary_csv
    from pos.signing import EcdsaSigner
    from sync.central.fleet import FleetServer
    from sync.central.ledger_publish import publish_ledger

    csv_path = tmp_path / "list.csv"
    write_beneficiary_csv(csv_path, households=30, seed=2026, now=clock.now())
    ledger_signer = EcdsaSigner(demo_key("ledger"), "ledger")
    for _ in range(2):
        publish_ledger(csv_path, signer=ledger_signer, city="samarinda", now=clock.now())
    _seen.clear()
    _populate(make_device, consumer, clock)
    server = FleetServer("127.0.0.1", 0, clock=clock).start()
    yield server
    server.stop()


def test_fleet_json_counts(fleet, clock):
    data = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{fleet.port}/api/fleet.json", timeout=10).read())
    by_id = {d["device"]: d for d in data["devices"]}
    assert set(by_id) == {"EW-SMD-0001", "EW-SMD-0002", "EW-SMD-0003"}
    assert by_id["EW-SMD-0001"]["online"] and by_id["EW-SMD-0002"]["queue_depth"] == 140
    assert not by_id["EW-SMD-0003"]["online"] and by_id["EW-SMD-0003"]["redemptions_today"] == 0
    assert by_id["EW-SMD-0001"]["redemptions_today"] == 3 and by_id["EW-SMD-0001"]["amount_today"] == 24_000
    assert len(data["per_day"]) == 14 and data["per_day"][-1]["day"] == "2026-11-15"
    assert sum(d["redemptions"] for d in data["per_day"]) == sum(1 for _ in _seen)
    assert data["ledger_version"] == 2


def test_fleet_shows_each_release_and_flags_devices_left_behind(fleet, clock):
    from sync.central.report import reconcile
    from sync.central.store import central_db

    data = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{fleet.port}/api/fleet.json", timeout=10).read())
    assert data["software_version"] == "0.1.1-1"
    assert {d["device"]: d["software"] for d in data["devices"]}["EW-SMD-0001"] == "0.1.1-1"
    page = urllib.request.urlopen(f"http://127.0.0.1:{fleet.port}/", timeout=10).read().decode()
    assert '<span class="bad" title="rolled back after a failed health check">0.1.0-1 (rolled back from 0.1.1-1)</span>' in page
    with central_db.connection_context():
        found = {(f.kind, f.subject) for f in reconcile(now=clock.now())}
    assert ("rolled_back", "EW-SMD-0002") in found and ("old_software", "EW-SMD-0001") not in found


def test_fleet_page_in_headless_chromium(fleet, artifacts):
    url = f"http://127.0.0.1:{fleet.port}/"
    page = urllib.request.urlopen(url, timeout=10).read().decode()
    assert "EW-SMD-0003" in page and "offline" in page and "<svg" in page
    out_dir = artifacts / "central"
    out_dir.mkdir(parents=True, exist_ok=True)
    shot = out_dir / "fleet.png"
    shot.unlink(missing_ok=True)
    profile = tempfile.mkdtemp(prefix="ewarung-chromium-")
    try:
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}"]
        dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=90)
        assert "EW-SMD-0002" in dom.stdout and "Redemptions per day" in dom.stdout, dom.stderr[-2000:]
        subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1280,900", url],
                       capture_output=True, timeout=90, check=True)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    from PIL import Image

    with Image.open(shot) as img:
        assert img.size == (1280, 900)
        colors = img.convert("RGB").getcolors(1_000_000)
        assert len(colors) > 50  # a rendered page, not a blank one
        green = sum(n for n, (r, g, b) in colors if g > r + 40 and g > b + 20)
        assert green > 5_000  # the header and the chart bars are drawn
