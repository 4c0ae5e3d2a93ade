"""The card issuers the city believes reach every place a sale is verified: `ewarung central serve
--issuer-key` -> the composition root -> CentralConsumer -> its own Verifier and the verify worker
processes. A city that forgot the option believes the DEMO issuer, and says so."""

from __future__ import annotations

from datetime import date

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from hardware.card.applet import Applet
from hardware.card.certificate import key_id
from hardware.card.fake import ChipMemory, FakeCard
from hardware.card.issuing import IssueRequest, personalise
from pos.messages import device_topic
from pos.signing import public_pem
from sync.central.consumer import CentralConsumer, Incoming, MqttRunner
from tests.central.card_sales import Counter, at_counter, sale_body

CITY_ISSUER = ec.generate_private_key(ec.SECP256R1())
CITY_KEYS = {key_id(CITY_ISSUER.public_key()): CITY_ISSUER.public_key()}


def _city_card_sale(shop: Counter) -> Incoming:
    """A genuine sale on a card of the city's own issuer (not the DEMO one)."""
    request = IssueRequest("SSN-CITY-1", "SMD-000001", date(2025, 1, 1), date(2029, 12, 31), "1234", 3, "")
    card = at_counter(Applet(ChipMemory(personalise(request, CITY_ISSUER))), CITY_KEYS)
    return Incoming(device_topic(shop.device_id, "redemption"),
                    shop.sign(sale_body(card.auth, card.charge(shop.device_id))))


def _demo_card_sale(shop: Counter) -> Incoming:
    card = at_counter(FakeCard("SSN-DEMO-1", "SMD-000002"))
    return Incoming(device_topic(shop.device_id, "redemption"),
                    shop.sign(sale_body(card.auth, card.charge(shop.device_id))))


@pytest.fixture
def shop(central, clock) -> Counter:
    from sync.central.registry import add_device

    counter = Counter("EW-IK-0001")
    add_device(counter.device_id, counter.pem().encode(), shop_id="SHOP-IK", now=clock.now())
    return counter


def _problems_in_worker(consumer: CentralConsumer, batch: list[Incoming]) -> list[tuple[str, ...]]:
    """What the runner's worker process (spawned, as in production) finds for each message."""
    runner = MqttRunner(consumer, "127.0.0.1", 1, client_id="issuer-key-test", group=None, city=None,
                        verify_workers=1)
    runner._new_pool()
    try:
        verdicts = runner._verdicts(batch, runner._submit(batch))
    finally:
        runner._drop_pool()
    assert verdicts is not None and all(ok for ok, _ in verdicts), verdicts
    return [checked.problems for _, checked in verdicts]


def test_the_city_issuer_reaches_the_consumer_and_its_workers(shop, central_signer, clock):
    city = CentralConsumer(central_signer, clock, issuer_keys=CITY_KEYS)
    batch = [_city_card_sale(shop), _demo_card_sale(shop)]
    genuine, demo = _problems_in_worker(city, batch)
    assert genuine == ()
    assert "unknown issuer key" in " ".join(demo), "a city with its own issuer does not believe DEMO cards"
    assert city._verify(shop.device_id, "redemption", batch[0].payload).problems == ()  # in-process, the same
    assert "unknown issuer key" in " ".join(city._verify(shop.device_id, "redemption", batch[1].payload).problems)


def test_without_issuer_keys_the_consumer_believes_the_demo_issuer(shop, central_signer, clock):
    """Backwards compatible for tests and the benchmark: CentralConsumer(signer, clock)."""
    demo_city = CentralConsumer(central_signer, clock)
    city_sale, demo_sale = _problems_in_worker(demo_city, [_city_card_sale(shop), _demo_card_sale(shop)])
    assert demo_sale == () and "unknown issuer key" in " ".join(city_sale)


def test_the_root_loads_issuer_keys_or_warns_of_the_demo_one(tmp_path, capsys):
    from pos.roots.central import issuer_keys

    pem = tmp_path / "issuer.pub.pem"
    pem.write_bytes(public_pem(CITY_ISSUER.public_key()))
    assert issuer_keys([pem]) == CITY_KEYS
    assert "WARNING" not in capsys.readouterr().err
    demo = issuer_keys(None)
    assert "WARNING: believing cards of the DEMO issuer (pass --issuer-key" in capsys.readouterr().err
    assert len(demo) == 1 and demo != CITY_KEYS
    (tmp_path / "not-a-key.pem").write_text("hello")
    with pytest.raises(SystemExit, match="cannot load the issuer key"):
        issuer_keys([tmp_path / "not-a-key.pem"])


def test_serve_takes_repeated_issuer_keys():
    import argparse

    from pos.cli import central_cmd

    parser = argparse.ArgumentParser()
    central_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["central", "serve", "--issuer-key", "a.pem", "--issuer-key", "b.pem"])
    assert args.issuer_keys == ["a.pem", "b.pem"]
    assert parser.parse_args(["central", "serve"]).issuer_keys is None
