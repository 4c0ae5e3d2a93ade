"""The fleet page in real headless Chromium, with a screenshot kept as a test artifact."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta

import pytest

from sync.central.consumer import Incoming
from tests.central.chromium_pipe import CHROMIUM, FLAGS
from tests.central.fleet_login import PASSWORD, USER, login, new_client, status


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
    from sync.central.fleet_auth import add_account
    from sync.central.ledger_publish import publish_ledger

    csv_path = tmp_path / "list.csv"
    write_beneficiary_csv(csv_path, households=30, seed=2026, now=clock.now())
    ledger_signer = EcdsaSigner(demo_key("ledger"), "ledger")
    for _ in range(2):
        publish_ledger(csv_path, signer=ledger_signer, city="samarinda", now=clock.now())
    _seen.clear()
    _populate(make_device, consumer, clock)
    add_account(USER, PASSWORD, clock.now())
    server = FleetServer("127.0.0.1", 0, clock=clock).start()
    yield server
    server.stop()


def test_fleet_json_counts(fleet, clock):
    client, code, headers, _ = login(f"http://127.0.0.1:{fleet.port}")
    assert code == 303 and headers["Location"] == "/"
    data = json.loads(status(client, f"http://127.0.0.1:{fleet.port}/api/fleet.json")[1])
    by_id = {d["device"]: d for d in data["devices"]}
    assert set(by_id) == {"EW-SMD-0001", "EW-SMD-0002", "EW-SMD-0003"}
    assert by_id["EW-SMD-0001"]["online"] and by_id["EW-SMD-0002"]["queue_depth"] == 140
    assert not by_id["EW-SMD-0003"]["online"] and by_id["EW-SMD-0003"]["redemptions_today"] == 0
    assert by_id["EW-SMD-0001"]["redemptions_today"] == 3 and by_id["EW-SMD-0001"]["amount_today"] == 24_000
    assert len(data["per_day"]) == 14 and data["per_day"][-1]["day"] == "2026-11-15"
    assert sum(d["redemptions"] for d in data["per_day"]) == sum(1 for _ in _seen)
    assert data["ledger_version"] == 2


def test_anonymous_visitors_see_nothing(fleet):
    base = f"http://127.0.0.1:{fleet.port}"
    client, _ = new_client()
    code, body, headers = status(client, f"{base}/")
    assert code == 303 and headers["Location"] == "/login" and "EW-SMD" not in body
    code, body, _ = status(client, f"{base}/api/fleet.json")
    assert code == 401 and "EW-SMD" not in body
    assert status(client, f"{base}/healthz")[0] == 200
    forged = {"Cookie": "ewarung_fleet=guessed-token"}
    assert status(client, f"{base}/api/fleet.json", headers=forged)[0] == 401
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tempfile.mkdtemp()}", "--dump-dom", f"{base}/"],
                         capture_output=True, text=True, timeout=90)
    assert 'action="/login"' in dom.stdout and "EW-SMD" not in dom.stdout, dom.stderr[-2000:]


def test_wrong_password_and_cross_site_forms_are_refused(fleet):
    base = f"http://127.0.0.1:{fleet.port}"
    client, code, _, body = login(base, password="wrong-password-1")
    assert code == 401 and "Wrong account name or password" in body
    assert status(client, f"{base}/api/fleet.json")[0] == 401
    _, code, _, _ = login(base, user="nobody")
    assert code == 401
    # another site's page posting the form: no token from our page, or its own Origin
    form = urllib.parse.urlencode({"username": USER, "password": PASSWORD, "csrf": "x"}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    assert status(new_client()[0], f"{base}/login", form, headers)[0] == 403
    client, _ = new_client()
    page = status(client, f"{base}/login")[1]
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    good = urllib.parse.urlencode({"username": USER, "password": PASSWORD, "csrf": token}).encode()
    assert status(client, f"{base}/login", good, {**headers, "Origin": "http://evil.example"})[0] == 403
    signed_in, code, _, _ = login(base)
    assert code == 303
    assert status(signed_in, f"{base}/logout", b"csrf=nope", headers)[0] == 403  # still signed in
    assert status(signed_in, f"{base}/api/fleet.json")[0] == 200


def test_guessing_locks_the_account(fleet):
    base = f"http://127.0.0.1:{fleet.port}"
    for _ in range(5):
        assert login(base, password="not-the-password")[1] == 401
    _, code, _, body = login(base)
    assert code == 429 and "Too many wrong passwords" in body


def test_fleet_shows_each_release_and_flags_devices_left_behind(fleet, clock):
    from sync.central.report import reconcile
    from sync.central.store import central_db

    base = f"http://127.0.0.1:{fleet.port}"
    client, _, _, _ = login(base)
    data = json.loads(status(client, f"{base}/api/fleet.json")[1])
    assert data["software_version"] == "0.1.1-1"
    assert {d["device"]: d["software"] for d in data["devices"]}["EW-SMD-0001"] == "0.1.1-1"
    page = status(client, f"{base}/")[1]
    assert '<span class="bad" title="rolled back after a failed health check">0.1.0-1 (rolled back from 0.1.1-1)</span>' in page
    with central_db.connection_context():
        found = {(f.kind, f.subject) for f in reconcile(now=clock.now())}
    assert ("rolled_back", "EW-SMD-0002") in found and ("old_software", "EW-SMD-0001") not in found


def test_fleet_page_in_headless_chromium(fleet, artifacts):
    from tests.central.chromium_pipe import Chromium

    base = f"http://127.0.0.1:{fleet.port}"
    out_dir = artifacts / "central"
    out_dir.mkdir(parents=True, exist_ok=True)
    shot = out_dir / "fleet.png"
    shot.unlink(missing_ok=True)
    browser = Chromium()
    try:
        browser.goto(f"{base}/")
        assert browser.js("location.pathname") == "/login", "anonymous: sent to the sign-in form"
        assert "EW-SMD" not in browser.js("document.body.innerText")
        browser.screenshot(out_dir / "fleet-login.png")
        browser.submit({"username": USER, "password": PASSWORD})
        assert browser.js("location.pathname") == "/"
        text = browser.js("document.body.innerText")
        assert "EW-SMD-0002" in text and "Redemptions per day" in text and f"signed in as {USER}" in text
        browser.screenshot(shot)
        browser.submit({}, form="form.who")  # sign out
        assert browser.js("location.pathname") == "/login"
        browser.goto(f"{base}/")
        assert browser.js("location.pathname") == "/login", "signed out: the page is gone again"
    finally:
        browser.close()
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    from PIL import Image

    with Image.open(shot) as img:
        assert img.size == (1280, 900)
        colors = img.convert("RGB").getcolors(1_000_000)
        assert len(colors) > 50  # a rendered page, not a blank one
        green = sum(n for n, (r, g, b) in colors if g > r + 40 and g > b + 20)
        assert green > 5_000  # the header and the chart bars are drawn


def test_fleet_account_cli(tmp_path):
    from tests.conftest import run_ewarung

    db = str(tmp_path / "central.db")
    add = run_ewarung("central", "--db", db, "fleet-account", "add", "auditor", "--password-stdin",
                      input="long-enough-pass\n")
    assert add.returncode == 0, add.stderr
    assert run_ewarung("central", "--db", db, "fleet-account", "list").stdout.split() == ["auditor"]
    short = run_ewarung("central", "--db", db, "fleet-account", "add", "x", "--password-stdin", input="short\n")
    assert short.returncode == 1 and "at least 10" in short.stderr
    import sqlite3

    stored = sqlite3.connect(db).execute("SELECT password_hash FROM central_fleet_account").fetchone()[0]
    assert stored.startswith("scrypt$") and "long-enough-pass" not in stored
    assert run_ewarung("central", "--db", db, "fleet-account", "remove", "auditor").returncode == 0
