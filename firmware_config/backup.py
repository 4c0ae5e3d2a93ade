"""Device replacement: `ewarung backup` and `ewarung restore`.

A backup is one tar.gz holding a consistent copy of the database (SQLite's online backup API,
safe while the counter app and sync run), the device configuration and the device identity
(private key, CSR, certificate) and trust anchors, plus `manifest.json` with a SHA-256 of every
file, the device id and the last sequence number used, and `manifest.hmac`: an HMAC-SHA256 of the
manifest under the technician's backup key. The archive holds the device's private key: it is
written mode 0600 and belongs on the technician's encrypted stick, nowhere else; the backup key is
kept apart from the archives (a stick holding both lets its finder forge a restore).

Restore runs as root, so the archive decides nothing about where files go: the config goes to
this installation's config path, every identity file into its keys directory under its own base
name (the restored config is rewritten to point there), the database into this device's data
directory. Before anything is written it checks the HMAC with the technician's key, refuses any
member that is not a regular file with one of the expected names (absolute paths, `..`, links,
devices, duplicates), and checks every SHA-256. Restore refuses to overwrite a database that
already has sales, installs identity and database, keeps the device sequence so numbers
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
import hmac
import io
import json
import os
import re
import secrets
import sqlite3
import tarfile
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from firmware_config.config import Config, load_config
from firmware_config.fsops import Changes, write_atomic
from firmware_config.units import DEFAULT_DATA_DIR

CONFIG_PATH = "/etc/ewarung/ewarung.toml"

FORMAT = 2
RESTORED_FROM = "restored_from_backup"
MANIFEST = "manifest.json"
MAC = "manifest.hmac"
CONFIG_MEMBER = "config/ewarung.toml"
DB_MEMBER = "data/ewarung.db"
MAC_CONTEXT = b"ewarung-backup-v2\n"
KEY_BYTES = 32
_IDENTITY_MEMBER = re.compile(r"^identity/[A-Za-z0-9][A-Za-z0-9._-]{0,63}\.pem$")


class BackupError(ValueError):
    """The backup or restore cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class BackupInfo:
    """What a backup wrote, for the technician to note: the archive, the device, its last sequence
    number, the outbox by state and every member's SHA-256."""

    path: Path
    backup_id: str
    device_id: str
    last_sequence: int
    outbox: dict
    files: dict


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_backup_key(path: Path) -> None:
    """Make the technician's backup key once; never overwrite one, or older archives could not be restored."""
    path = Path(path)
    if path.exists():
        raise BackupError(f"{path} exists already: keep using it (or choose another file name)")
    write_atomic(path, (secrets.token_hex(KEY_BYTES) + "\n").encode(), 0o600)


def load_backup_key(path: Path) -> bytes:
    """The technician's key as bytes; a short or garbled key is refused, not stretched."""
    try:
        text = Path(path).read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except FileNotFoundError:
        raise BackupError(f"{path}: no such backup key; make one with `ewarung backup --new-key --key {path} ...`") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BackupError(f"{path}: not an ewarung backup key ({exc}); it holds {KEY_BYTES * 2} hex digits") from None
    if len(key) < KEY_BYTES:
        raise BackupError(f"{path}: a backup key holds {KEY_BYTES * 2} hex digits, this one {len(text)}")
    return key


def _mac(key: bytes, manifest: bytes) -> str:
    return hmac.new(key, MAC_CONTEXT + manifest, hashlib.sha256).hexdigest()


def _identity_files(cfg: Config) -> list[Path]:
    paths = [cfg.keys.device_key, *cfg.keys.issuer_public_keys, cfg.keys.ledger_public_key, cfg.keys.central_public_key]
    paths += [p for p in (cfg.mqtt.ca_file, cfg.mqtt.cert_file, cfg.mqtt.key_file) if p is not None]
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


def backup(config_path: Path, out: Path, key: bytes, root: Path = Path("/"), now: datetime | None = None) -> BackupInfo:
    """Write the archive, MAC'd with the technician's key so a restore can tell it from a crafted one."""
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
        files[DB_MEMBER] = snap.read_bytes()
    files[CONFIG_MEMBER] = ch.host(config_path).read_bytes()
    identity = {}
    for p in _identity_files(cfg):
        host = ch.host(p)
        if not host.exists():
            raise BackupError(f"{p} is missing: run `ewarung doctor`; a backup without the identity cannot replace the device")
        name = f"identity/{p.name}"
        if not _IDENTITY_MEMBER.match(name) or name in files:
            raise BackupError(f"{p}: identity files are restored into the keys directory by their file name, and this "
                              "name is not usable there (two files share it, or it is not NAME.pem); rename it first")
        files[name] = host.read_bytes()
        identity[name] = str(p)
    backup_id = f"{cfg.device.id}-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    manifest = {
        "format": FORMAT,
        "backup_id": backup_id,
        "device_id": cfg.device.id,
        "shop_id": cfg.device.shop_id,
        "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "last_sequence": last_seq,
        "outbox": outbox,
        "identity_from": identity,
        "sha256": {name: _sha256(data) for name, data in files.items()},
    }
    manifest_bytes = json.dumps(manifest, indent=2).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in [(MANIFEST, manifest_bytes), (MAC, _mac(key, manifest_bytes).encode()), *files.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o600
            info.mtime = int(now.timestamp())
            tar.addfile(info, io.BytesIO(data))
    write_atomic(Path(out), buf.getvalue(), 0o600)
    return BackupInfo(Path(out), backup_id, cfg.device.id, last_seq, outbox, manifest["sha256"])


def _member_problem(m: tarfile.TarInfo, seen: set[str]) -> str | None:
    """Why a member may not be restored, or None: only regular files with the names a backup writes."""
    if not m.isreg():
        return "is a link, directory or device, not a regular file"
    if m.name in seen:
        return "appears twice"
    if m.name not in (MANIFEST, MAC, CONFIG_MEMBER, DB_MEMBER) and not _IDENTITY_MEMBER.match(m.name):
        return "is not a name a backup writes (absolute, `..`, or outside config/, data/, identity/)"
    return None


def read_archive(path: Path, key: bytes) -> tuple[dict, dict[str, bytes]]:
    """Every member in memory, after the name, MAC and SHA-256 checks: nothing is written before this returns."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            members: dict[str, bytes] = {}
            for m in tar.getmembers():
                problem = _member_problem(m, set(members))
                if problem:
                    raise BackupError(f"{path}: entry {m.name!r} {problem}; refused, nothing was written")
                members[m.name] = tar.extractfile(m).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"{path}: cannot read the archive ({exc}); copy it again from the technician's stick") from None
    if MANIFEST not in members or MAC not in members:
        raise BackupError(f"{path}: no manifest.json or manifest.hmac; this is not an ewarung backup of this version")
    manifest_bytes = members.pop(MANIFEST)
    if not hmac.compare_digest(members.pop(MAC).strip(), _mac(key, manifest_bytes).encode()):
        raise BackupError(f"{path}: the archive is not authenticated by this backup key (made with another key, or "
                          "altered since); refused, nothing was written")
    manifest = json.loads(manifest_bytes)
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: backup format {manifest.get('format')} is not supported by this version")
    sums = manifest["sha256"]
    if set(sums) != set(members) or not {CONFIG_MEMBER, DB_MEMBER} <= set(members):
        raise BackupError(f"{path}: files do not match the manifest (missing or extra entries)")
    for name, data in members.items():
        if _sha256(data) != sums[name]:
            raise BackupError(f"{path}: {name} is damaged (SHA-256 mismatch); use another copy of the backup")
    return manifest, members


def _installed_paths(cfg: Config, keys_dir: Path, members: dict[str, bytes]) -> Config:
    """The backed-up config, with every key path moved into this installation's keys directory."""

    def moved(p: Path | None) -> Path | None:
        if p is None:
            return None
        name = f"identity/{cfg.key_path(p).name}"
        if name not in members:
            raise BackupError(f"the backed-up config names {p}, which the archive does not hold")
        return keys_dir / cfg.key_path(p).name

    k, m = cfg.keys, cfg.mqtt
    keys = k.replace(device_key=moved(k.device_key), issuer_public_keys=[moved(p) for p in k.issuer_public_keys],
                     ledger_public_key=moved(k.ledger_public_key), central_public_key=moved(k.central_public_key))
    mqtt = m.replace(ca_file=moved(m.ca_file), cert_file=moved(m.cert_file), key_file=moved(m.key_file))
    return cfg.replace(keys=keys, mqtt=mqtt)


@dataclass(frozen=True)
class RestoreInfo:
    """What a restore did, for the technician to check: which backup and device, the next sequence
    number, and how many outbox messages go out again or stay acknowledged."""

    backup_id: str
    device_id: str
    next_sequence: int
    requeued: int
    acked: int


def restore(
    archive: Path,
    key: bytes,
    root: Path = Path("/"),
    sequence_gap: int = 0,
    now: datetime | None = None,
    config_path: str = CONFIG_PATH,
) -> RestoreInfo:
    """Install a backup at this installation's fixed places, after checking it end to end."""
    if sequence_gap < 0:
        raise BackupError("--sequence-gap must be 0 or more")
    from firmware_config.config import ConfigError, parse_config
    from firmware_config.provision import _uid_gid, render_config_from

    manifest, members = read_archive(Path(archive), key)
    ch = Changes(Path(root))
    owner = _uid_gid(ch)
    group = (0, owner[1]) if owner else None
    try:
        backed_up = parse_config(members[CONFIG_MEMBER].decode("utf-8"), "config in the backup")
    except (ConfigError, UnicodeDecodeError) as exc:
        raise BackupError(f"{archive}: the config in the backup is not valid: {exc}") from None
    if backed_up.demo is not None:
        raise BackupError(f"{archive}: the config in the backup is a demo one; refused")
    data_dir = Path(DEFAULT_DATA_DIR)
    target_config = ch.host(config_path)
    if target_config.exists():
        # The new device was provisioned already: its database goes where its units expect it.
        with contextlib.suppress(ConfigError):  # an invalid config there is replaced anyway
            data_dir = load_config(target_config).data_dir
    keys_dir = Path(config_path).parent / "keys"
    config_text = render_config_from(_installed_paths(backed_up, keys_dir, members).with_data_dir(data_dir))
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
    ch.directory(keys_dir.parent, 0o755)
    ch.directory(keys_dir, 0o750, group)
    ch.file(config_path, config_text, 0o640, group, what="device config")
    for name, data in members.items():
        if not name.startswith("identity/"):
            continue
        private = name.endswith(".key.pem")
        ch.file(keys_dir / name.removeprefix("identity/"), data, 0o600 if private else 0o644, owner if private else None, what="identity")
    ch.directory(data_dir, 0o750, owner)
    for suffix in ("-wal", "-shm"):
        side = Path(str(target_db) + suffix)
        if side.exists():
            side.unlink()
    tmp = target_db.with_name(".ewarung.db.restoring")
    write_atomic(tmp, members[DB_MEMBER], 0o640, owner)
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
