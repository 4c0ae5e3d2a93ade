"""One way to change files, so provisioning is idempotent and `--dry-run` is honest.

Every write goes through `Changes`: it compares the wanted content and mode with what is on
disk and records "unchanged", "would change" (dry run) or "changed". A second run of the same
provisioning reports nothing changed. Paths are absolute on the device; with a `root`
(tests, image builds) they are placed under that directory instead.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

UNCHANGED = "unchanged"
WOULD_CHANGE = "would change"
CHANGED = "changed"


@dataclass
class Change:
    """One line of the provisioning report: a path, what happened to it, and what it is."""

    path: str
    status: str
    what: str


@dataclass
class Changes:
    """Every write of a provisioning run goes through here, so a
    dry run reports exactly what a real run would change."""

    root: Path = Path("/")
    dry_run: bool = False
    items: list[Change] = field(default_factory=list)

    # --- paths ---------------------------------------------------------------------------
    def host(self, device_path: str | Path) -> Path:
        """Where a device path lives on this machine (under root when provisioning a tree)."""
        p = Path(device_path)
        if not p.is_absolute():
            raise ValueError(f"{p}: device paths must be absolute")
        return self.root / p.relative_to("/") if self.root != Path("/") else p

    @property
    def real_root(self) -> bool:
        """Whether this run provisions the running system itself, where
        users are created, services reloaded and ownership applied."""
        return self.root == Path("/")

    # --- recording -----------------------------------------------------------------------
    def _record(self, path: str | Path, differs: bool, what: str) -> str:
        status = (WOULD_CHANGE if self.dry_run else CHANGED) if differs else UNCHANGED
        self.items.append(Change(str(path), status, what))
        return status

    @property
    def changed(self) -> list[Change]:
        """The entries that changed (or would, in a dry run), for the run's summary."""
        return [c for c in self.items if c.status != UNCHANGED]

    def note(self, path: str, status: str, what: str) -> None:
        """Record an outcome decided without a write (a dry run's files that wait on the key)."""
        self.items.append(Change(path, status, what))

    # --- operations ----------------------------------------------------------------------
    def directory(self, device_path: str | Path, mode: int = 0o755, owner: tuple[int, int] | None = None) -> str:
        """Make a directory, or fix its mode and owner, when it is missing or differs."""
        target = self.host(device_path)
        differs = not target.is_dir()
        if not differs:
            st = target.stat()
            differs = stat.S_IMODE(st.st_mode) != mode or (
                owner is not None and (st.st_uid, st.st_gid) != owner
            )
        status = self._record(device_path, differs, f"directory mode {mode:04o}")
        if status == CHANGED:
            target.mkdir(parents=True, exist_ok=True)
            os.chmod(target, mode)
            if owner is not None:
                os.chown(target, *owner)
        return status

    def file(
        self,
        device_path: str | Path,
        content: bytes | str,
        mode: int = 0o644,
        owner: tuple[int, int] | None = None,
        what: str = "file",
    ) -> str:
        """Write `content` atomically (temp file, fsync, rename) if it or the mode differs."""
        data = content.encode("utf-8") if isinstance(content, str) else content
        target = self.host(device_path)
        differs = True
        if target.is_file() and not target.is_symlink():
            st = target.stat()
            differs = (
                target.read_bytes() != data
                or stat.S_IMODE(st.st_mode) != mode
                or (owner is not None and (st.st_uid, st.st_gid) != owner)
            )
        status = self._record(device_path, differs, f"{what} mode {mode:04o}")
        if status == CHANGED:
            write_atomic(target, data, mode, owner)
        return status

    def symlink(self, device_path: str | Path, points_to: str, what: str = "symlink") -> str:
        """Point a symlink (systemd's enable links) at `points_to`, replacing whatever was there."""
        target = self.host(device_path)
        differs = not (target.is_symlink() and os.readlink(target) == points_to)
        status = self._record(device_path, differs, f"{what} -> {points_to}")
        if status == CHANGED:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.exists():
                target.unlink()
            os.symlink(points_to, target)
        return status

    def keep_if_present(self, device_path: str | Path, what: str, generate) -> str:
        """Create a file once with `generate()` (bytes); never replace an existing one (keys)."""
        target = self.host(device_path)
        if target.exists():
            return self._record(device_path, False, what)
        status = self._record(device_path, True, what)
        if status == CHANGED:
            content, mode = generate()
            write_atomic(target, content, mode)
        return status


def write_atomic(target: Path, data: bytes, mode: int, owner: tuple[int, int] | None = None) -> None:
    """Write a file so a power cut leaves the old or the new content,
    never a torn one: temp file, fsync, rename, directory fsync."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        os.fchmod(fd, mode)
        if owner is not None:
            os.fchown(fd, *owner)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def ensure_mode(changes: Changes, device_path: str | Path, mode: int, owner: tuple[int, int] | None = None) -> str:
    """Fix the mode (and owner) of an existing file we must not rewrite (a private key)."""
    target = changes.host(device_path)
    if not target.exists():
        return changes._record(device_path, False, f"mode {mode:04o} (file absent)")
    st = target.stat()
    differs = stat.S_IMODE(st.st_mode) != mode or (owner is not None and (st.st_uid, st.st_gid) != owner)
    status = changes._record(device_path, differs, f"mode {mode:04o}")
    if status == CHANGED:
        os.chmod(target, mode)
        if owner is not None:
            os.chown(target, *owner)
    return status
