"""The amd64 packages on a Debian 12 root: install, upgrade from the release before, remove,
reinstall and purge, with the device's data, keys and changed configuration kept throughout.

Why: a shop's database and device key are its records and identity; no package operation may
lose them, and purge must take away only what the package itself made.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.packaging.conftest import ROOT, debian_version, in_root, overlay_root, repack

pytestmark = pytest.mark.slow

PREVIOUS = "0.0.9-1"
# What `ewarung provision` and a working counter leave on a device (the package makes none of it).
DEVICE_FILES = {
    "/etc/ewarung/ewarung.toml": '[device]\nid = "EW-TEST-0001"\n',
    "/etc/ewarung/keys/device.key.pem": "not a real key\n",
    "/var/lib/ewarung/ewarung.db": "sales of the month\n",
}


def test_production_package_never_pulls_the_virtual_reader(amd64_debs):
    fields = subprocess.run(["dpkg-deb", "-f", str(amd64_debs["ewarung-pos"]), "Depends", "Recommends", "Suggests"],
                            check=True, capture_output=True, text=True).stdout
    assert "pcscd" in fields
    assert "vsmartcard" not in fields and "vpcd" not in fields


def test_install_upgrade_remove_purge_keep_the_device_data(amd64_debs, tmp_path):
    old = {name: repack(deb, PREVIOUS, tmp_path) for name, deb in amd64_debs.items() if name != "ewarung-central"}
    with overlay_root(tmp_path) as root:
        debs = root / "tmp/ewarung-debs"
        debs.mkdir()
        for deb in [*old.values(), amd64_debs["ewarung-runtime"], amd64_debs["ewarung-pos"]]:
            shutil.copy(deb, debs)
        new = f"/tmp/ewarung-debs/{amd64_debs['ewarung-runtime'].name} /tmp/ewarung-debs/{amd64_debs['ewarung-pos'].name}"
        previous = " ".join(f"/tmp/ewarung-debs/{p.name}" for p in old.values())

        in_root(root, f"dpkg -i {previous}")
        assert "ewarung" in in_root(root, "id ewarung").stdout
        assert in_root(root, "ewarung --version").returncode == 0
        for path, text in DEVICE_FILES.items():
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        conffiles = _conffiles(root)
        for path in conffiles:
            in_root(root, f"echo '# changed by the technician' >> {path}")

        in_root(root, f"dpkg -i {new}")
        assert _version(root, "ewarung-pos") == _version(root, "ewarung-runtime") != PREVIOUS
        _assert_device_kept(root)
        for path in conffiles:
            assert "changed by the technician" in in_root(root, f"cat {path}").stdout, f"{path} was overwritten"
        assert "/opt/ewarung/venv/bin/python3" in in_root(root, "head -1 /opt/ewarung/venv/bin/ewarung").stdout
        in_root(root, "ewarung config --help >/dev/null")

        in_root(root, "dpkg -r ewarung-pos ewarung-runtime")
        assert in_root(root, "test -e /opt/ewarung/venv", check=False).returncode != 0, "remove left files in the venv"
        _assert_device_kept(root)

        in_root(root, f"dpkg -i {new}")
        _assert_device_kept(root)
        in_root(root, "mkdir -p /var/lib/ewarung-updates && touch /var/lib/ewarung-updates/state.json")

        in_root(root, "dpkg -P ewarung-pos ewarung-runtime")
        assert in_root(root, "dpkg -s ewarung-pos", check=False).returncode != 0
        assert in_root(root, "test -e /var/lib/ewarung-updates", check=False).returncode != 0
        for path in conffiles:
            assert in_root(root, f"test -e {path}", check=False).returncode != 0, f"purge left {path}"
        _assert_device_kept(root)


def _conffiles(root) -> list[str]:
    out = in_root(root, "dpkg-query -W -f '${Conffiles}\\n' ewarung-pos ewarung-runtime").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _version(root, package: str) -> str:
    return in_root(root, f"dpkg-query -W -f '${{Version}}' {package}").stdout


def _assert_device_kept(root) -> None:
    for path, text in DEVICE_FILES.items():
        assert in_root(root, f"cat {path}").stdout == text, f"{path} lost"


def test_offline_bundle_installs_with_no_network(amd64_debs, tmp_path):
    env = {**os.environ, "EWARUNG_DEB_DIR": str(amd64_debs["ewarung-pos"].parent)}
    made = subprocess.run([str(ROOT / "scripts/deb-bundle.sh"), "amd64"], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True).stdout
    bundle = ROOT / made.split()[1]
    with overlay_root(tmp_path) as root:
        shutil.copy(bundle, root / "tmp")
        proc = subprocess.run(["unshare", "--net", "chroot", str(root), "sh", f"/tmp/{bundle.name}"],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "installed. Next: sudo ewarung provision" in proc.stdout
        assert in_root(root, "dpkg-query -W -f '${Status}' ewarung-pos").stdout == "install ok installed"
        verdict = json.loads((root / "var/lib/ewarung-updates/state.json").read_text())
        assert verdict["state"] == "ok" and verdict["version"] == debian_version()  # what the heartbeat reports
        assert len(list((root / "var/lib/ewarung-updates/good").glob("ewarung-*.deb"))) == 2  # kept for a rollback
        assert sorted(p.name for p in (root / "etc/apt/sources.list.d").iterdir()) == sorted(
            p.name for p in Path("/etc/apt/sources.list.d").iterdir()), "the bundle left an apt source behind"
