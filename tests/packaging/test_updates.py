"""Fleet updates end to end on a Debian 12 root: the city publishes a release to its signed apt
repository, the device takes it (Debian's unattended-upgrades, through the package's apt hooks),
the health check keeps it; a broken release is taken the same way, fails its check, and the device
goes back to the last good release, pins the bad one away and says so in what the heartbeat reports.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from firmware_config import updates
from tests.packaging.conftest import ROOT, debian_version, in_root, overlay_root, repack

pytestmark = pytest.mark.slow

PREVIOUS = "0.0.9-1"
BROKEN = "0.1.1-1"


def _gpg_key(home) -> tuple[str, bytes]:
    home.mkdir(mode=0o700)
    env = {"GNUPGHOME": str(home), "PATH": "/usr/bin:/bin"}
    run = functools.partial(subprocess.run, env=env, check=True, capture_output=True)
    run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "E-Warung test releases", "ed25519", "sign", "never"])
    fpr = run(["gpg", "--with-colons", "--list-secret-keys"], text=True).stdout
    key_id = next(line.split(":")[9] for line in fpr.splitlines() if line.startswith("fpr"))
    return key_id, run(["gpg", "--armor", "--export", key_id]).stdout


def _broken(deb, dest):
    """The runtime of a release whose program cannot start: what a bad build looks like on a device."""
    tree = dest / "broken-tree"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    init = tree / "opt/ewarung/venv/lib/python3.11/site-packages/pos/__init__.py"
    init.write_text('raise SystemExit("this release is broken")\n')
    out = dest / deb.name
    subprocess.run(["dpkg-deb", "-Zgzip", "-z1", "-b", str(tree), str(out)], check=True, capture_output=True)
    shutil.rmtree(tree)
    return out


@pytest.fixture
def repository(tmp_path):
    """The city's repository (scripts/apt-repo.sh, reprepro) served on loopback."""
    home = tmp_path / "gnupg"
    key_id, public = _gpg_key(home)
    repo = tmp_path / "repo"
    env = {"GNUPGHOME": str(home), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
    publish = functools.partial(subprocess.run, env=env, check=True, capture_output=True, text=True)
    publish([str(ROOT / "scripts/apt-repo.sh"), "init", str(repo), key_id])
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(repo / "public"))
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}", "key": public,
           "publish": lambda *debs: publish([str(ROOT / "scripts/apt-repo.sh"), "publish", str(repo), *map(str, debs)])}
    server.shutdown()


def test_release_reaches_device_and_broken_release_rolls_back(amd64_debs, repository, tmp_path):
    pair = [amd64_debs["ewarung-runtime"], amd64_debs["ewarung-pos"]]
    old = [repack(d, PREVIOUS, tmp_path) for d in pair]
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    bad = [_broken(repack(pair[0], BROKEN, bad_dir), tmp_path), repack(pair[1], BROKEN, bad_dir)]
    repository["publish"](*pair)
    with overlay_root(tmp_path) as root:
        (root / "tmp/old").mkdir()
        for deb in old:
            shutil.copy(deb, root / "tmp/old")
        in_root(root, "dpkg -i /tmp/old/*.deb")
        in_root(root, "apt-get -q -y install --no-install-recommends unattended-upgrades")  # from Debian's mirror
        # what `ewarung provision --update-repo URL --update-key FILE` writes (tests/provision checks the flags)
        for path, content, _mode, _what in updates.update_files(repository["url"], repository["key"], updates.parse_window("22:00-05:00")):
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content if isinstance(content, bytes) else content.encode())
        for other in (root / "etc/apt/sources.list.d").iterdir():
            if other.name != "ewarung.sources":
                other.unlink()  # the device sees only the city's repository here (no Debian mirror needed)
        # what the apt-daily-upgrade timer runs in the window (apt.systemd.daily: update, then unattended-upgrade)
        take = "apt-get -q update && unattended-upgrade -v"

        in_root(root, take)
        version = debian_version()
        assert _installed(root) == version
        in_root(root, "/usr/lib/ewarung/update-check")
        verdict = json.loads((root / "var/lib/ewarung-updates/state.json").read_text())
        assert verdict["state"] == "ok" and verdict["version"] == version
        assert sorted(p.name for p in (root / "var/lib/ewarung-updates/good").iterdir()) == sorted(p.name for p in pair)

        repository["publish"](*bad)
        in_root(root, take)
        assert _installed(root) == BROKEN
        check = in_root(root, "/usr/lib/ewarung/update-check", check=False)
        assert check.returncode == 1 and "NOT healthy" in check.stderr, check.stdout + check.stderr
        assert _installed(root) == version, "the device did not go back to the last good release"
        verdict = json.loads((root / "var/lib/ewarung-updates/state.json").read_text())
        assert verdict["state"] == "rolled_back" and verdict["rolled_back_from"] == BROKEN
        assert "broken" in verdict["reason"]
        label = in_root(root, "EWARUNG_UPDATE_DIR=/var/lib/ewarung-updates /opt/ewarung/venv/bin/python3 -c "
                              "'from firmware_config.updates import software_label; print(software_label(\"x\"))'").stdout
        assert label.strip() == f"{version} (rolled back from {BROKEN})"

        in_root(root, take)  # the next night: the bad release is pinned away, nothing changes
        assert _installed(root) == version


def _installed(root) -> str:
    return in_root(root, "dpkg-query -W -f '${Version}' ewarung-pos").stdout
