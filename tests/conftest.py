"""Shared fixtures: a fresh migrated database with the sample city, a fixed clock, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"

os.environ.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", str(ROOT / ".venv" / "escpos-cache"))
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
# Demo mode's card deck goes through pcscd + vpcd by default; the machine has one pcscd socket, so
# tests use the in-process deck unless they hold the pcscd lock and ask for deck="auto" themselves.
os.environ.setdefault("EWARUNG_DEMO_DECK", "fake")

# 10:00 WITA on 15 November 2026
NOW = datetime(2026, 11, 15, 2, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    from pos.clock import FixedClock

    return FixedClock(NOW)


@pytest.fixture
def db(tmp_path):
    from pos.db import open_database

    database = open_database(tmp_path / "ewarung.db")
    yield database
    database.close()


@pytest.fixture
def city(db, clock):
    from pos.sample_city import build_sample_city

    return build_sample_city(db, households=60, now=clock.now())


@pytest.fixture
def device():
    from pos.device import DeviceIdentity

    return DeviceIdentity("EW-TEST-0001", "SMD-TEST-01", "E-Warung Uji", "Jl. Uji 1, Samarinda", hotline="0541-000")


@pytest.fixture
def signer():
    from pos.sample_city import demo_key
    from pos.signing import EcdsaSigner

    return EcdsaSigner(demo_key("device"), "EW-TEST-0001")


@pytest.fixture
def service(db, city, device, signer, clock):
    from pos.ledger import Ledger
    from pos.policy import Policy
    from pos.redemption import RedemptionService

    return RedemptionService(db, Ledger(), device, signer, clock, Policy())


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def run_ewarung(*args: str, env: dict | None = None, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """Run this checkout's `ewarung` as a separate process, the way a person would."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pos.cli.main", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=kw.pop("cwd", ROOT),
        **kw,
    )
