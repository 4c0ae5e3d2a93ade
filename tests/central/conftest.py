from __future__ import annotations

import pytest

from tests.central.servers import Mosquitto, PostgresServer


@pytest.fixture(scope="session")
def pg_server():
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mosquitto():
    broker = Mosquitto().start()
    yield broker
    broker.stop()


@pytest.fixture
def central(tmp_path):
    from sync.central.store import open_central

    db = open_central(tmp_path / "central.db")
    yield db
    db.close()


@pytest.fixture
def central_signer():
    from pos.sample_city import demo_key
    from pos.signing import EcdsaSigner

    return EcdsaSigner(demo_key("central"), "central")


@pytest.fixture
def consumer(central, central_signer, clock):
    from sync.central.consumer import CentralConsumer

    return CentralConsumer(central_signer, clock)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request, tmp_path):
    """The central database on SQLite and on a real PostgreSQL server."""
    import uuid

    from sync.central.store import open_central

    if request.param == "sqlite":
        db = open_central(tmp_path / "central.db")
    else:
        db = open_central(request.getfixturevalue("pg_server").createdb(f"cross_{uuid.uuid4().hex[:12]}"))
    yield db
    db.close()


@pytest.fixture
def on_db(any_db, central_signer, clock):
    """A consumer on `any_db`: a city check run on both databases the city may use."""
    from sync.central.consumer import CentralConsumer

    return CentralConsumer(central_signer, clock)


@pytest.fixture
def make_device(tmp_path, clock):
    from tests.central.devices import SimDevice

    wallet: dict = {}  # the households' cards, carried from shop to shop

    def make(device_id: str, register: bool = True, **kw) -> SimDevice:
        dev = SimDevice(tmp_path, device_id, clock.now(), **{"wallet": wallet, **kw})
        if register:
            from sync.central.registry import add_device

            add_device(device_id, dev.public_pem(), shop_id=dev.identity.shop_id, now=clock.now())
        return dev

    return make
