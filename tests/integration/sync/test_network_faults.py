"""Network cut mid-publish and a slow link, through a loopback proxy the test controls:
every message arrives, once each after de-duplication, with no sequence gaps."""

from __future__ import annotations

import time

import pytest
from mqtt_test_support import outbox_states, start_sync, wait_for
from tcp_proxy import CuttableProxy
from test_sync_mqtt import all_acked, queue_events, redeem_many, stop


@pytest.fixture
def proxied_env(sync_env):
    proxy = CuttableProxy(sync_env["broker"].port)
    conf = sync_env["config"]
    conf.write_text(conf.read_text().replace(f"port = {sync_env['broker'].port}", f"port = {proxy.port}"))
    yield {**sync_env, "proxy": proxy}
    proxy.close()


@pytest.mark.mqtt
def test_connection_cut_mid_publish_again_and_again(proxied_env, service, db, signer, city_stub):
    n = 3000
    redeem_many(service, 100)
    queue_events(db, service.device, signer, n - 100)
    city_side = city_stub(client_id="city-cut")
    proxy = proxied_env["proxy"]
    proc = start_sync(proxied_env)
    db_path = proxied_env["dir"] / "ewarung.db"
    try:
        wait_for(lambda: outbox_states(db_path).get("acked", 0) > 0, 30, interval=0.02, what="drain started")
        first_cut = outbox_states(db_path)
        for _ in range(5):
            proxy.cut()
            proxy.down = True
            time.sleep(0.5)
            proxy.down = False
            time.sleep(0.3)
        wait_for(all_acked(proxied_env, n), 120, what="everything acknowledged after the cuts")
    finally:
        stop(proc)
    assert proxy.cuts >= 5
    assert first_cut.get("acked", 0) < n, f"the first cut came after the drain: proves nothing ({first_cut})"
    assert sorted(set(city_side.first_seen)) == list(range(1, n + 1)), "nothing lost, no gaps"
    assert len(city_side.first_seen) == n, "each message counted once after de-duplication"


@pytest.mark.mqtt
def test_slow_link_delivers_everything(proxied_env, service, city_stub):
    n = 60
    proxied_env["proxy"].delay_s = 0.02
    redeem_many(service, n)
    city_side = city_stub(client_id="city-slow")
    proc = start_sync(proxied_env)
    try:
        wait_for(all_acked(proxied_env, n), 120, what="everything acknowledged over a slow link")
    finally:
        stop(proc)
    assert sorted(set(city_side.first_seen)) == list(range(1, n + 1))
