"""`ewarung provision --update-repo/--update-key/--update-window`: the device trusts the city's release
key, takes its releases unattended, only in the maintenance window (firmware_config.updates)."""

from __future__ import annotations

import pytest

from firmware_config import updates
from tests.conftest import run_ewarung
from tests.provision.conftest import flags

KEY = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ...\n-----END PGP PUBLIC KEY BLOCK-----\n"


def _provision(root, trust_keys, *extra):
    prefix = str(root / "opt/ewarung/venv")
    return run_ewarung("provision", "--root", str(root), "--prefix", prefix, "--no-receipt", *flags(trust_keys), *extra)


def test_update_flags_write_repository_key_and_window(pi_root, trust_keys, tmp_path):
    key = tmp_path / "city-release.asc"
    key.write_bytes(KEY)
    args = ("--update-repo", "https://apt.samarinda.example/ewarung/", "--update-key", str(key), "--update-window", "23:00-04:30")
    first = _provision(pi_root, trust_keys, *args)
    assert first.returncode == 0, first.stderr
    sources = (pi_root / updates.SOURCES_FILE.lstrip("/")).read_text()
    assert "URIs: https://apt.samarinda.example/ewarung\n" in sources and f"Signed-By: {updates.KEYRING_FILE}" in sources
    assert (pi_root / updates.KEYRING_FILE.lstrip("/")).read_bytes() == KEY
    assert 'origin=E-Warung,codename=bookworm' in (pi_root / updates.UNATTENDED_FILE.lstrip("/")).read_text()
    timer = (pi_root / updates.TIMER_DROPIN.lstrip("/")).read_text()
    assert "OnCalendar=*-*-* 23:00:00" in timer and "RandomizedDelaySec=270min" in timer and "Persistent=false" in timer
    again = _provision(pi_root, trust_keys, *args)
    assert "provision: 0 changed" in again.stdout, again.stdout


def test_update_flags_refuse_a_key_that_is_not_a_gpg_export(pi_root, trust_keys, tmp_path):
    key = tmp_path / "city.pub.pem"
    key.write_text("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n")
    out = _provision(pi_root, trust_keys, "--update-repo", "https://apt.example/", "--update-key", str(key))
    assert out.returncode == 2 and "gpg --armor --export" in out.stderr
    assert not (pi_root / updates.SOURCES_FILE.lstrip("/")).exists()


@pytest.mark.parametrize("text", ["22-05", "25:00-05:00", "22:00-22:30"])
def test_window_must_be_hours_and_long_enough(text):
    with pytest.raises(ValueError):
        updates.parse_window(text)


def test_window_across_midnight_leaves_the_last_hour_free():
    window = updates.parse_window("22:00-05:00")
    assert window.minutes == 7 * 60
    assert "RandomizedDelaySec=360min" in updates.timer_text(window)


def test_sale_guard_holds_the_lock_only_while_a_card_is_served(tmp_path):
    from pos.session import State

    class Session:
        state = State.IDLE

    guard, session = updates.SaleGuard(tmp_path), Session()
    guard(session)
    assert not updates.sale_in_progress(tmp_path)
    for state in (State.VERIFYING, State.BASKET, State.COMMITTING):
        session.state = state
        guard(session)
        assert updates.sale_in_progress(tmp_path)
    session.state = State.DONE
    guard(session)
    assert not updates.sale_in_progress(tmp_path)


def test_gate_refuses_an_upgrade_while_a_sale_holds_the_lock(tmp_path, monkeypatch):
    from firmware_config.config import demo_config
    from firmware_config.provision import render_config_from
    from pos.session import State

    cfg = demo_config(tmp_path / "data")
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "ewarung.toml"
    path.write_text(render_config_from(cfg))
    monkeypatch.setenv("EWARUNG_CONFIG", str(path))
    monkeypatch.setenv("EWARUNG_UPDATE_DIR", str(tmp_path / "updates"))

    class Session:
        state = State.CONFIRM

    guard, session = updates.SaleGuard(cfg.data_dir), Session()
    guard(session)
    assert updates.gate() == updates.TEMPFAIL
    session.state = State.IDLE
    guard(session)
    assert updates.gate() == 0
    assert (tmp_path / "updates/baseline.json").exists()  # what doctor failed before the upgrade
