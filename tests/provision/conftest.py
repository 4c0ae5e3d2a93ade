"""Fixtures for provisioning, doctor and backup tests: trust anchors, a Raspberry Pi OS tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PI_CONFIG_TXT = """# For more options and information see
# http://rptl.io/configtxt
dtparam=audio=on
camera_auto_detect=1
display_auto_detect=1
auto_initramfs=1
dtoverlay=vc4-kms-v3d
max_framebuffers=2
arm_64bit=1

[cm4]
otg_mode=1

[all]
"""
PI_CMDLINE_TXT = "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait quiet\n"


@pytest.fixture
def trust_keys(tmp_path) -> dict[str, Path]:
    from pos.sample_city import write_demo_keys

    keys = tmp_path / "from-city"
    write_demo_keys(keys)
    return {role: keys / f"{role}.pub.pem" for role in ("issuer", "ledger", "central")}


@pytest.fixture
def pi_root(tmp_path) -> Path:
    """A directory tree standing in for a fresh Raspberry Pi OS Lite root, with a stub ewarung."""
    root = tmp_path / "root"
    fw = root / "boot/firmware"
    fw.mkdir(parents=True)
    (fw / "config.txt").write_text(PI_CONFIG_TXT)
    (fw / "cmdline.txt").write_text(PI_CMDLINE_TXT)
    venv_bin = root / "opt/ewarung/venv/bin"
    venv_bin.mkdir(parents=True)
    stub = venv_bin / "ewarung"
    stub.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(stub, 0o755)
    return root


def flags(trust_keys: dict[str, Path], **extra: str) -> list[str]:
    args = [
        "--non-interactive",
        "--device-id", "EW-SMD-0042",
        "--shop-id", "SMD-ULU-07",
        "--shop-name", "E-Warung Mawar",
        "--issuer-key", str(trust_keys["issuer"]),
        "--ledger-key", str(trust_keys["ledger"]),
        "--central-key", str(trust_keys["central"]),
        "--broker-host", "broker.samarinda.example",
        "--printer-usb", "04b8:0202",
    ]
    for k, v in extra.items():
        args += [f"--{k.replace('_', '-')}", v]
    return args


def tree(root: Path) -> dict[str, tuple[int, bytes | str]]:
    """Every file, directory and link under root: mode and content (to compare two runs)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            if p.is_symlink():
                out[str(p.relative_to(root))] = (st.st_mode, os.readlink(p))
            elif p.is_file():
                out[str(p.relative_to(root))] = (st.st_mode, p.read_bytes(), st.st_mtime_ns)
            else:
                out[str(p.relative_to(root))] = (st.st_mode, "dir")
    return out


def make_device(root: Path, trust_keys: dict[str, Path], sales: int = 3, device_id: str = "EW-SMD-0042") -> dict:
    """Provision `root`, then give it a database with the sample city and `sales` redemptions."""
    from firmware_config.provision import Answers, provision
    from pos.clock import FixedClock
    from pos.db import open_database
    from pos.ledger import Ledger
    from pos.redemption import RedemptionRequest, RedemptionService
    from pos.sample_city import build_sample_city
    from pos.signing import EcdsaSigner, load_private_key
    from tests.conftest import NOW

    answers = Answers(
        device_id=device_id, shop_id="SMD-ULU-07", shop_name="E-Warung Mawar", issuer_keys=[trust_keys["issuer"]],
        ledger_key=trust_keys["ledger"], central_key=trust_keys["central"], broker_host="127.0.0.1",
        printer_kind="network",
    )
    cfg = provision(answers, root).config
    db_path = root / str(cfg.database_path).lstrip("/")
    db = open_database(db_path)
    try:
        city = build_sample_city(db, households=60, now=NOW)
        key = load_private_key((root / str(cfg.keys.device_key).lstrip("/")).read_bytes())
        service = RedemptionService(db, Ledger(), cfg.identity(), EcdsaSigner(key, device_id), FixedClock(NOW), cfg.to_policy())
        ids = [service.redeem(RedemptionRequest(city.notable["holder"], "kasir1", {"TAHU": 1})).redemption_id for _ in range(sales)]
    finally:
        db.close()
    return {"config": cfg, "db_path": db_path, "redemptions": ids}
