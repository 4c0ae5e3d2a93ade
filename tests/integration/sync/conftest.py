"""Fixtures for sync tests: a private mosquitto per session, a test city that acknowledges, schemas."""

from __future__ import annotations

import pytest
from mqtt_test_support import Broker, CityStub, load_schemas


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("mosquitto"))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def live_broker(broker):
    """The session broker, guaranteed running when the test starts."""
    if broker.proc is None or broker.proc.poll() is not None:
        broker.start()
    return broker


@pytest.fixture(scope="session")
def schemas():
    return load_schemas()


@pytest.fixture
def sync_env(tmp_path, db, city, service, live_broker):
    """A data dir with DEMO keys, the test database, and a config file pointing at the broker."""
    from pos.sample_city import write_demo_keys

    write_demo_keys(tmp_path / "keys")
    (tmp_path / "keys" / "device.key.pem").chmod(0o600)
    conf = tmp_path / "ewarung.toml"
    conf.write_text(
        f'[device]\nid = "EW-TEST-0001"\nshop_id = "SMD-TEST-01"\ndata_dir = "{tmp_path}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {live_broker.port}\nheartbeat_s = 5\ninflight = 64\n'
    )
    return {"dir": tmp_path, "config": conf, "broker": live_broker}




@pytest.fixture
def city_stub(live_broker):
    """Make CityStubs on the session broker; all are disconnected at teardown, even if a test fails."""
    made = []

    def make(**kw):
        stub = CityStub(live_broker.port, "EW-TEST-0001", **kw)
        made.append(stub)
        return stub

    yield make
    for stub in made:
        stub.close()
