"""TLS with client certificates by default, on a real mosquitto running the project's broker config
(sync/broker/: TLS only, client certificate required, CN = MQTT username, pattern ACLs) with a
throwaway CA: a provisioned device, its doctor, the city's consumer and ledger publisher."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
import threading
from argparse import Namespace
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from mqtt_test_support import ROOT, wait_for
from test_broker_acl import client, tls_broker  # noqa: F401

from firmware_config.config import load_config
from firmware_config.doctor import check_broker
from firmware_config.provision import Answers, provision

pytestmark = pytest.mark.mqtt
DEVICE = "EW-TEST-0001"


def _ewarung(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pos.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _city_signs(certs: Path, csr_pem: bytes) -> bytes:
    """The city's CA turns the device's CSR (from `ewarung provision`) into its client certificate."""
    ca_key = serialization.load_pem_private_key((certs / "ca.key").read_bytes(), None)
    ca = x509.load_pem_x509_certificate((certs / "ca.crt").read_bytes())
    csr = x509.load_pem_x509_csr(csr_pem)
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca.subject).public_key(csr.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).sign(ca_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def _host_config(root: Path, out: Path) -> Path:
    """The provisioned config with its device paths placed under `root`, to run it on this machine."""
    text = (root / "etc/ewarung/ewarung.toml").read_text()
    out.write_text(text.replace('"/etc/ewarung/', f'"{root}/etc/ewarung/').replace('"/data/', f'"{root}/data/'))
    return out


@pytest.fixture
def provisioned(tls_broker, tmp_path):  # noqa: F811
    from pos.sample_city import write_demo_keys

    broker, certs = tls_broker
    write_demo_keys(tmp_path / "city")
    root = tmp_path / "root"
    answers = Answers(device_id=DEVICE, shop_id="SMD-TEST-01", shop_name="E-Warung Uji",
                      issuer_keys=[tmp_path / "city/issuer.pub.pem"], ledger_key=tmp_path / "city/ledger.pub.pem",
                      central_key=tmp_path / "city/central.pub.pem", broker_host="127.0.0.1", broker_port=broker.port,
                      broker_ca=certs / "ca.crt", printer_kind="network", data_dir="/data/ewarung")
    first = provision(answers, root)
    return {"root": root, "certs": certs, "broker": broker, "answers": answers, "first": first, "dir": tmp_path}


def test_provisioned_device_and_city_speak_tls_with_client_certificates(provisioned):
    root, certs, broker, tmp = provisioned["root"], provisioned["certs"], provisioned["broker"], provisioned["dir"]
    m = provisioned["first"].config.mqtt
    assert (m.tls, m.port, str(m.ca_file), m.cert_file) == (True, broker.port, "/etc/ewarung/keys/broker-ca.pem", None)
    assert any("client certificate" in n for n in provisioned["first"].notes)
    host_cfg = _host_config(root, tmp / "host.toml")
    check = check_broker(load_config(host_cfg))
    assert not check.ok and "no client certificate" in check.message, check.message

    (tmp / "device.crt.pem").write_bytes(_city_signs(certs, (root / "etc/ewarung/keys/device.csr.pem").read_bytes()))
    second = provision(replace(provisioned["answers"], device_cert=tmp / "device.crt.pem"), root)
    assert str(second.config.mqtt.cert_file) == "/etc/ewarung/keys/device.crt.pem"
    host_cfg = _host_config(root, tmp / "host.toml")
    check = check_broker(load_config(host_cfg))
    assert check.ok and "client certificate" in check.message, check.message

    central_db = tmp / "central.db"
    reg = _ewarung("central", "--db", str(central_db), "device", "add", DEVICE,
                   "--key", str(root / "etc/ewarung/keys/device.pub.pem"))
    assert reg.returncode == 0, reg.stderr
    serve = subprocess.Popen(
        [sys.executable, "-m", "pos.cli.main", "central", "--db", str(central_db), "serve",
         "--broker", f"127.0.0.1:{broker.port}", "--cafile", str(certs / "ca.crt"),
         "--certfile", str(certs / "central.crt"), "--keyfile", str(certs / "central.key"),
         "--http", "off", "--client-id", "central-tls-test", "--group", ""],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        started = []  # the DEMO-key warnings come first, then the start line
        while len(started) < 6 and not any("central consumer" in line for line in started):
            started.append(serve.stdout.readline())
        assert "central consumer" in started[-1], started
        once = _ewarung("--config", str(host_cfg), "sync", "--once", "--offline-limit", "20")
        assert once.returncode == 0, once.stderr

        def seen() -> bool:
            con = sqlite3.connect(central_db)
            try:
                return bool(con.execute("SELECT 1 FROM central_device_state WHERE device = ? AND last_seen != ''",
                                        (DEVICE,)).fetchone())
            except sqlite3.OperationalError:
                return False
            finally:
                con.close()

        wait_for(seen, 20, what="central to hear the device over TLS")
    finally:
        serve.terminate()
        serve.wait(15)

    got: list = []
    done = threading.Event()
    listener, _ = client(broker.port, certs, DEVICE)
    listener.on_message = lambda cl, ud, msg: (got.append(msg.topic), done.set())
    listener.subscribe("ewarung/v1/ledger/samarinda/hotlist", qos=1)
    try:
        pub = _ewarung("central", "--db", str(central_db), "hotlist", "add", "CARD-SSN-6472-0000001",
                       "--reason", "stolen", "--broker", f"127.0.0.1:{broker.port}", "--cafile", str(certs / "ca.crt"),
                       "--certfile", str(certs / "central.crt"), "--keyfile", str(certs / "central.key"))
        assert pub.returncode == 0, pub.stderr
        assert done.wait(10) and got == ["ewarung/v1/ledger/samarinda/hotlist"]
    finally:
        listener.loop_stop()
        listener.disconnect()


def test_plaintext_only_with_the_lab_option_and_doctor_faults_it(provisioned):
    root, tmp = provisioned["root"], provisioned["dir"]
    lab = provision(replace(provisioned["answers"], broker_host="lab-broker.example", broker_port=None,
                            insecure_plaintext_lab=True), root)
    m = lab.config.mqtt
    assert (m.tls, m.insecure_plaintext_lab, m.port, m.use_tls) == (False, True, 1883, False)
    assert any(n.startswith("INSECURE") for n in lab.notes)
    check = check_broker(load_config(_host_config(root, tmp / "lab.toml")))
    assert not check.ok and "PLAINTEXT MQTT" in check.message
    again = provision(replace(provisioned["answers"], broker_host="lab-broker.example", broker_port=None), root)
    assert (again.config.mqtt.use_tls, again.config.mqtt.port) == (True, 8883), "without the option: TLS again"


def test_city_tools_default_to_tls_off_this_machine():
    from pos.cli.broker_tls import tls_options

    def opts(**kw):
        return Namespace(**{"cafile": None, "certfile": None, "keyfile": None, "insecure_plaintext_lab": False, **kw})

    assert tls_options(opts(), "mqtt.samarinda.go.id") == {"ca_certs": None, "certfile": None, "keyfile": None}
    assert tls_options(opts(), "127.0.0.1") is None
    assert tls_options(opts(insecure_plaintext_lab=True), "mqtt.samarinda.go.id") is None
    with pytest.raises(SystemExit, match="go together"):
        tls_options(opts(certfile="c.pem"), "mqtt.samarinda.go.id")
