"""Device replacement: backup on the old device, restore on the new one; no sequence number
reused, acknowledged messages stay acknowledged, unacknowledged ones go out again."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from firmware_config.backup import BackupError, backup, new_backup_key, restore
from tests.conftest import ROOT, run_ewarung
from tests.provision.conftest import make_device

CONFIG = Path("/etc/ewarung/ewarung.toml")
KEY = bytes(range(32))


@pytest.fixture
def key_file(tmp_path) -> Path:
    path = tmp_path / "technician" / "backup.key"
    path.parent.mkdir()
    path.write_text(KEY.hex() + "\n")
    return path


@pytest.fixture
def old_device(tmp_path, trust_keys):
    root = tmp_path / "old"
    dev = make_device(root, trust_keys, sales=3)
    con = sqlite3.connect(dev["db_path"])
    con.execute("UPDATE outbox_message SET state = 'acked', acked_at = 'x' WHERE seq = 1")
    con.execute("UPDATE outbox_message SET state = 'published' WHERE seq = 2")
    con.commit()
    con.close()
    return root, dev


def _db(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(root / "var/lib/ewarung/ewarung.db")


def test_backup_then_restore_on_a_new_device(old_device, tmp_path, key_file):
    old_root, dev = old_device
    archive = tmp_path / "EW-SMD-0042.tar.gz"
    out = run_ewarung("backup", str(archive), "--root", str(old_root), "--key", str(key_file))
    assert out.returncode == 0, out.stderr
    assert "last sequence 3" in out.stdout and "PRIVATE KEY" not in out.stdout
    assert archive.stat().st_mode & 0o777 == 0o600
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert manifest["last_sequence"] == 3 and manifest["outbox"] == {"acked": 1, "published": 1, "queued": 1}

    new_root = tmp_path / "new"
    new_root.mkdir()
    res = run_ewarung("restore", str(archive), "--root", str(new_root), "--key", str(key_file))
    assert res.returncode == 0, res.stderr
    assert "next sequence number 4" in res.stdout
    key = new_root / "etc/ewarung/keys/device.key.pem"
    assert key.read_bytes() == (old_root / "etc/ewarung/keys/device.key.pem").read_bytes()
    assert key.stat().st_mode & 0o777 == 0o600
    con = _db(new_root)
    states = dict(con.execute("SELECT seq, state FROM outbox_message").fetchall())
    assert states == {1: "acked", 2: "queued", 3: "queued"}  # acked stays acked; published goes again
    assert con.execute("SELECT value FROM setting WHERE key = 'restored_from_backup'").fetchone()[0] == manifest["backup_id"]
    kind, ref, data = con.execute("SELECT kind, ref, data FROM journal_entry ORDER BY id DESC LIMIT 1").fetchone()
    assert kind == "device_restored" and ref == manifest["backup_id"] and json.loads(data)["last_sequence"] == 3
    con.close()
    # the restored device sells on with the next number, and the journal still chains
    _sell_once_and_check(new_root, expected_seq=4)
    assert run_ewarung("--config", str(new_root / "etc/ewarung/ewarung.toml"), "journal", "verify", "--database", str(new_root / "var/lib/ewarung/ewarung.db")).returncode == 0


def _sell_once_and_check(root: Path, expected_seq: int) -> None:
    from firmware_config.config import load_config
    from pos.clock import FixedClock
    from pos.db import open_database
    from pos.ledger import Ledger
    from pos.redemption import RedemptionRequest, RedemptionService
    from pos.signing import EcdsaSigner, load_private_key
    from tests.conftest import NOW

    cfg = load_config(root / "etc/ewarung/ewarung.toml")
    db = open_database(root / "var/lib/ewarung/ewarung.db")
    try:
        key = load_private_key((root / "etc/ewarung/keys/device.key.pem").read_bytes())
        svc = RedemptionService(db, Ledger(), cfg.identity(), EcdsaSigner(key, cfg.device.id), FixedClock(NOW), cfg.to_policy())
        from pos.db import Household

        hid = Household.select().where(Household.status == "active").first().id
        result = svc.redeem(RedemptionRequest(hid, "kasir1", {"TAHU": 1}))
        assert result.seq == expected_seq
    finally:
        db.close()


def test_sequence_gap_on_request(old_device, tmp_path):
    old_root, _ = old_device
    archive = tmp_path / "b.tar.gz"
    backup(CONFIG, archive, KEY, old_root)
    new_root = tmp_path / "new"
    info = restore(archive, KEY, new_root, sequence_gap=100)
    assert info.next_sequence == 104
    _sell_once_and_check(new_root, expected_seq=104)


def test_restore_refuses_a_device_with_sales(old_device, tmp_path, trust_keys, key_file):
    old_root, _ = old_device
    archive = tmp_path / "b.tar.gz"
    backup(CONFIG, archive, KEY, old_root)
    busy = tmp_path / "busy"
    make_device(busy, trust_keys, sales=1, device_id="EW-SMD-0099")
    before = (busy / "var/lib/ewarung/ewarung.db").read_bytes()
    out = run_ewarung("restore", str(archive), "--root", str(busy), "--key", str(key_file))
    assert out.returncode == 1 and "already holds 1 sale" in out.stderr
    assert (busy / "var/lib/ewarung/ewarung.db").read_bytes() == before
    assert "EW-SMD-0099" in (busy / "etc/ewarung/ewarung.toml").read_text()


def test_restore_onto_a_freshly_provisioned_device(old_device, tmp_path, trust_keys):
    old_root, _ = old_device
    archive = tmp_path / "b.tar.gz"
    backup(CONFIG, archive, KEY, old_root)
    fresh = tmp_path / "fresh"
    make_device(fresh, trust_keys, sales=0, device_id="EW-SMD-0100")
    info = restore(archive, KEY, fresh)
    assert info.device_id == "EW-SMD-0042" and info.next_sequence == 4
    assert "EW-SMD-0042" in (fresh / "etc/ewarung/ewarung.toml").read_text()


def test_damaged_archive_is_refused(old_device, tmp_path):
    old_root, _ = old_device
    archive = tmp_path / "b.tar.gz"
    backup(CONFIG, archive, KEY, old_root)
    with tarfile.open(archive) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    db = bytearray(members["data/ewarung.db"])
    db[5000] ^= 0xFF
    members["data/ewarung.db"] = bytes(db)
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(BackupError, match="SHA-256"):
        restore(bad, KEY, tmp_path / "new")
    assert not (tmp_path / "new").exists()
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(BackupError, match="cannot read"):
        restore(tmp_path / "junk.tar.gz", KEY, tmp_path / "new")


WRITER = """
import sys, time
from pos.db import open_database, durable_transaction
from pos import journal
db = open_database(sys.argv[1])
print("ready", flush=True)
i = 0
while True:
    with durable_transaction(db):
        journal.append("2026-11-15T02:00:00Z", "load", str(i), {"i": i, "pad": "x" * 2000})
    i += 1
"""


def test_backup_is_consistent_while_the_database_is_written(old_device, tmp_path):
    old_root, dev = old_device
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(dev["db_path"])], stdout=subprocess.PIPE, text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        archives = []
        for n in range(3):
            a = tmp_path / f"live{n}.tar.gz"
            backup(CONFIG, a, KEY, old_root)
            archives.append(a)
    finally:
        proc.kill()
        proc.wait()
    counts = []
    for n, a in enumerate(archives):
        info = restore(a, KEY, tmp_path / f"r{n}")
        con = sqlite3.connect(tmp_path / f"r{n}/var/lib/ewarung/ewarung.db")
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        counts.append(con.execute("SELECT COUNT(*) FROM journal_entry").fetchone()[0])
        con.close()
        assert info.next_sequence == 4
        verify = run_ewarung("journal", "verify", "--database", str(tmp_path / f"r{n}/var/lib/ewarung/ewarung.db"))
        assert verify.returncode == 0, verify.stdout  # every copy is a consistent cut of the chain
    assert counts[-1] > counts[0]  # the writer really was writing during the backups


def test_restore_onto_a_device_with_another_data_dir_and_owners(old_device, tmp_path, trust_keys):
    """The new device keeps its data partition; restored files belong to its service user."""
    from firmware_config.config import load_config
    from firmware_config.provision import Answers, provision

    old_root, _ = old_device
    archive = tmp_path / "b.tar.gz"
    backup(CONFIG, archive, KEY, old_root)
    new = tmp_path / "ro"
    answers = Answers(
        device_id="EW-SMD-0100", shop_id="SMD-ULU-07", shop_name="W", issuer_keys=[trust_keys["issuer"]],
        ledger_key=trust_keys["ledger"], central_key=trust_keys["central"], broker_host="b",
        printer_kind="network", data_dir="/data/ewarung",
    )
    provision(answers, new)
    assert subprocess.run(["systemd-sysusers", f"--root={new}"], capture_output=True).returncode == 0
    uid = int(next(ln for ln in (new / "etc/passwd").read_text().splitlines() if ln.startswith("ewarung:")).split(":")[2])
    info = restore(archive, KEY, new)
    assert info.next_sequence == 4
    cfg = load_config(new / "etc/ewarung/ewarung.toml")
    assert cfg.device.id == "EW-SMD-0042" and str(cfg.data_dir) == "/data/ewarung"
    db = new / "data/ewarung/ewarung.db"
    assert db.stat().st_uid == uid and (new / "etc/ewarung/keys/device.key.pem").stat().st_uid == uid
    assert not (new / "var/lib/ewarung/ewarung.db").exists()


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def _craft(out: Path, members: dict[str, bytes], key: bytes | None = KEY, extra: list[tarfile.TarInfo] = ()) -> Path:
    """An archive as an attacker would write it: `key` MACs the manifest (None keeps the member as given)."""
    import hashlib
    import hmac

    from firmware_config.backup import MAC_CONTEXT

    members = dict(members)
    if key is not None:
        members["manifest.hmac"] = hmac.new(key, MAC_CONTEXT + members["manifest.json"], hashlib.sha256).hexdigest().encode()
    with tarfile.open(out, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)
    return out


def _with_manifest(members: dict[str, bytes], edit) -> dict[str, bytes]:
    manifest = json.loads(members["manifest.json"])
    edit(manifest)
    return {**members, "manifest.json": json.dumps(manifest).encode()}


def _add_file(members: dict[str, bytes], name: str, data: bytes) -> dict[str, bytes]:
    import hashlib

    out = _with_manifest(members, lambda m: m["sha256"].__setitem__(name, hashlib.sha256(data).hexdigest()))
    out[name] = data
    return out


def _link(name: str, kind: bytes, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.fixture
def good_archive(old_device, tmp_path) -> Path:
    archive = tmp_path / "good.tar.gz"
    backup(CONFIG, archive, KEY, old_device[0])
    return archive


@pytest.mark.parametrize(
    "case",
    ["absolute", "dotdot", "dotdot-in-identity", "symlink", "hardlink", "directory", "duplicate", "unknown-folder"],
)
def test_crafted_member_names_are_refused_before_anything_is_written(good_archive, tmp_path, case):
    """Even MAC'd with the right key, a member that could land outside the fixed places is refused."""
    members = _members(good_archive)
    extra: list[tarfile.TarInfo] = []
    if case == "absolute":
        members = _add_file(members, "/etc/cron.d/ewarung", b"* * * * * root sh -c 'id > /tmp/pwned'\n")
    elif case == "dotdot":
        members = _add_file(members, "../../etc/cron.d/ewarung", b"x")
    elif case == "dotdot-in-identity":
        members = _add_file(members, "identity/../../../etc/x.pem", b"x")
    elif case == "symlink":
        extra = [_link("identity/device.crt.pem", tarfile.SYMTYPE, "/etc/shadow")]
    elif case == "hardlink":
        extra = [_link("identity/device.crt.pem", tarfile.LNKTYPE, "/etc/shadow")]
    elif case == "directory":
        extra = [_link("identity/sub", tarfile.DIRTYPE, "")]
    elif case == "duplicate":
        extra_info = tarfile.TarInfo("config/ewarung.toml")
        extra_info.size = 0
        extra = [extra_info]
    else:
        members = _add_file(members, "etc/cron.d/ewarung", b"x")
    crafted = _craft(tmp_path / "crafted.tar.gz", members, extra=extra)
    target = tmp_path / "target"
    with pytest.raises(BackupError, match="refused, nothing was written"):
        restore(crafted, KEY, target)
    assert not target.exists()


def test_an_archive_not_made_with_the_technicians_key_is_refused(good_archive, tmp_path, key_file):
    members = _members(good_archive)
    target = tmp_path / "target"
    cases = {
        "other key": _craft(tmp_path / "k.tar.gz", members, key=b"\x01" * 32),
        "manifest edited after the MAC": _craft(
            tmp_path / "m.tar.gz", _with_manifest(members, lambda m: m.update(last_sequence=1)), key=None
        ),
        "old manifest paths, no MAC": _craft(
            tmp_path / "o.tar.gz",
            _with_manifest(
                {k: v for k, v in members.items() if k != "manifest.hmac"},
                lambda m: m.update(config_path="/etc/cron.d/ewarung", identity_paths={"identity/device.key.pem": "/root/.ssh/authorized_keys"}),
            ),
            key=None,
        ),
    }
    for what, archive in cases.items():
        out = run_ewarung("restore", str(archive), "--root", str(target), "--key", str(key_file))
        assert out.returncode == 1, what
        assert "not authenticated" in out.stderr or "no manifest.json or manifest.hmac" in out.stderr, (what, out.stderr)
        assert not target.exists(), what
    assert run_ewarung("restore", str(good_archive), "--root", str(target)).returncode == 2  # --key is required


def test_restore_writes_only_to_this_installations_places(tmp_path, trust_keys):
    """A config in the archive that names key files elsewhere is restored into the keys directory."""
    root = tmp_path / "old"
    dev = make_device(root, trust_keys, sales=0)
    cfg_path = root / "etc/ewarung/ewarung.toml"
    (root / "etc/cron.d").mkdir(parents=True)
    (root / "etc/ewarung/keys/device.key.pem").rename(root / "etc/cron.d/evil.key.pem")
    cfg_path.write_text(cfg_path.read_text().replace("/etc/ewarung/keys/device.key.pem", "/etc/cron.d/evil.key.pem"))
    archive = tmp_path / "b.tar.gz"
    backup(CONFIG, archive, KEY, root)
    target = tmp_path / "new"
    restore(archive, KEY, target)
    assert not (target / "etc/cron.d").exists()
    assert (target / "etc/ewarung/keys/evil.key.pem").stat().st_mode & 0o777 == 0o600
    text = (target / "etc/ewarung/ewarung.toml").read_text()
    assert "/etc/cron.d" not in text and "/etc/ewarung/keys/evil.key.pem" in text
    assert dev["db_path"].exists() and (target / "var/lib/ewarung/ewarung.db").exists()


def test_new_backup_key_is_private_and_never_overwritten(tmp_path):
    path = tmp_path / "backup.key"
    new_backup_key(path)
    assert path.stat().st_mode & 0o777 == 0o600 and len(bytes.fromhex(path.read_text())) == 32
    before = path.read_text()
    with pytest.raises(BackupError, match="exists already"):
        new_backup_key(path)
    assert path.read_text() == before
