"""`ewarung doctor`: one check per function, each returning (name, ok, message with the fix).

Checks: configuration, keys and their permissions, data directory, database integrity
(`PRAGMA integrity_check`) and the journal's hash chain, card reader, printer, broker
reachability and TLS, clock sanity (ledger expiry needs a sane clock), free disk space.
Hardware checks look at what exists without the hardware adapters: the pcscd socket and the
reader list when pyscard is installed; the printer's USB ids in sysfs, its serial device, or its
TCP port; each message says what was checked.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import sqlite3
import ssl
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from firmware_config.config import Config, ConfigError, load_config
from hardware.card.virtual_readers import is_virtual, vpcd_installed

PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
MIN_FREE_BYTES = 200 * 1024 * 1024
EARLIEST_SANE = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report: `ok` false is a fault to fix (the message says how), `warn` an
    ok worth a look (demo, lab or test settings, or a check that could not see everything)."""

    name: str
    ok: bool
    message: str
    warn: bool = False


def check_config(path: str | Path | None) -> tuple[Check, Config | None]:
    """Load the configuration first: every other check needs it, so a bad file stops the doctor there."""
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        return Check("config", False, f"{exc}"), None
    if cfg.demo is not None:
        return Check("config", True, f"{path or 'built-in'}: DEMO configuration (sample city, demo keys)", warn=True), cfg
    return Check("config", True, f"{path or os.environ.get('EWARUNG_CONFIG')}: valid (device {cfg.device.id})"), cfg


def check_keys(cfg: Config) -> Check:
    """The device key (present, private, loadable) and every trust anchor: without them nothing verifies or signs."""
    from firmware_config import identity

    problems = []
    key = cfg.key_path(cfg.keys.device_key)
    if not key.exists():
        problems.append(f"device key {key} is missing: run `ewarung provision`, or `ewarung restore` on a replacement device")
    else:
        mode = stat.S_IMODE(key.stat().st_mode)
        if mode & 0o077:
            problems.append(f"device key {key} has mode {mode:04o}, readable by others: run `chmod 600 {key}` (and ask the city whether to replace the key)")
        try:
            identity.load_private_key(key.read_bytes())
        except (ValueError, OSError) as exc:
            problems.append(f"device key {key} cannot be loaded ({exc}): restore it from the backup, or re-provision and register the new key with the city")
    anchors = [("card issuer", p) for p in cfg.keys.issuer_public_keys]
    anchors += [("ledger signer", cfg.keys.ledger_public_key), ("city", cfg.keys.central_public_key)]
    for role, rel in anchors:
        path = cfg.key_path(rel)
        try:
            identity.load_public_key_pem(path.read_bytes())
        except FileNotFoundError:
            problems.append(f"{role} key {path} is missing: install it with `ewarung provision --{'issuer' if role == 'card issuer' else 'ledger' if role == 'ledger signer' else 'central'}-key FILE`")
        except (ValueError, OSError) as exc:
            problems.append(f"{role} key {path} is not a P-256 public key ({exc}): install the right file from the city")
    for what, p in (("broker CA", cfg.mqtt.ca_file), ("device certificate", cfg.mqtt.cert_file)):
        if p is not None and not cfg.key_path(p).exists():
            problems.append(f"{what} {cfg.key_path(p)} is missing: install it with `ewarung provision`")
    if problems:
        return Check("keys", False, "; ".join(problems))
    return Check("keys", True, f"device key {key} (mode 0600) and {len(anchors)} trust anchors load")


def check_data_dir(cfg: Config) -> Check:
    """The data directory exists and is writable, which a read-only or unmounted partition would break."""
    d = cfg.data_dir
    if not d.is_dir():
        return Check("data dir", False, f"{d} does not exist: run `ewarung provision` (or mount the data partition)")
    if not os.access(d, os.W_OK):
        return Check("data dir", False, f"{d} is not writable: is the partition mounted read-only? check `findmnt {d}` and /etc/fstab")
    return Check("data dir", True, f"{d} is writable")


def check_database(cfg: Config) -> Check:
    """SQLite integrity and the journal's hash chain, which shows an edit made outside the app."""
    path = cfg.database_path
    if not path.exists():
        return Check("database", False, f"{path} does not exist: start the appliance once (`systemctl start ewarung-sync`) or restore a backup with `ewarung restore`")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            rows = [r[0] for r in con.execute("PRAGMA integrity_check").fetchall()]
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        return Check("database", False, f"{path} is not a readable SQLite database ({exc}): stop the services, keep the file as evidence and restore the last backup (`ewarung restore`)")
    if rows != ["ok"]:
        return Check("database", False, f"{path} failed PRAGMA integrity_check ({'; '.join(rows[:3])}): stop the services, copy the file aside as evidence and restore the last backup")
    from pos import journal
    from pos.db import open_database

    db = open_database(path, migrate=False)
    try:
        report = journal.verify()
        from pos import settings

        seq = settings.last_sequence()
    finally:
        db.close()
    if not report.ok:
        return Check("database", False, f"journal chain BROKEN at entry {report.first_bad_id} ({report.problem}): the database was edited outside the app; keep it as evidence and call the program office")
    return Check("database", True, f"{path}: integrity ok, journal chain ok ({report.entries} entries), last sequence {seq}")


def check_clock(cfg: Config, now: datetime | None = None) -> Check:
    """The clock is sane and not behind the ledger's issue time: ledger expiry is judged by it."""
    now = now or datetime.now(UTC)
    if now < EARLIEST_SANE:
        return Check("clock", False, f"the clock says {now:%Y-%m-%d %H:%M}Z, before this software existed: connect the network for NTP (`timedatectl status`) or set it with `timedatectl set-time`; fit an RTC battery")
    issued = None
    if cfg.database_path.exists():
        con = sqlite3.connect(f"file:{cfg.database_path}?mode=ro", uri=True, timeout=10)
        try:
            row = con.execute("SELECT issued_at FROM ledger_state WHERE id = 1").fetchone()
        except sqlite3.DatabaseError:
            row = None
        finally:
            con.close()
        if row:
            from pos.clock import parse_iso

            issued = parse_iso(row[0])
    if issued is not None and now < issued:
        return Check("clock", False, f"the clock ({now:%Y-%m-%d %H:%M}Z) is behind the ledger's issue time ({issued:%Y-%m-%d %H:%M}Z): ledger expiry cannot be judged; fix the time (`timedatectl status`, NTP reachable?)")
    extra = f", ledger issued {issued:%Y-%m-%d %H:%M}Z" if issued else ""
    return Check("clock", True, f"{now:%Y-%m-%d %H:%M}Z{extra}")


def check_disk(cfg: Config, min_free_bytes: int = MIN_FREE_BYTES) -> Check:
    """Enough free space where the data lives, before a full card stops sales being recorded."""
    target = cfg.data_dir if cfg.data_dir.exists() else Path("/")
    usage = shutil.disk_usage(target)
    free_mb = usage.free // (1024 * 1024)
    if usage.free < min_free_bytes:
        return Check("disk", False, f"only {free_mb} MB free on {target} (need {min_free_bytes // (1024 * 1024)} MB): remove old logs (`journalctl --vacuum-size=50M`), or move the data to a bigger card")
    return Check("disk", True, f"{free_mb} MB free on {target}")


def check_reader(cfg: Config) -> Check:
    """pcscd runs and sees the configured reader, and no virtual reader is usable on a production device."""
    if cfg.reader.kind == "fake":
        return Check("reader", True, "reader.kind = fake (testing): no hardware checked", warn=True)
    if not PCSCD_SOCKET.exists():
        return Check("reader", False, f"pcscd is not running (no {PCSCD_SOCKET}): `systemctl enable --now pcscd.socket`")
    try:
        from smartcard.System import readers
    except ImportError:
        return Check("reader", True, f"pcscd socket {PCSCD_SOCKET} present (pyscard not installed: reader list not checked)", warn=True)
    try:
        names = [str(r) for r in readers()]
    except Exception as exc:  # pyscard raises several types for a dead pcscd
        return Check("reader", False, f"pcscd did not answer ({exc}): `systemctl restart pcscd`")
    wanted = cfg.reader.name
    match = [n for n in names if wanted in n]
    problem = _virtual_reader_problem(cfg, match)
    if problem:
        return Check("reader", False, problem)
    match = [n for n in match if cfg.allows_virtual_reader or not is_virtual(n)]
    if not match:
        return Check("reader", False, f"no reader{' matching ' + repr(wanted) if wanted else ''} (found {names or 'none'}): plug the reader in, try another USB port, check `pcsc_scan`")
    if cfg.demo is None and cfg.reader.virtual:
        return Check("reader", True, f"reader {match[0]!r} seen by pcscd; LAB configuration (reader.virtual = true): "
                     "virtual readers allowed, never on a shop's device", warn=True)
    return Check("reader", True, f"reader {match[0]!r} seen by pcscd")


def _virtual_reader_problem(cfg: Config, matching: list[str]) -> str | None:
    """On a production config: a vpcd driver installed, or the configured reader a virtual one."""
    if cfg.allows_virtual_reader:
        return None
    virtual = [n for n in matching if is_virtual(n)]
    if cfg.reader.name and virtual and len(virtual) == len(matching):
        return (f"reader.name = {cfg.reader.name!r} names a virtual reader ({virtual[0]!r}): a production device "
                "never uses one (the counter refuses it); set the shop reader's name, or reader.virtual = true in a lab")
    if vpcd_installed():
        return ("a virtual reader driver (vsmartcard-vpcd) is installed: anyone on the shop's network could insert a "
                f"\"card\"{' (' + virtual[0] + ')' if virtual else ''}; the counter refuses virtual readers, but remove "
                "it: `apt purge vsmartcard-vpcd`")
    return None


ESC_INIT = b"\x1b@"
ESC_CUT = b"\x1dV\x00"


def test_page(cfg: Config) -> bytes:
    """A plain ESC/POS page naming the shop and device, built here so the doctor needs no printer adapter."""
    d = cfg.device
    text = f"E-Warung POS - test page\n{d.shop_name}\ndevice {d.id}\n{datetime.now(UTC):%Y-%m-%d %H:%M}Z\n\n\n\n"
    return ESC_INIT + text.encode("ascii", "replace") + ESC_CUT


def check_printer(cfg: Config, print_test_page: bool = False, timeout: float = 3.0) -> Check:
    """The printer is there (port open, USB ids attached, device writable); on request a test page, not on USB."""
    p = cfg.printer
    if p.kind == "dummy":
        return Check("printer", True, "printer.kind = dummy: nothing to check", warn=True)
    if p.kind == "network":
        try:
            with socket.create_connection((p.host, p.port), timeout=timeout) as s:
                if print_test_page:
                    s.sendall(test_page(cfg))
        except OSError as exc:
            return Check("printer", False, f"network printer {p.host}:{p.port} unreachable ({exc.strerror or exc}): check its power, cable and IP address")
        return Check("printer", True, f"network printer {p.host}:{p.port} accepts connections{'; test page sent' if print_test_page else ''}")
    if p.kind == "usb":
        want = (f"{p.usb_vendor:04x}", f"{p.usb_product:04x}")
        for dev in Path("/sys/bus/usb/devices").glob("*"):
            try:
                ids = ((dev / "idVendor").read_text().strip(), (dev / "idProduct").read_text().strip())
            except OSError:
                continue
            if ids == want:
                return Check("printer", True, f"USB printer {want[0]}:{want[1]} present ({dev.name}); test page: use the counter app's Test print")
        return Check("printer", False, f"USB printer {want[0]}:{want[1]} not found in /sys/bus/usb/devices: check the cable and power; `lsusb` lists what is attached")
    path = Path(p.serial_port if p.kind == "serial" else p.path)
    target = path if p.kind == "serial" else path
    if p.kind == "file" and not path.exists():
        target = path.parent
    if not target.exists():
        return Check("printer", False, f"{p.kind} printer {path} does not exist: check the cable, or enable the UART (`ewarung provision` sets enable_uart=1)")
    if not os.access(target, os.W_OK):
        return Check("printer", False, f"{path} is not writable by this user: the udev rule gives group ewarung access; run as the ewarung user or re-plug")
    if print_test_page:
        with open(path, "ab") as fh:
            fh.write(test_page(cfg))
    return Check("printer", True, f"{p.kind} printer {path} is writable{'; test page sent' if print_test_page else ''}")


def check_broker(cfg: Config, timeout: float = 3.0) -> Check:
    """The broker is reachable, TLS verifies, and a client certificate is installed for the city's broker."""
    m = cfg.mqtt
    if not m.enabled:
        return Check("broker", True, "mqtt.enabled = false: nothing to check", warn=True)
    fault = _plaintext_fault(cfg)
    if fault:
        return Check("broker", False, fault)
    try:
        sock = socket.create_connection((m.host, m.port), timeout=timeout)
    except OSError as exc:
        return Check("broker", False, f"broker {m.host}:{m.port} unreachable ({exc.strerror or exc}): check the network (`ping {m.host}`), the broker address in the config, the shop's router")
    with sock:
        if not m.use_tls:
            return Check("broker", True, f"broker {m.host}:{m.port} on this machine reachable (TLS off: its bridge to "
                         "the city must use TLS, sync/broker/shop-bridge.conf)", warn=True)
        ca = str(cfg.key_path(m.ca_file)) if m.ca_file is not None else None
        ctx = ssl.create_default_context(cafile=ca)
        if m.cert_file is not None:
            ctx.load_cert_chain(str(cfg.key_path(m.cert_file)), str(cfg.key_path(m.key_file)))
        try:
            with ctx.wrap_socket(sock, server_hostname=m.host) as tls:
                version = tls.version()
        except (ssl.SSLError, OSError) as exc:
            return Check("broker", False, f"TLS to {m.host}:{m.port} failed ({exc}): check the clock, the broker CA file {m.ca_file or '(system CAs)'} and the host name in the broker's certificate")
    if m.cert_file is None and cfg.demo is None:
        return Check("broker", False, f"TLS to {m.host}:{m.port} works ({version}) but this device has no client "
                     "certificate, so the city's broker refuses it: send /etc/ewarung/keys/device.csr.pem to the city, "
                     "then `ewarung provision --device-cert FILE`")
    return Check("broker", True, f"broker {m.host}:{m.port} reachable, {version} verified against {m.ca_file or 'the system CAs'}"
                 f"{', client certificate ' + str(m.cert_file) if m.cert_file else ''}")


def _plaintext_fault(cfg: Config) -> str | None:
    """Plaintext MQTT to another machine is a fault on any device but the demo (lab option or not)."""
    m = cfg.mqtt
    if cfg.demo is not None or not m.plaintext_off_device:
        return None
    return (f"PLAINTEXT MQTT to {m.host}:{m.port} (mqtt.insecure_plaintext_lab = true): household names and sales "
            "travel in clear; a lab setting, never on a shop device: remove tls = false and insecure_plaintext_lab, "
            "install the broker CA and the device certificate (`ewarung provision --broker-ca FILE --device-cert FILE`)")


def run_checks(
    config_path: str | Path | None,
    *,
    now: datetime | None = None,
    min_free_bytes: int = MIN_FREE_BYTES,
    print_test_page: bool = False,
    timeout: float = 3.0,
    progress: Callable[[str], None] | None = None,
) -> list[Check]:
    """Every check in order, naming each to `progress` first; a check that crashes is reported as failed."""
    first, cfg = check_config(config_path)
    results = [first]
    if cfg is None:
        return results
    steps: list[tuple[str, Callable[[], Check]]] = [
        ("keys", lambda: check_keys(cfg)),
        ("data dir", lambda: check_data_dir(cfg)),
        ("database", lambda: check_database(cfg)),
        ("clock", lambda: check_clock(cfg, now)),
        ("disk", lambda: check_disk(cfg, min_free_bytes)),
        ("reader", lambda: check_reader(cfg)),
        ("printer", lambda: check_printer(cfg, print_test_page, timeout)),
        ("broker", lambda: check_broker(cfg, timeout)),
    ]
    for name, fn in steps:
        if progress:
            progress(name)
        try:
            results.append(fn())
        except Exception as exc:  # a check that crashes is a failed check, not a crashed doctor
            results.append(Check(name, False, f"the check itself failed: {type(exc).__name__}: {exc}"))
    return results


def qr_text(data: str) -> str:
    """A QR code as terminal text (two rows per character line), readable by a phone camera."""
    import qrcode

    qr = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(data)
    qr.make(fit=True)
    out = io.StringIO()
    qr.print_ascii(out=out, invert=True)
    return out.getvalue()
