"""Fixtures for the Debian packages: the amd64 build of this tree, and throwaway roots to install it in.

A throwaway root is this machine's own Debian 12 seen through an overlay (writes land in a tmpfs and
vanish at the end), so dpkg, systemd-sysusers and the maintainer scripts run for real in seconds,
with nothing left on the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def need_root_tools(*tools: str) -> None:
    """Skip (saying why) where packages cannot be built or installed: not root, or tools missing."""
    if os.geteuid() != 0:
        pytest.skip("installs packages in an overlay root: needs root")
    gone = [t for t in tools if shutil.which(t) is None]
    if gone:
        pytest.skip(f"missing {', '.join(gone)} (./scripts/bootstrap.sh installs them)")


@pytest.fixture(scope="session")
def amd64_debs(tmp_path_factory) -> dict[str, Path]:
    """The packages `make deb` makes from this tree (EWARUNG_DEB_DIR: use ones already built)."""
    need_root_tools("dpkg-buildpackage", "dh")
    out = Path(os.environ.get("EWARUNG_DEB_DIR", "")) if os.environ.get("EWARUNG_DEB_DIR") else None
    if out is None:
        subprocess.run([str(ROOT / "scripts/deb-build.sh"), "amd64"], check=True, cwd=ROOT, capture_output=True)
        out = ROOT / "dist/deb/amd64"
    version = debian_version()
    debs = {name: out / f"{name}_{version}_amd64.deb" for name in ("ewarung-runtime", "ewarung-pos", "ewarung-central")}
    for path in debs.values():
        assert path.exists(), f"{path} was not built"
    return debs


def debian_version() -> str:
    """The version at the top of packaging/debian/changelog, i.e. the one this tree builds."""
    first = (ROOT / "packaging/debian/changelog").read_text().splitlines()[0]
    return first.split("(", 1)[1].split(")", 1)[0]


def repack(deb: Path, version: str, dest: Path) -> Path:
    """The same package under another version: an "earlier release" to upgrade from, in seconds."""
    tree = dest / f"{deb.stem}-tree"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    control = tree / "DEBIAN/control"
    lines = [f"Version: {version}" if ln.startswith("Version:") else ln for ln in control.read_text().splitlines()]
    control.write_text("\n".join(lines).replace(f"(= {debian_version()})", f"(= {version})") + "\n")
    out = dest / f"{deb.name.split('_')[0]}_{version}_amd64.deb"
    subprocess.run(["dpkg-deb", "-Zgzip", "-z1", "-b", str(tree), str(out)], check=True, capture_output=True)
    shutil.rmtree(tree)
    return out


@contextmanager
def overlay_root(tmp: Path) -> Iterator[Path]:
    """This machine's root, writable, with every write thrown away on exit."""
    layer, root = tmp / "layer", tmp / "root"
    layer.mkdir()
    root.mkdir()
    mounted: list[Path] = []
    try:
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(layer)], check=True)
        mounted.append(layer)
        (layer / "up").mkdir()
        (layer / "work").mkdir()
        opts = f"lowerdir=/,upperdir={layer}/up,workdir={layer}/work"
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(root)], check=True)
        mounted.append(root)
        subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
        mounted.append(root / "proc")
        subprocess.run(["mount", "--bind", "/dev", str(root / "dev")], check=True)
        mounted.append(root / "dev")
        yield root
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", "-l", str(path)], check=False)


def in_root(root: Path, script: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs a shell script inside the root, as the technician's shell would, never asking anything."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"}
    proc = subprocess.run(["chroot", str(root), "/bin/sh", "-ec", script], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"in root failed ({proc.returncode}):\n{script}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc
