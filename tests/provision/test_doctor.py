"""`ewarung doctor` finds each planted fault and says what to fix; a healthy device passes."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import ssl
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from firmware_config import doctor
from tests.conftest import NOW, run_ewarung


class Listener:
    """A loopback TCP server that accepts and (optionally) speaks TLS: broker or network printer."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.tls = tls
        self.received = b""
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                if self.tls:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                conn.settimeout(1)
                while chunk := conn.recv(4096):
                    self.received += chunk
            except OSError:
                pass
            finally:
                conn.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self.sock.close()


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


CONFIG = """
[device]
id = "EW-SMD-0042"
shop_id = "SMD-ULU-07"
shop_name = "E-Warung Mawar"
data_dir = "{data}"
[reader]
kind = "fake"
[printer]
kind = "network"
host = "127.0.0.1"
port = {printer}
[mqtt]
host = "127.0.0.1"
port = {broker}
{tls}
"""


@pytest.fixture
def healthy(tmp_path, service, city):
    """A device with keys, a database with sales, a broker and a network printer on loopback."""
    from pos.redemption import RedemptionRequest
    from pos.sample_city import write_demo_keys

    for _ in range(2):
        service.redeem(RedemptionRequest(city.notable["holder"], "kasir1", {"TAHU": 1}))
    write_demo_keys(tmp_path / "keys")
    broker, printer = Listener(), Listener()
    path = tmp_path / "ewarung.toml"
    path.write_text(CONFIG.format(data=tmp_path, printer=printer.port, broker=broker.port, tls=""))
    yield {"config": path, "dir": tmp_path, "broker": broker, "printer": printer}
    broker.close()
    printer.close()


def _by_name(results) -> dict[str, doctor.Check]:
    return {r.name: r for r in results}


def _run(h, **kw):
    return _by_name(doctor.run_checks(h["config"], now=kw.pop("now", NOW + timedelta(hours=1)), timeout=1.0, **kw))


def test_healthy_device_passes(healthy):
    res = _run(healthy)
    assert all(r.ok for r in res.values()), {n: r.message for n, r in res.items() if not r.ok}
    assert set(res) == {"config", "keys", "data dir", "database", "clock", "disk", "reader", "printer", "broker"}
    assert "journal chain ok" in res["database"].message and "last sequence 2" in res["database"].message


def test_cli_exit_code_test_page_and_receipt_qr(healthy):
    out = run_ewarung("--config", str(healthy["config"]), "doctor", "--test-page", "--timeout", "1")
    # the real clock is used here: fine as long as it is after the sample ledger's issue time
    assert out.returncode == (0 if datetime.now(UTC) >= NOW else 1), out.stdout
    assert "device id : EW-SMD-0042" in out.stdout and "█" in out.stdout
    assert b"E-Warung POS - test page" in healthy["printer"].received
    assert healthy["printer"].received.startswith(b"\x1b@")


def test_bad_config(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[device]\nid = "EW 1"\ncolour = "red"\n')
    out = run_ewarung("--config", str(bad), "doctor")
    assert out.returncode == 1
    assert "[FAIL] config" in out.stdout and "colour" in out.stdout and "device.id" in out.stdout


def test_key_readable_by_others(healthy):
    os.chmod(healthy["dir"] / "keys/device.key.pem", 0o644)
    res = _run(healthy)
    assert not res["keys"].ok and "chmod 600" in res["keys"].message


def test_missing_key(healthy):
    (healthy["dir"] / "keys/device.key.pem").unlink()
    (healthy["dir"] / "keys/ledger.pub.pem").unlink()
    res = _run(healthy)
    msg = res["keys"].message
    assert not res["keys"].ok and "device key" in msg and "missing" in msg and "--ledger-key" in msg


def test_corrupted_database(healthy, db):
    db.close()
    path = healthy["dir"] / "ewarung.db"
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    data = bytearray(path.read_bytes())
    page = 4096
    for offset in range(3 * page, min(len(data), 12 * page), page):  # b-tree page headers of several tables
        data[offset : offset + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))
    res = _run(healthy)
    assert not res["database"].ok and "restore" in res["database"].message, res["database"].message
    print(res["database"].message)


def test_broken_journal_chain(healthy, db):
    db.close()
    con = sqlite3.connect(healthy["dir"] / "ewarung.db")
    assert con.execute("UPDATE journal_entry SET data = '{\"total\":1}' WHERE id = 2").rowcount == 1
    con.commit()
    con.close()
    res = _run(healthy)
    assert not res["database"].ok and "journal chain BROKEN" in res["database"].message


def test_broker_unreachable(healthy):
    text = healthy["config"].read_text().replace(f"port = {healthy['broker'].port}", f"port = {_closed_port()}")
    healthy["config"].write_text(text)
    res = _run(healthy)
    assert not res["broker"].ok and "unreachable" in res["broker"].message and res["printer"].ok


def test_printer_unreachable(healthy):
    healthy["printer"].close()
    res = _run(healthy)
    assert not res["printer"].ok and "power" in res["printer"].message


def test_clock_before_ledger_issue_time(healthy):
    res = _run(healthy, now=NOW - timedelta(days=2))
    assert not res["clock"].ok and "behind the ledger" in res["clock"].message
    res = _run(healthy, now=datetime(1970, 1, 1, tzinfo=UTC))
    assert not res["clock"].ok and "timedatectl" in res["clock"].message


def test_disk_nearly_full(healthy):
    free = os.statvfs(healthy["dir"])
    res = _run(healthy, min_free_bytes=free.f_bavail * free.f_frsize + 10**9)
    assert not res["disk"].ok and "MB free" in res["disk"].message


def test_missing_database_and_data_dir(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(CONFIG.format(data=tmp_path / "nowhere", printer=_closed_port(), broker=_closed_port(), tls=""))
    res = _by_name(doctor.run_checks(path, now=NOW, timeout=0.5))
    assert not res["data dir"].ok and not res["database"].ok and "ewarung restore" in res["database"].message


def _tls_material(tmp_path: Path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    start = datetime.now(UTC) - timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(name("test CA")).issuer_name(name("test CA")).public_key(ca_key.public_key())
        .serial_number(1).not_valid_before(start).not_valid_after(start + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(2).not_valid_before(start).not_valid_after(start + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "server.pem").write_bytes(cert.public_bytes(pem) + key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    device_key = ec.generate_private_key(ec.SECP256R1())
    device = (
        x509.CertificateBuilder().subject_name(name("EW-SMD-0042")).issuer_name(ca.subject)
        .public_key(device_key.public_key()).serial_number(3).not_valid_before(start)
        .not_valid_after(start + timedelta(days=30)).sign(ca_key, hashes.SHA256())
    )
    (tmp_path / "device.crt.pem").write_bytes(device.public_bytes(pem))
    (tmp_path / "device.key.pem").write_bytes(device_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                                       serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "server.pem")
    return ctx


def test_broker_tls_verified_and_wrong_ca_reported(healthy, tmp_path):
    (tmp_path / "tls").mkdir()
    ctx = _tls_material(tmp_path / "tls")
    tls_broker = Listener(ctx)
    try:
        base = healthy["config"].read_text().replace(f"port = {healthy['broker'].port}", f"port = {tls_broker.port}")
        healthy["config"].write_text(base.replace("\n\n", "\n") + f'tls = true\nca_file = "{tmp_path / "tls/ca.pem"}"\n')
        res = _run(healthy)
        assert not res["broker"].ok and "no client certificate" in res["broker"].message, res["broker"].message
        healthy["config"].write_text(healthy["config"].read_text() + f'cert_file = "{tmp_path / "tls/device.crt.pem"}"\n'
                                     f'key_file = "{tmp_path / "tls/device.key.pem"}"\n')
        res = _run(healthy)
        assert res["broker"].ok and "TLS" in res["broker"].message, res["broker"].message
        other = tmp_path / "other"
        other.mkdir()
        _tls_material(other)
        healthy["config"].write_text(healthy["config"].read_text().replace(str(tmp_path / "tls/ca.pem"), str(other / "ca.pem")))
        res = _run(healthy)
        assert not res["broker"].ok and "TLS" in res["broker"].message and "CA" in res["broker"].message
    finally:
        tls_broker.close()


def test_pcscd_not_running(healthy, monkeypatch):
    healthy["config"].write_text(healthy["config"].read_text().replace('kind = "fake"', 'kind = "pcsc"'))
    monkeypatch.setattr(doctor, "PCSCD_SOCKET", healthy["dir"] / "no-pcscd.comm")
    res = _run(healthy)
    assert not res["reader"].ok and "pcscd" in res["reader"].message


def test_file_printer_test_page_and_missing_serial_port(healthy):
    out = healthy["dir"] / "printer.bin"
    text = healthy["config"].read_text().replace('kind = "network"', f'kind = "file"\npath = "{out}"')
    healthy["config"].write_text(text)
    res = _run(healthy, print_test_page=True)
    assert res["printer"].ok and out.read_bytes().startswith(b"\x1b@E-Warung POS - test page")
    healthy["config"].write_text(text.replace('kind = "file"', 'kind = "serial"\nserial_port = "/dev/ttyNOPE9"'))
    res = _run(healthy)
    assert not res["printer"].ok and "/dev/ttyNOPE9" in res["printer"].message
