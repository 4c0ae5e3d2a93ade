"""The project's broker configuration (sync/broker/) with TLS client certificates and pattern ACLs."""

from __future__ import annotations

import datetime as dt
import ipaddress
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from mqtt_test_support import ROOT, Broker, outbox_states, run_sync_once
from paho.mqtt.enums import CallbackAPIVersion

pytestmark = pytest.mark.mqtt
BROKER_DIR = ROOT / "sync" / "broker"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path: Path, key, cert) -> None:
    path.with_suffix(".key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_pki(d: Path, clients: list[str]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("E-Warung Test CA")).issuer_name(_name("E-Warung Test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    _write(d / "ca", ca_key, ca)

    def issue(cn: str, server: bool = False):
        key = ec.generate_private_key(ec.SECP256R1())
        b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca.subject).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
             .not_valid_after(now + dt.timedelta(days=1)))
        if server:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                             x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        _write(d / cn, key, b.sign(ca_key, hashes.SHA256()))

    issue("server", server=True)
    for cn in clients:
        issue(cn)


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    work = tmp_path_factory.mktemp("tls-broker")
    certs = work / "certs"
    make_pki(certs, ["EW-TEST-0001", "EW-OTHER-0002", "central"])
    broker = Broker(work, extra="-")
    conf = (BROKER_DIR / "mosquitto.conf").read_text()
    conf = (conf.replace("/etc/mosquitto/certs/", f"{certs}/").replace("/etc/mosquitto/ewarung.acl", str(BROKER_DIR / "acl.conf"))
            .replace("listener 8883", f"listener {broker.port} 127.0.0.1"))
    conf = "\n".join(line for line in conf.splitlines() if not line.startswith(("persistence", "autosave")))
    broker.extra = conf + "\n"
    broker.start()
    yield broker, certs
    broker.stop()


def client(port: int, certs: Path, cn: str) -> tuple[mqtt.Client, list]:
    got: list = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"acl-{cn}", protocol=mqtt.MQTTv5)
    c.tls_set(ca_certs=str(certs / "ca.crt"), certfile=str(certs / f"{cn}.crt"), keyfile=str(certs / f"{cn}.key"))
    connected = threading.Event()
    c.on_connect = lambda *a: connected.set()
    c.on_message = lambda cl, ud, m: got.append((m.topic, m.payload))
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert connected.wait(10), f"{cn} could not connect over TLS"
    return c, got


def test_device_confined_to_its_own_topics(tls_broker):
    broker, certs = tls_broker
    central, central_got = client(broker.port, certs, "central")
    central.subscribe("ewarung/v1/devices/#", qos=1)
    dev, _ = client(broker.port, certs, "EW-TEST-0001")
    results = {}

    def on_publish(cl, ud, mid, rc, props):
        results[mid] = rc

    dev.on_publish = on_publish
    import time

    time.sleep(0.5)
    own = dev.publish("ewarung/v1/devices/EW-TEST-0001/redemption", b"mine", qos=1)
    other = dev.publish("ewarung/v1/devices/EW-OTHER-0002/redemption", b"forged", qos=1)
    ack = dev.publish("ewarung/v1/devices/EW-TEST-0001/ack", b"self-ack", qos=1)
    own.wait_for_publish(5)
    other.wait_for_publish(5)
    ack.wait_for_publish(5)
    time.sleep(1)
    assert not results[own.mid].is_failure
    assert results[other.mid].is_failure and results[other.mid].value == 0x87, results[other.mid]
    assert results[ack.mid].is_failure, "a device must not acknowledge its own messages"
    topics = [t for t, _ in central_got]
    assert topics == ["ewarung/v1/devices/EW-TEST-0001/redemption"]
    for c in (dev, central):
        c.loop_stop()
        c.disconnect()


def test_client_without_certificate_refused(tls_broker):
    broker, certs = tls_broker
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="nocert", protocol=mqtt.MQTTv5)
    c.tls_set(ca_certs=str(certs / "ca.crt"))
    connected = []
    c.on_connect = lambda cl, ud, flags, rc, props: connected.append(rc)
    try:
        c.connect("127.0.0.1", broker.port)
        for _ in range(20):
            c.loop(0.1)
    except OSError:
        pass  # the TLS handshake fails: refused
    assert not any(not rc.is_failure for rc in connected), "a client without a certificate got in"


def test_sync_daemon_over_tls(tls_broker, sync_env, service):
    from pos.redemption import RedemptionRequest

    broker, certs = tls_broker
    for i in range(5):
        service.redeem(RedemptionRequest(f"SSN-6472-00000{10 + i}", "kasir1", {"TAHU": 1}))
    sync_env["config"].write_text(
        f'[device]\nid = "EW-TEST-0001"\nshop_id = "SMD-TEST-01"\ndata_dir = "{sync_env["dir"]}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\ntls = true\nca_file = "{certs / "ca.crt"}"\n'
        f'cert_file = "{certs / "EW-TEST-0001.crt"}"\nkey_file = "{certs / "EW-TEST-0001.key"}"\n'
    )
    result = run_sync_once(sync_env)
    assert result.returncode == 0, result.stderr
    assert outbox_states(sync_env["dir"] / "ewarung.db") == {"published": 5}, "PUBACKed over TLS; awaiting the city's ack"


def test_shop_bridge_carries_messages_and_acks(tls_broker, sync_env, service, tmp_path):
    """sync/broker/shop-bridge.conf: device -> shop broker -> (TLS bridge) -> city broker, and acks back."""
    import time

    from mqtt_test_support import start_sync, wait_for

    from pos.redemption import RedemptionRequest
    from pos.sample_city import demo_key
    from pos.signing import EcdsaSigner, jws_verify
    from sync.acks import build_ack

    city_broker, certs = tls_broker
    shop = Broker(tmp_path / "shop", extra="-")
    conf = (BROKER_DIR / "shop-bridge.conf").read_text()
    conf = (conf.replace("EW-SMD-0001", "EW-TEST-0001").replace("/etc/mosquitto/certs/", f"{certs}/")
            .replace("city-broker.example.id:8883", f"127.0.0.1:{city_broker.port}")
            .replace("listener 1883 127.0.0.1", f"listener {shop.port} 127.0.0.1"))
    shop.extra = "\n".join(line for line in conf.splitlines() if not line.startswith(("persistence", "autosave"))) + "\n"
    shop.start()
    central = EcdsaSigner(demo_key("central"), "central")
    device_pub = {"EW-TEST-0001": demo_key("device").public_key()}
    city_client, got = client(city_broker.port, certs, "central")

    def on_message(cl, ud, m):
        if m.topic.endswith("/redemption"):
            obj = jws_verify(bytes(m.payload), device_pub, "ewarung-msg+jws").json()
            got.append(obj["seq"])
            cl.publish("ewarung/v1/devices/EW-TEST-0001/ack", build_ack("EW-TEST-0001", obj["created_at"], central,
                                                                       ids=[obj["id"]]), qos=1)

    city_client.on_message = on_message
    city_client.subscribe("ewarung/v1/devices/+/redemption", qos=1)
    time.sleep(1)  # let the bridge connect
    for i in range(5):
        service.redeem(RedemptionRequest(f"SSN-6472-00000{20 + i}", "kasir1", {"TAHU": 1}))
    sync_env["config"].write_text(sync_env["config"].read_text().replace(f"port = {sync_env['broker'].port}",
                                                                          f"port = {shop.port}"))
    proc = start_sync(sync_env)
    try:
        wait_for(lambda: outbox_states(sync_env["dir"] / "ewarung.db") == {"acked": 5}, 30,
                 what="acks from the city through the bridge")
    finally:
        proc.terminate()
        proc.wait(15)
        city_client.loop_stop()
        city_client.disconnect()
        shop.stop()
    assert sorted(set(got)) == [1, 2, 3, 4, 5]
