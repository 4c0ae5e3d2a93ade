"""Device replacement: `ewarung backup` and `ewarung restore`.

A backup is one tar.gz holding a consistent copy of the database (SQLite's online backup API,
safe while the counter app and sync run), the device configuration and the device identity
(private key, CSR, certificate) and trust anchors, plus `manifest.json` with a SHA-256 of every
file, the device id and the last sequence number used. The archive holds the device's private
key: it is written mode 0600 and belongs on the technician's encrypted stick, nowhere else.

Restore (on the replacement device) refuses to overwrite a database that already has sales,
checks every SHA-256, installs identity and database, keeps the device sequence so numbers
continue (never reused), marks the database as restored (a setting and a journal entry), and
puts outbox messages that were published but not acknowledged back in the queue. Acknowledged
messages stay acknowledged; the city de-duplicates by message id, so nothing counts twice.

The old device must not run again after the backup (see docs/technician.md): if it might have
made sales after the backup, `--sequence-gap N` starts the new device N numbers later so no
number is used twice; the city then sees the gap, which the restore journal entry explains.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sqlite3
import tarfile
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from firmware_config.config import Config, load_config
from firmware_config.fsops import Changes, write_atomic

FORMAT = 1
RESTORED_FROM = "restored_from_backup"


class BackupError(ValueError):
    """The backup or restore cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    backup_id: str
    device_id: str
    last_sequence: int
    outbox: dict
    files: dict


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _identity_files(cfg: Config) -> list[Path]:
    paths = [cfg.keys.device_key, *cfg.keys.issuer_public_keys, cfg.keys.ledger_public_key, cfg.keys.central_public_key]
    paths += [p for p in (cfg.mqtt.ca_file, cfg.mqtt.cert_file) if p is not None]
    key = cfg.key_path(cfg.keys.device_key)
    for extra in ("device.csr.pem", "device.pub.pem"):
        if (key.parent / extra).exists():
            paths.append(key.parent / extra)
    out = []
    for p in paths:
        full = cfg.key_path(p)
        if full not in out:
            out.append(full)
    return out


def snapshot_database(db_path: Path, dest: Path) -> None:
    """A consistent copy while writers run (sqlite3 backup API, pages copied under a read lock)."""
    src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(dest)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()


def backup(config_path: Path, out: Path, root: Path = Path("/"), now: datetime | None = None) -> BackupInfo:
    ch = Changes(Path(root))
    config_path = Path(config_path)
    cfg = load_config(ch.host(config_path))
    if cfg.demo is not None:
        raise BackupError("this is the DEMO configuration: there is no device identity to move")
    db_path = ch.host(cfg.database_path)
    if not db_path.exists():
        raise BackupError(f"{cfg.database_path} does not exist: nothing to back up")
    now = now or datetime.now(UTC)
    files: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        snap = Path(tmp) / "ewarung.db"
        snapshot_database(db_path, snap)
        con = sqlite3.connect(snap)
        try:
            if con.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise BackupError("the database copy fails PRAGMA integrity_check: run `ewarung doctor` first")
            row = con.execute("SELECT value FROM setting WHERE key = 'device_seq'").fetchone()
            last_seq = int(row[0]) if row else 0
            outbox = dict(con.execute("SELECT state, COUNT(*) FROM outbox_message GROUP BY state").fetchall())
        finally:
            con.close()
        files["data/ewarung.db"] = snap.read_bytes()
    files["config/ewarung.toml"] = ch.host(config_path).read_bytes()
    identity = {}
    for p in _identity_files(cfg):
        host = ch.host(p)
        if not host.exists():
            raise BackupError(f"{p} is missing: run `ewarung doctor`; a backup without the identity cannot replace the device")
        name = f"identity/{p.name}"
        files[name] = host.read_bytes()
        identity[name] = str(p)
    backup_id = f"{cfg.device.id}-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    manifest = {
        "format": FORMAT,
        "backup_id": backup_id,
        "device_id": cfg.device.id,
        "shop_id": cfg.device.shop_id,
        "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config_path": str(config_path),
        "data_dir": str(cfg.data_dir),
        "last_sequence": last_seq,
        "outbox": outbox,
        "identity_paths": identity,
        "sha256": {name: _sha256(data) for name, data in files.items()},
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in [("manifest.json", json.dumps(manifest, indent=2).encode()), *files.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o600
            info.mtime = int(now.timestamp())
            tar.addfile(info, io.BytesIO(data))
    write_atomic(Path(out), buf.getvalue(), 0o600)
    return BackupInfo(Path(out), backup_id, cfg.device.id, last_seq, outbox, manifest["sha256"])


def read_archive(path: Path) -> tuple[dict, dict[str, bytes]]:
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = {}
            for m in tar.getmembers():
                if not m.isfile() or m.name.startswith("/") or ".." in m.name.split("/"):
                    raise BackupError(f"{path}: unexpected entry {m.name!r}; this is not an ewarung backup")
                members[m.name] = tar.extractfile(m).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"{path}: cannot read the archive ({exc}); copy it again from the technician's stick") from None
    if "manifest.json" not in members:
        raise BackupError(f"{path}: no manifest.json; this is not an ewarung backup")
    manifest = json.loads(members.pop("manifest.json"))
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: backup format {manifest.get('format')} is not supported by this version")
    sums = manifest["sha256"]
    if set(sums) != set(members):
        raise BackupError(f"{path}: files do not match the manifest (missing or extra entries)")
    for name, data in members.items():
        if _sha256(data) != sums[name]:
            raise BackupError(f"{path}: {name} is damaged (SHA-256 mismatch); use another copy of the backup")
    return manifest, members


@dataclass(frozen=True)
class RestoreInfo:
    backup_id: str
    device_id: str
    next_sequence: int
    requeued: int
    acked: int


def restore(
    archive: Path, root: Path = Path("/"), sequence_gap: int = 0, now: datetime | None = None
) -> RestoreInfo:
    if sequence_gap < 0:
        raise BackupError("--sequence-gap must be 0 or more")
    from firmware_config.config import ConfigError, parse_config
    from firmware_config.provision import _uid_gid, render_config_from

    manifest, members = read_archive(Path(archive))
    ch = Changes(Path(root))
    owner = _uid_gid(ch)
    group = (0, owner[1]) if owner else None
    config_text = members["config/ewarung.toml"]
    data_dir = Path(manifest["data_dir"])
    target_config = ch.host(manifest["config_path"])
    if target_config.exists():
        # The new device was provisioned already: its database goes where its units expect it.
        with contextlib.suppress(ConfigError):  # an invalid config there is replaced anyway
            data_dir = load_config(target_config).data_dir
        if data_dir != Path(manifest["data_dir"]):
            old = parse_config(config_text.decode("utf-8"), "config in the backup")
            moved = old.with_data_dir(data_dir)
            config_text = render_config_from(moved).encode("utf-8")
    target_db = ch.host(data_dir / "ewarung.db")
    if target_db.exists():
        con = sqlite3.connect(f"file:{target_db}?mode=ro", uri=True)
        try:
            try:
                sales = con.execute("SELECT COUNT(*) FROM redemption").fetchone()[0]
            except sqlite3.OperationalError:
                sales = 0
        finally:
            con.close()
        if sales:
            raise BackupError(
                f"{data_dir / 'ewarung.db'} already holds {sales} sale(s): restore only onto a new or wiped device "
                "(if this IS the device to replace, take its own backup instead)"
            )
    now = now or datetime.now(UTC)
    # Identity and config first (atomic writes), then the database.
    ch.directory(Path(manifest["config_path"]).parent, 0o755)
    ch.file(manifest["config_path"], config_text, 0o640, group, what="device config")
    for name, device_path in manifest["identity_paths"].items():
        private = device_path.endswith(".key.pem")
        ch.file(device_path, members[name], 0o600 if private else 0o644, owner if private else None, what="identity")
    ch.directory(data_dir, 0o750, owner)
    for suffix in ("-wal", "-shm"):
        side = Path(str(target_db) + suffix)
        if side.exists():
            side.unlink()
    tmp = target_db.with_name(".ewarung.db.restoring")
    write_atomic(tmp, members["data/ewarung.db"], 0o640, owner)
    con = sqlite3.connect(tmp)
    try:
        requeued = con.execute(
            "UPDATE outbox_message SET state = 'queued', last_error = 'requeued after restore' WHERE state = 'published'"
        ).rowcount
        acked = con.execute("SELECT COUNT(*) FROM outbox_message WHERE state = 'acked'").fetchone()[0]
        con.commit()
    finally:
        con.close()
    os.replace(tmp, target_db)
    from pos import journal, settings
    from pos.clock import iso
    from pos.db import durable_transaction, open_database

    db = open_database(target_db)
    try:
        with durable_transaction(db):
            last = settings.last_sequence()
            if last != manifest["last_sequence"]:
                raise BackupError("the restored database's sequence does not match the manifest; the backup is inconsistent")
            if sequence_gap:
                settings.put(settings.DEVICE_SEQUENCE, str(last + sequence_gap))
            settings.put(RESTORED_FROM, manifest["backup_id"])
            journal.append(
                iso(now),
                "device_restored",
                manifest["backup_id"],
                {
                    "from_device": manifest["device_id"],
                    "backup_created_at": manifest["created_at"],
                    "last_sequence": last,
                    "sequence_gap": sequence_gap,
                    "requeued_outbox": requeued,
                },
            )
            next_seq = settings.last_sequence() + 1
    finally:
        db.close()
    if owner is not None:  # we ran as root: the services run as the service user
        for p in (target_db, Path(f"{target_db}-wal"), Path(f"{target_db}-shm")):
            if p.exists():
                os.chown(p, *owner)
    return RestoreInfo(manifest["backup_id"], manifest["device_id"], next_seq, requeued, acked)
