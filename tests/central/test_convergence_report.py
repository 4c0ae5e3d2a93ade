"""The city sees which devices hold its ledger (issue 17): heartbeats report the hotlist serial
and a content digest; the report and the fleet page list the devices that differ. And the city
publishes the spending it has confirmed as deltas."""

from __future__ import annotations

import json
from datetime import timedelta

from pos.sample_city import demo_key, write_beneficiary_csv
from pos.signing import EcdsaSigner
from sync.central.consumer import Incoming

LEDGER = EcdsaSigner(demo_key("ledger"), "ledger")


def heartbeat(device: str, version: int, serial: int, digest: str) -> Incoming:
    body = {"queue_depth": 0, "ledger": {"version": version, "hotlist_serial": serial, "digest": digest}}
    return Incoming(f"ewarung/v1/devices/{device}/heartbeat", json.dumps(body).encode())


def test_devices_off_the_city_ledger_are_reported(central, consumer, clock, tmp_path):
    from sync.central.convergence import city_state
    from sync.central.fleet import fleet_data, render_page
    from sync.central.ledger_publish import publish_ledger
    from sync.central.report import reconcile

    csv = tmp_path / "households.csv"
    write_beneficiary_csv(csv, households=30, seed=3, now=clock.now())
    publish_ledger(csv, signer=LEDGER, city="samarinda", now=clock.now())
    publish_ledger(None, signer=LEDGER, city="samarinda", now=clock.now(), kind="hotlist", hotlist=[("CARD-1", "lost")])
    version, serial, digest = city_state()
    assert (version, serial) == (1, 1)
    consumer.process([heartbeat("EW-A", 1, 1, digest), heartbeat("EW-B", 1, 0, digest),
                      heartbeat("EW-C", 1, 1, "0" * 16)])
    found = {f.subject: f.detail for f in reconcile(now=clock.now()) if f.kind == "not_converged"}
    assert set(found) == {"EW-B", "EW-C"}
    assert "hotlist 0, city has 1" in found["EW-B"] and "content differs" in found["EW-C"]
    page = render_page(fleet_data(clock.now()))
    assert "Ledger convergence" in page and "EW-C" in page


def test_confirmed_spending_goes_out_as_deltas(central, make_device, consumer, clock, tmp_path):
    from sync.central.confirmed_publish import publish_confirmed
    from sync.central.ledger_publish import current_version, publish_ledger
    from sync.ledger_format import DELTA

    csv = tmp_path / "households.csv"
    write_beneficiary_csv(csv, households=30, seed=3, now=clock.now())
    publish_ledger(csv, signer=LEDGER, city="samarinda", now=clock.now())
    assert publish_confirmed(signer=LEDGER, city="samarinda", now=clock.now()) is None  # nothing stored yet
    dev = make_device("EW-SMD-0001")
    sale = dev.redeem(dev.city.notable["holder"], {"TEMPE": 1})
    consumer.process(dev.incoming())
    delta = publish_confirmed(signer=LEDGER, city="samarinda", now=clock.now() + timedelta(seconds=1))
    assert delta is not None and delta.version == 2 and current_version() == (2, 0)
    from pos.signing import jws_verify

    body = jws_verify(delta.token, {"ledger": demo_key("ledger").public_key()}, "ewarung-ledger+jws").json()
    assert body["schema"] == DELTA and body["base_version"] == 1
    assert [r[0] for r in body["upserts"]["confirmed"]["rows"]] == [sale.redemption_id]
    assert publish_confirmed(signer=LEDGER, city="samarinda", now=clock.now()) is None  # already out


def test_one_build_answers_every_device_that_asked(central, clock, tmp_path):
    import time

    from sync.central.ledger_publish import publish_ledger
    from sync.central.snapshot_answers import SnapshotAnswers

    csv = tmp_path / "households.csv"
    write_beneficiary_csv(csv, households=30, seed=3, now=clock.now())
    publish_ledger(csv, signer=LEDGER, city="samarinda", now=clock.now())
    answers = SnapshotAnswers("samarinda", LEDGER, every=3600)
    answers.want(["EW-A", "EW-B"])
    assert answers.due() == []  # the build started in its thread
    answers.want(["EW-C"])  # asked while it runs: the build may predate what it lacks
    deadline = time.monotonic() + 30
    while not (sent := answers.due()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sent and all(topic == "ewarung/v1/ledger/samarinda/snapshot" for topic, _ in sent)
    assert answers.wanted == {"EW-C"}  # kept for the next build, not before `every` has passed
    answers.want(["EW-D"])
    assert answers.due() == [] and answers._build is None
