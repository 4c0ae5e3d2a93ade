"""`ewarung provision` into a temporary root: the tree is accepted by the unit, udev and config
checks, and a second run changes nothing (same bytes, modes and mtimes)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from firmware_config.config import load_config
from firmware_config.provision import Answers, ProvisionError, provision
from tests.conftest import run_ewarung
from tests.provision.conftest import PI_CONFIG_TXT, flags, tree
from tests.provision.udev_syntax import check_rules


def _provision_cli(root: Path, trust_keys, *extra: str, **kw):
    prefix = str(root / "opt/ewarung/venv")  # ExecStart must exist for systemd-analyze verify
    return run_ewarung("provision", "--root", str(root), "--prefix", prefix, *flags(trust_keys, **kw), *extra)


def test_provision_twice_second_run_changes_nothing(pi_root, trust_keys):
    first = _provision_cli(pi_root, trust_keys)
    assert first.returncode == 0, first.stderr
    assert "changed" in first.stdout and "EW-SMD-0042" in first.stdout
    assert "PRIVATE KEY" not in first.stdout + first.stderr
    before = tree(pi_root)
    second = _provision_cli(pi_root, trust_keys, "--no-receipt")
    assert second.returncode == 0, second.stderr
    assert "provision: 0 changed" in second.stdout, second.stdout
    assert tree(pi_root) == before
    # and again with no answers at all: everything comes from the installed config
    third = run_ewarung("provision", "--root", str(pi_root), "--prefix", str(pi_root / "opt/ewarung/venv"), "--non-interactive", "--no-receipt")
    assert third.returncode == 0, third.stderr
    assert "provision: 0 changed" in third.stdout, third.stdout
    assert tree(pi_root) == before


def test_provisioned_tree_passes_config_key_udev_and_unit_checks(pi_root, trust_keys):
    assert _provision_cli(pi_root, trust_keys).returncode == 0
    etc = pi_root / "etc"
    # config: loads with the real schema, and `ewarung config check` accepts it
    cfg = load_config(etc / "ewarung/ewarung.toml")
    assert cfg.device.id == "EW-SMD-0042" and cfg.printer.usb_vendor == 0x04B8 and cfg.reader.virtual is False
    assert run_ewarung("config", "check", str(etc / "ewarung/ewarung.toml")).returncode == 0
    # keys: private key 0600; CSR for this key with CN = device id; trust anchors installed
    key = etc / "ewarung/keys/device.key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    csr = x509.load_pem_x509_csr((etc / "ewarung/keys/device.csr.pem").read_bytes())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "EW-SMD-0042"
    from firmware_config.identity import public_key_pem

    assert (etc / "ewarung/keys/device.pub.pem").read_bytes() == public_key_pem(key.read_bytes())
    for p in [*cfg.keys.issuer_public_keys, cfg.keys.ledger_public_key, cfg.keys.central_public_key]:
        assert (pi_root / str(p).lstrip("/")).is_file()
    # udev rules: our syntax check, and udevadm verify where systemd has it (>= 254)
    rules = etc / "udev/rules.d/60-ewarung.rules"
    assert check_rules(rules.read_text()) == []
    assert 'ATTR{idVendor}=="04b8", ATTR{idProduct}=="0202", GROUP="ewarung", MODE="0660"' in rules.read_text()
    probe = subprocess.run(["udevadm", "verify", "--help"], capture_output=True)
    if probe.returncode == 0:
        assert subprocess.run(["udevadm", "verify", str(rules)], capture_output=True).returncode == 0
    # service user in systemd-sysusers format: systemd-sysusers applies it to the tree
    sysusers = subprocess.run(
        ["systemd-sysusers", f"--root={pi_root}"], capture_output=True, text=True
    )
    assert sysusers.returncode == 0, sysusers.stderr
    passwd = (etc / "passwd").read_text()
    assert "ewarung:x:" in passwd and "/usr/sbin/nologin" in passwd
    group = (etc / "group").read_text()
    assert any(line.startswith("video:") and "ewarung" in line for line in group.splitlines())
    # units: systemd-analyze verify is clean; enabled through multi-user.target.wants
    for name in ("ewarung-sync.service", "ewarung-counter.service"):
        unit = etc / "systemd/system" / name
        out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
        assert out.returncode == 0 and out.stderr.strip() == "", out.stderr
        link = etc / "systemd/system/multi-user.target.wants" / name
        assert os.readlink(link) == f"/etc/systemd/system/{name}"
    assert "RuntimeWatchdogSec=" in (etc / "systemd/system.conf.d/ewarung-watchdog.conf").read_text()
    # boot config: Raspberry Pi OS lines kept, our block added once
    config_txt = (pi_root / "boot/firmware/config.txt").read_text()
    assert config_txt.startswith(PI_CONFIG_TXT) and config_txt.count("# BEGIN ewarung") == 1
    assert "dtparam=watchdog=on" in config_txt
    assert config_txt.count("dtoverlay=vc4-kms-v3d") == 1  # already there: not loaded twice


def test_dry_run_changes_nothing_and_lists_changes(pi_root, trust_keys):
    before = tree(pi_root)
    out = _provision_cli(pi_root, trust_keys, "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "would change  /etc/ewarung/keys/device.key.pem" in out.stdout
    assert "would change  /boot/firmware/config.txt" in out.stdout
    assert tree(pi_root) == before


def test_missing_answers_are_listed(pi_root):
    out = run_ewarung("provision", "--root", str(pi_root), "--non-interactive", "--device-id", "EW-1")
    assert out.returncode == 2
    for flag in ("--shop-id", "--shop-name", "--issuer-key", "--ledger-key", "--central-key", "--broker-host"):
        assert flag in out.stderr
    assert not (pi_root / "etc").exists()


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"device_id": "EW 42/x"}, "device id"),
        ({"printer_usb": "epson"}, "VENDOR:PRODUCT"),
    ],
)
def test_bad_answers_are_refused_before_anything_is_written(pi_root, trust_keys, override, expected):
    out = _provision_cli(pi_root, trust_keys, **override)
    assert out.returncode == 2 and expected in out.stderr, out.stderr
    assert not (pi_root / "etc").exists()


def test_wrong_trust_anchor_file_is_refused(pi_root, trust_keys, tmp_path):
    bogus = tmp_path / "issuer.pub.pem"
    bogus.write_text("not a key")
    answers = Answers(
        device_id="EW-1", shop_id="S-1", shop_name="W", issuer_keys=[bogus],
        ledger_key=trust_keys["ledger"], central_key=trust_keys["central"], broker_host="b",
        printer_kind="network",
    )
    with pytest.raises(ProvisionError, match="not a P-256 public key"):
        provision(answers, pi_root)


def test_key_kept_and_mode_repaired_hand_edits_survive(pi_root, trust_keys):
    assert _provision_cli(pi_root, trust_keys).returncode == 0
    key = pi_root / "etc/ewarung/keys/device.key.pem"
    original = key.read_bytes()
    os.chmod(key, 0o644)
    cfg_txt = pi_root / "boot/firmware/config.txt"
    cfg_txt.write_text("# technician: HDMI audio\nhdmi_drive=2\n" + cfg_txt.read_text() + "gpu_mem=128\n")
    cmdline = pi_root / "boot/firmware/cmdline.txt"
    cmdline.write_text(cmdline.read_text().strip() + " usbcore.autosuspend=-1\n")
    conf = pi_root / "etc/ewarung/ewarung.toml"
    conf.write_text(conf.read_text().replace("void_window_minutes = 30", "void_window_minutes = 10"))
    out = _provision_cli(pi_root, trust_keys)
    assert out.returncode == 0
    changed = [line for line in out.stdout.splitlines() if line.strip().startswith("changed")]
    assert changed == [line for line in changed if "device.key.pem" in line], out.stdout
    assert key.read_bytes() == original and stat.S_IMODE(key.stat().st_mode) == 0o600
    text = cfg_txt.read_text()
    assert text.startswith("# technician: HDMI audio\nhdmi_drive=2\n") and text.endswith("gpu_mem=128\n")
    assert "usbcore.autosuspend=-1" in cmdline.read_text()
    assert load_config(conf).policy.void_window_minutes == 10  # policy is the city's, kept


def test_read_only_root_layout_uses_data_partition(pi_root, trust_keys):
    out = _provision_cli(pi_root, trust_keys, data_dir="/data/ewarung", rotation="180", printer_kind="serial")
    assert out.returncode == 0, out.stderr
    sync = (pi_root / "etc/systemd/system/ewarung-sync.service").read_text()
    assert "StateDirectory=" not in sync and "ReadWritePaths=/data/ewarung" in sync
    assert "RequiresMountsFor=/data/ewarung" in sync
    assert (pi_root / "data/ewarung").is_dir()
    assert subprocess.run(["systemd-analyze", "verify", str(pi_root / "etc/systemd/system/ewarung-sync.service")], capture_output=True).returncode == 0
    boot = (pi_root / "boot/firmware/config.txt").read_text()
    assert "enable_uart=1" in boot and "dtoverlay=vc4-kms-dsi-7inch\n" in boot
    counter = (pi_root / "etc/systemd/system/ewarung-counter.service").read_text()
    assert "Environment=KCFG_GRAPHICS_ROTATION=180" in counter
    # a later run with one changed answer keeps the rotation, data dir and prefix it was given
    again = run_ewarung("provision", "--root", str(pi_root), "--non-interactive", "--no-receipt", "--printer-width", "80")
    assert again.returncode == 0, again.stderr
    changed = [ln.split()[1] for ln in again.stdout.splitlines() if ln.strip().startswith("changed")]
    assert changed == ["/etc/ewarung/ewarung.toml"], again.stdout
    cmdline = (pi_root / "boot/firmware/cmdline.txt").read_text()
    assert "console=serial0" not in cmdline and "rotate=180" in cmdline and cmdline.count("\n") == 1


def test_device_certificate_must_match_the_key(pi_root, trust_keys, tmp_path):
    from datetime import UTC, datetime, timedelta

    from cryptography.hazmat.primitives import hashes, serialization

    from pos.sample_city import demo_key

    assert _provision_cli(pi_root, trust_keys).returncode == 0
    ca = demo_key("central")
    csr = x509.load_pem_x509_csr((pi_root / "etc/ewarung/keys/device.csr.pem").read_bytes())
    now = datetime(2026, 1, 1, tzinfo=UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Samarinda test CA")])

    def sign(pub):
        return (
            x509.CertificateBuilder().subject_name(csr.subject).issuer_name(name).public_key(pub)
            .serial_number(7).not_valid_before(now).not_valid_after(now + timedelta(days=365)).sign(ca, hashes.SHA256())
        ).public_bytes(serialization.Encoding.PEM)

    wrong = tmp_path / "wrong.crt"
    wrong.write_bytes(sign(demo_key("issuer").public_key()))
    bad = _provision_cli(pi_root, trust_keys, device_cert=str(wrong))
    assert bad.returncode == 2 and "not for this device's key" in bad.stderr
    good = tmp_path / "good.crt"
    good.write_bytes(sign(csr.public_key()))
    ok = _provision_cli(pi_root, trust_keys, device_cert=str(good))
    assert ok.returncode == 0, ok.stderr
    cfg = load_config(pi_root / "etc/ewarung/ewarung.toml")
    assert str(cfg.mqtt.cert_file) == "/etc/ewarung/keys/device.crt.pem"
    assert "provision: 0 changed" in _provision_cli(pi_root, trust_keys, "--no-receipt").stdout


def test_not_a_raspberry_pi_skips_boot_config(tmp_path, trust_keys):
    root = tmp_path / "plain"
    root.mkdir()
    out = run_ewarung("provision", "--root", str(root), *flags(trust_keys))
    assert out.returncode == 0 and "boot configuration skipped" in out.stdout
    shutil.rmtree(root)


def test_image_build_owners_follow_the_trees_service_user(pi_root, trust_keys):
    """--root: after systemd-sysusers --root made the user in the tree, files belong to it."""
    first = _provision_cli(pi_root, trust_keys, "--no-receipt")
    assert "systemd-sysusers --root=" in first.stdout  # the note says what to do
    made = subprocess.run(["systemd-sysusers", f"--root={pi_root}"], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    passwd = {ln.split(":")[0]: ln.split(":") for ln in (pi_root / "etc/passwd").read_text().splitlines()}
    uid = int(passwd["ewarung"][2])
    gid = int(passwd["ewarung"][3])
    second = _provision_cli(pi_root, trust_keys, "--no-receipt")
    assert second.returncode == 0 and "systemd-sysusers --root=" not in second.stdout
    key = (pi_root / "etc/ewarung/keys/device.key.pem").stat()
    assert (key.st_uid, key.st_gid, key.st_mode & 0o777) == (uid, gid, 0o600)
    conf = (pi_root / "etc/ewarung/ewarung.toml").stat()
    assert (conf.st_uid, conf.st_gid, conf.st_mode & 0o777) == (0, gid, 0o640)
    assert (pi_root / "var/lib/ewarung").stat().st_uid == uid
    assert "provision: 0 changed" in _provision_cli(pi_root, trust_keys, "--no-receipt").stdout


def test_interactive_prompts_on_a_terminal(pi_root, trust_keys):
    """On a terminal, provision asks for each missing answer (stdin is a pty here)."""
    import pty
    import sys

    from tests.conftest import ROOT

    master, slave = pty.openpty()
    answers = ["EW-SMD-0077", "SMD-ULU-08", "Warung Melati", str(trust_keys["issuer"]), str(trust_keys["ledger"]), str(trust_keys["central"]), "broker.example"]
    os.write(master, ("\n".join(answers) + "\n").encode())
    proc = subprocess.run(
        [sys.executable, "-m", "pos.cli.main", "provision", "--root", str(pi_root), "--printer-kind", "network", "--no-receipt"],
        stdin=slave, capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    os.close(slave)
    os.close(master)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "Device id" in proc.stdout and "MQTT broker host name" in proc.stdout
    cfg = load_config(pi_root / "etc/ewarung/ewarung.toml")
    assert (cfg.device.id, cfg.device.shop_name, cfg.mqtt.host) == ("EW-SMD-0077", "Warung Melati", "broker.example")


def test_trust_anchors_with_the_same_name_are_refused(pi_root, trust_keys, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    same = other / "issuer.pub.pem"
    same.write_bytes(trust_keys["ledger"].read_bytes())
    answers = Answers(
        device_id="EW-1", shop_id="S-1", shop_name="W", issuer_keys=[trust_keys["issuer"]], ledger_key=same,
        central_key=trust_keys["central"], broker_host="b", printer_kind="network",
    )
    with pytest.raises(ProvisionError, match="same file name"):
        provision(answers, pi_root)
