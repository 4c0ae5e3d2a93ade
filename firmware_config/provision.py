"""`ewarung provision`: turn a fresh Raspberry Pi OS Lite into an E-Warung appliance.

Writes the device config, the device key pair and CSR, the trust anchors, the service user
(sysusers.d), the data directory, udev rules, polkit access to pcscd, the systemd units and the
boot configuration. Every change goes through `fsops.Changes`, so a second run with the same
answers changes nothing and `--dry-run` lists what would change. With `root` set (tests, image
builds) everything lands under that directory and no host command runs (no useradd, no
systemctl, no udevadm).
"""

from __future__ import annotations

import grp
import json
import pwd
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

from firmware_config import boot, identity, tomlw, udev, units
from firmware_config.config import Config, ConfigError, config_dict, load_config, parse_config
from firmware_config.fsops import CHANGED, Changes, ensure_mode

CONFIG_PATH = "/etc/ewarung/ewarung.toml"
KEYS_DIR = "/etc/ewarung/keys"
DEVICE_KEY = f"{KEYS_DIR}/device.key.pem"
DEVICE_PUB = f"{KEYS_DIR}/device.pub.pem"
DEVICE_CSR = f"{KEYS_DIR}/device.csr.pem"
DEVICE_CERT = f"{KEYS_DIR}/device.crt.pem"
BROKER_CA = f"{KEYS_DIR}/broker-ca.pem"
SYSUSERS_FILE = "/etc/sysusers.d/ewarung.conf"
POLKIT_FILE = "/etc/polkit-1/rules.d/60-ewarung-pcscd.rules"
BOOT_CONFIG = "/boot/firmware/config.txt"
BOOT_CMDLINE = "/boot/firmware/cmdline.txt"
UNIT_DIR = "/etc/systemd/system"
SERVICE_USER = "ewarung"
GROUPS = ("video", "render", "input", "tty", "dialout", "lp")

REQUIRED = {
    "device_id": "--device-id",
    "shop_id": "--shop-id",
    "shop_name": "--shop-name",
    "issuer_keys": "--issuer-key",
    "ledger_key": "--ledger-key",
    "central_key": "--central-key",
    "broker_host": "--broker-host",
}

PROMPTS = {
    "device_id": "Device id (from the city's device list, e.g. EW-SMD-0042)",
    "shop_id": "Shop id (e.g. SMD-SAMARINDA-ULU-07)",
    "shop_name": "Shop name as printed on receipts",
    "issuer_keys": "Card issuer public key file (PEM)",
    "ledger_key": "Ledger signer public key file (PEM)",
    "central_key": "City (central) public key file (PEM)",
    "broker_host": "MQTT broker host name",
}


class ProvisionError(ValueError):
    """Provisioning cannot go on; the message says what to supply or fix."""


@dataclass
class Answers:
    """The technician's answers, from flags or prompts; None is "not given", so a re-run keeps what the
    device already has (fill_from)."""

    device_id: str | None = None
    shop_id: str | None = None
    shop_name: str | None = None
    shop_address: str | None = None
    hotline: str | None = None
    language: str | None = None
    data_dir: str | None = None
    printer_kind: str | None = None
    printer_usb: tuple[int, int] | None = None
    printer_serial: str | None = None
    printer_host: str | None = None
    printer_port: int | None = None
    printer_width: int | None = None
    reader_name: str | None = None
    broker_host: str | None = None
    broker_port: int | None = None
    broker_ca: Path | None = None
    device_cert: Path | None = None
    insecure_plaintext_lab: bool = False
    issuer_keys: list[Path] = field(default_factory=list)
    ledger_key: Path | None = None
    central_key: Path | None = None
    display: str | None = None
    rotation: int | None = None
    screen: str | None = None
    prefix: str | None = None
    update_repo: str | None = None
    update_key: Path | None = None
    update_window: str | None = None


# Answers that are not part of the device config, kept here so a later run keeps them.
STATE_FILE = "/etc/ewarung/provision.json"
STATE_DEFAULTS = {"display": "dsi", "rotation": 0, "screen": "800x480", "prefix": units.DEFAULT_PREFIX}


@dataclass
class Result:
    """What provisioning changed (or would, with --dry-run), the config it wrote, and notes for the
    technician: commands run and steps still to do."""

    changes: Changes
    config: Config
    notes: list[str]


def parse_usb_id(text: str) -> tuple[int, int]:
    """--printer-usb as `lsusb` prints it (VENDOR:PRODUCT in hex), so the technician copies what they see."""
    try:
        vid, pid = (int(x, 16) for x in text.split(":"))
    except ValueError:
        raise ProvisionError(f"--printer-usb {text!r}: write VENDOR:PRODUCT in hex as `lsusb` shows it, e.g. 04b8:0202") from None
    if not (0 < vid <= 0xFFFF and 0 < pid <= 0xFFFF):
        raise ProvisionError(f"--printer-usb {text!r}: ids are 4 hex digits each, e.g. 04b8:0202")
    return vid, pid


def existing_config(changes: Changes) -> Config | None:
    """The config an earlier run left, to fill gaps from; an invalid one stops provisioning rather than be lost."""
    path = changes.host(CONFIG_PATH)
    if not path.exists():
        return None
    try:
        return load_config(path)
    except ConfigError as exc:
        raise ProvisionError(f"the existing {CONFIG_PATH} is invalid; fix it or move it away first:\n{exc}") from None


def fill_from(answers: Answers, cfg: Config) -> Answers:
    """Unanswered questions take the value of the configuration already on the device."""
    d, p, m = cfg.device, cfg.printer, cfg.mqtt
    known = {
        "device_id": d.id, "shop_id": d.shop_id, "shop_name": d.shop_name, "shop_address": d.shop_address,
        "hotline": d.hotline, "language": d.language, "data_dir": str(d.data_dir), "printer_kind": p.kind,
        "printer_serial": p.serial_port, "printer_host": p.host, "printer_port": p.port, "printer_width": p.width_mm,
        "reader_name": cfg.reader.name, "broker_host": m.host, "broker_port": m.port,
        "ledger_key": None, "central_key": None,
    }
    out = replace(answers)
    for name, value in known.items():
        if getattr(out, name) is None and value is not None:
            setattr(out, name, value)
    if out.printer_usb is None and p.kind == "usb":
        out.printer_usb = (p.usb_vendor, p.usb_product)
    return out


def missing(answers: Answers, installed: Config | None) -> list[str]:
    """The flags still needed: trust anchors only on a first run, since a re-run keeps the installed ones."""
    gaps = []
    for name, flag in REQUIRED.items():
        value = getattr(answers, name)
        if name in ("issuer_keys", "ledger_key", "central_key") and installed is not None:
            continue  # already installed; keep them
        if not value:
            gaps.append(flag)
    return gaps


def _read_pem(path: Path, what: str, kind: str = "public") -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ProvisionError(f"{what} {path}: cannot read it ({exc.strerror}); check the path") from None
    try:
        if kind == "public":
            identity.load_public_key_pem(data)
        else:
            from cryptography import x509

            x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise ProvisionError(f"{what} {path}: not a {'P-256 public key' if kind == 'public' else 'X.509 certificate'} in PEM ({exc})") from None
    return data


def _installed_name(path: Path, fallback: str) -> str:
    name = Path(path).name
    if not name.endswith(".pem"):
        name = fallback
    if not name.endswith(".pub.pem"):
        name = name.removesuffix(".pem") + ".pub.pem"
    return name


def build_config(a: Answers, installed: Config | None) -> Config:
    """The device config from the answers, checked by the schema; a re-run keeps the anchors, policy and
    tuning it does not ask about as installed."""
    issuer = [Path(KEYS_DIR) / _installed_name(p, f"issuer-{i}.pub.pem") for i, p in enumerate(a.issuer_keys)]
    ledger = Path(KEYS_DIR) / _installed_name(a.ledger_key, "ledger.pub.pem") if a.ledger_key else None
    central = Path(KEYS_DIR) / _installed_name(a.central_key, "central.pub.pem") if a.central_key else None
    if installed is not None:
        issuer = issuer or list(installed.keys.issuer_public_keys)
        ledger = ledger or installed.keys.ledger_public_key
        central = central or installed.keys.central_public_key
    device: dict = {"id": a.device_id, "shop_id": a.shop_id, "shop_name": a.shop_name, "data_dir": a.data_dir or units.DEFAULT_DATA_DIR}
    for key, val in (("shop_address", a.shop_address), ("hotline", a.hotline), ("language", a.language)):
        if val is not None:
            device[key] = val
    printer: dict = {"kind": a.printer_kind or "usb"}
    if a.printer_width:
        printer["width_mm"] = a.printer_width
    if printer["kind"] == "usb" and a.printer_usb:
        printer["usb_vendor"], printer["usb_product"] = a.printer_usb
    if a.printer_serial:
        printer["serial_port"] = a.printer_serial
    if a.printer_host:
        printer["host"] = a.printer_host
    if a.printer_port:
        printer["port"] = a.printer_port
    mqtt = mqtt_section(a, installed)
    raw = {
        "device": device,
        "reader": {"kind": "pcsc", "name": a.reader_name or "", "virtual": False},
        "printer": printer,
        "mqtt": mqtt,
        "keys": {
            "device_key": DEVICE_KEY,
            "issuer_public_keys": [str(p) for p in issuer],
            "ledger_public_key": str(ledger),
            "central_public_key": str(central),
        },
    }
    if installed is not None:
        # Keep what provisioning does not ask about (policy, tuning) as the city set it.
        raw["policy"] = config_dict(installed.policy)
        for key in ("keepalive_s", "session_expiry_s", "inflight", "heartbeat_s", "retention_days", "username", "password"):
            mqtt.setdefault(key, getattr(installed.mqtt, key))
        printer.setdefault("profile", installed.printer.profile)
        printer.setdefault("timeout_s", installed.printer.timeout_s)
    text = render_config(raw)
    return parse_config(text, CONFIG_PATH)


def mqtt_section(a: Answers, installed: Config | None) -> dict:
    """TLS with the device's client certificate unless --insecure-plaintext-lab: household names
    and sales never leave a provisioned device in clear. Without --broker-ca the system's CAs
    verify the broker; the certificate is referenced once the city's signed one is installed."""
    port = a.broker_port
    if installed is not None and port == installed.mqtt.port and installed.mqtt.use_tls == a.insecure_plaintext_lab:
        port = None  # the installed port belongs to the other mode (8883 TLS, 1883 plaintext)
    if a.insecure_plaintext_lab:
        return {"host": a.broker_host, "port": port or 1883, "tls": False, "insecure_plaintext_lab": True}
    mqtt: dict = {"host": a.broker_host, "port": port or 8883, "tls": True}
    if a.broker_ca is not None or (installed is not None and installed.mqtt.ca_file is not None):
        mqtt["ca_file"] = BROKER_CA
    if a.device_cert is not None or (installed is not None and installed.mqtt.cert_file is not None):
        mqtt.update(cert_file=DEVICE_CERT, key_file=DEVICE_KEY)
    return mqtt


def tls_notes(cfg: Config) -> list[str]:
    """What the technician still has to do for the broker connection (or what is insecure)."""
    m = cfg.mqtt
    if m.insecure_plaintext_lab:
        return ["INSECURE: --insecure-plaintext-lab: MQTT in clear (household names, sales); a lab only, never a "
                "shop device; `ewarung doctor` reports it as a fault"]
    if m.cert_file is None:
        return [f"the broker needs this device's client certificate: send {DEVICE_CSR} to the city, then run "
                "`ewarung provision --device-cert FILE` with the certificate it signs"]
    return []


def render_config(raw: dict) -> str:
    """The config as TOML, headed with who wrote it and how to check a hand edit."""
    return tomlw.dumps(
        raw,
        header="E-Warung POS device configuration, written by `ewarung provision`.\n"
        "Check it with `ewarung config check /etc/ewarung/ewarung.toml` after editing by hand.",
    )


def _uid_gid(changes: Changes) -> tuple[int, int] | None:
    """The service user's uid and gid: from the host, or from the tree's /etc/passwd with --root."""
    if changes.real_root:
        try:
            return pwd.getpwnam(SERVICE_USER).pw_uid, grp.getgrnam(SERVICE_USER).gr_gid
        except KeyError:
            return None
    ids = []
    for name in ("passwd", "group"):
        path = changes.host(f"/etc/{name}")
        found = None
        if path.exists():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                fields = line.split(":")
                if len(fields) > 2 and fields[0] == SERVICE_USER and fields[2].isdigit():
                    found = int(fields[2])
        ids.append(found)
    return (ids[0], ids[1]) if None not in ids else None


def sysusers_text(data_dir: str) -> str:
    """The service user as a systemd-sysusers file: home in the data directory, in the groups its screen,
    input, serial port and printer need."""
    lines = [
        "# E-Warung POS service user (systemd-sysusers format), written by `ewarung provision`.",
        "g ewarung -",
        f'u ewarung -:ewarung "E-Warung POS" {data_dir} /usr/sbin/nologin',
    ]
    lines += [f"m ewarung {g}" for g in GROUPS]
    return "\n".join(lines) + "\n"


POLKIT_RULES = """// E-Warung POS: let the service user use the card reader through pcscd (Debian's pcsc-lite
// asks polkit when built with --enable-polkit; a system service has no seat session; without
// polkit support in pcscd this rule is simply unused). Written by `ewarung provision`.
polkit.addRule(function(action, subject) {
    if ((action.id == "org.debian.pcsc-lite.access_pcsc" ||
         action.id == "org.debian.pcsc-lite.access_card") &&
        subject.user == "ewarung") {
        return polkit.Result.YES;
    }
});
"""


def _run(cmd: list[str], notes: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ProvisionError(f"`{' '.join(cmd)}` failed ({proc.returncode}): {proc.stderr.strip()}")
    notes.append(f"ran: {' '.join(cmd)}")


def provision(answers: Answers, root: Path = Path("/"), dry_run: bool = False) -> Result:
    """Every provisioning step in order; each write goes through Changes, so a re-run and --dry-run are safe."""
    changes = Changes(Path(root), dry_run)
    notes: list[str] = []
    installed = existing_config(changes)
    a = fill_from(answers, installed) if installed is not None else replace(answers)
    state = _load_state(changes)
    for key, default in STATE_DEFAULTS.items():
        if getattr(a, key) is None:
            setattr(a, key, state.get(key, default))
    if a.display not in ("dsi", "hdmi") or a.rotation not in (0, 90, 180, 270):
        raise ProvisionError("--display is dsi or hdmi; --rotation is 0, 90, 180 or 270")
    try:
        width, height = (int(x) for x in str(a.screen).lower().split("x"))
    except ValueError:
        raise ProvisionError(f"--screen {a.screen!r}: write WIDTHxHEIGHT, e.g. 800x480") from None
    gaps = missing(a, installed)
    if gaps:
        raise ProvisionError("missing answers: " + ", ".join(gaps) + " (give them as flags, or run without --non-interactive to be asked)")
    try:
        identity.check_id(a.device_id, "device id")
        identity.check_id(a.shop_id, "shop id")
        cfg = build_config(a, installed)
    except ValueError as exc:
        raise ProvisionError(str(exc)) from None
    anchors = [*cfg.keys.issuer_public_keys, cfg.keys.ledger_public_key, cfg.keys.central_public_key]
    if len({str(p) for p in anchors}) != len(anchors):
        raise ProvisionError(
            "two trust anchors would be installed under the same file name (the name is the key id): "
            "give the city's files distinct names, e.g. issuer-2026.pub.pem, ledger.pub.pem, central.pub.pem"
        )
    data_dir = str(cfg.data_dir)
    if not data_dir.startswith("/"):
        raise ProvisionError(f"--data-dir {data_dir!r}: use an absolute path, e.g. /var/lib/ewarung or /data/ewarung")

    # 1. service user first, so files below can belong to it.
    users_changed = changes.file(SYSUSERS_FILE, sysusers_text(data_dir), 0o644, what="service user (sysusers.d)") == CHANGED
    if changes.real_root and not dry_run and (users_changed or _uid_gid(changes) is None):
        _run(["systemd-sysusers", SYSUSERS_FILE], notes)
    owner = _uid_gid(changes)
    root_group = (0, owner[1]) if owner else None
    if changes.real_root and owner is None and not dry_run:
        raise ProvisionError("the service user `ewarung` does not exist after systemd-sysusers; check `journalctl -b` for why")
    if not changes.real_root and owner is None:
        notes.append(
            f"user `ewarung` is not in {changes.host('/etc/passwd')}: files stay owned by root. For an image, run "
            f"`systemd-sysusers --root={changes.root}` and provision again so the service can read its key and config"
        )

    # 2. directories and the configuration.
    changes.directory("/etc/ewarung", 0o755)
    changes.directory(KEYS_DIR, 0o750, root_group)
    changes.directory(data_dir, 0o750, owner)
    changes.file(CONFIG_PATH, render_config_from(cfg), 0o640, root_group, what="device config")
    state = {key: getattr(a, key) for key in STATE_DEFAULTS}
    changes.file(STATE_FILE, json.dumps(state, indent=2, sort_keys=True) + "\n", 0o644, what="provisioning answers (display, prefix)")

    # 3. trust anchors.
    for src, dest in zip(a.issuer_keys, cfg.keys.issuer_public_keys, strict=False):
        changes.file(dest, _read_pem(src, "card issuer key"), 0o644, what="trust anchor: card issuer")
    if a.ledger_key:
        changes.file(cfg.keys.ledger_public_key, _read_pem(a.ledger_key, "ledger signer key"), 0o644, what="trust anchor: ledger signer")
    if a.central_key:
        changes.file(cfg.keys.central_public_key, _read_pem(a.central_key, "central key"), 0o644, what="trust anchor: city")
    if a.broker_ca:
        changes.file(BROKER_CA, _read_pem(a.broker_ca, "broker CA", "cert"), 0o644, what="trust anchor: broker CA")

    # 4. device identity: key once (never replaced, never printed), public key, CSR.
    changes.keep_if_present(DEVICE_KEY, "device private key", lambda: (identity.new_private_key_pem(), 0o600))
    ensure_mode(changes, DEVICE_KEY, 0o600, owner)
    key_path = changes.host(DEVICE_KEY)
    if key_path.exists():
        private = key_path.read_bytes()
        changes.file(DEVICE_PUB, identity.public_key_pem(private), 0o644, what="device public key")
        csr_path = changes.host(DEVICE_CSR)
        if csr_path.exists() and identity.csr_matches(csr_path.read_bytes(), private, cfg.device.id, cfg.device.shop_id):
            changes.file(DEVICE_CSR, csr_path.read_bytes(), 0o644, what="CSR for the city CA")
        else:
            changes.file(DEVICE_CSR, identity.csr_pem(private, cfg.device.id, cfg.device.shop_id, cfg.device.city), 0o644, what="CSR for the city CA")
        if a.device_cert:
            cert = _read_pem(a.device_cert, "device certificate", "cert")
            if not identity.certificate_matches_key(cert, private):
                raise ProvisionError(f"{a.device_cert}: this certificate is not for this device's key; ask the city to sign {DEVICE_CSR}")
            changes.file(DEVICE_CERT, cert, 0o644, what="device certificate")
    else:
        changes.note(DEVICE_PUB, changes.items[-1].status, "device public key")
        changes.note(DEVICE_CSR, changes.items[-1].status, "CSR for the city CA")

    # 5. udev, polkit.
    usb = (cfg.printer.usb_vendor, cfg.printer.usb_product) if cfg.printer.kind == "usb" else (0, 0)
    udev_changed = changes.file(udev.RULES_FILE, udev.render_rules(*usb), 0o644, what="udev rules") == CHANGED
    changes.file(POLKIT_FILE, POLKIT_RULES, 0o644, what="polkit rule for pcscd")

    # 6. systemd units, enabled by the same symlinks `systemctl enable` makes.
    units_changed = False
    for name in units.DEVICE_UNITS:
        text = units.render(name, prefix=a.prefix, config_path=CONFIG_PATH, data_dir=data_dir, rotation=a.rotation)
        units_changed |= changes.file(f"{UNIT_DIR}/{name}", text, 0o644, what="systemd unit") == CHANGED
        changes.symlink(f"{UNIT_DIR}/multi-user.target.wants/{name}", f"{UNIT_DIR}/{name}", "enabled")
    changes.file(f"/etc/systemd/{units.WATCHDOG_CONF}", units.template(units.WATCHDOG_CONF), 0o644, what="hardware watchdog (systemd)")

    # The technician's shell: `ewarung` on PATH, and the device config without --config.
    changes.file("/etc/profile.d/ewarung.sh", f"# written by `ewarung provision`\nexport EWARUNG_CONFIG={CONFIG_PATH}\n", 0o644, what="shell profile")
    changes.symlink("/usr/local/bin/ewarung", f"{a.prefix.rstrip('/')}/bin/ewarung", "command on PATH")

    if a.update_repo or a.update_key:
        units_changed |= _updates(changes, a)

    # 7. boot configuration (only on a Raspberry Pi boot partition).
    settings = boot.BootSettings(
        display=a.display, rotation=a.rotation, width=width, height=height, uart=cfg.printer.kind == "serial" and cfg.printer.serial_port in ("/dev/serial0", "/dev/ttyAMA0")
    )
    cfg_txt, cmd_txt = changes.host(BOOT_CONFIG), changes.host(BOOT_CMDLINE)
    if cfg_txt.exists() and cmd_txt.exists():
        try:
            changes.file(BOOT_CONFIG, boot.apply_config_txt(cfg_txt.read_text(), settings), _mode(cfg_txt), what="boot config")
            changes.file(BOOT_CMDLINE, boot.apply_cmdline_txt(cmd_txt.read_text(), settings), _mode(cmd_txt), what="kernel command line")
        except ValueError as exc:
            raise ProvisionError(f"boot configuration: {exc}") from None
    else:
        notes.append(f"{BOOT_CONFIG} not found: not a Raspberry Pi boot partition, boot configuration skipped")

    notes += tls_notes(cfg)
    if changes.real_root and not dry_run:
        if udev_changed:
            _run(["udevadm", "control", "--reload"], notes)
            _run(["udevadm", "trigger", "--subsystem-match=usb", "--subsystem-match=usbmisc", "--subsystem-match=tty"], notes)
        if units_changed:
            _run(["systemctl", "daemon-reload"], notes)
    return Result(changes, cfg, notes)


def _updates(changes: Changes, a: Answers) -> bool:
    """Fleet updates (firmware_config.updates): the city's apt repository, its key, the window."""
    from firmware_config import updates

    if not (a.update_repo and a.update_key):
        raise ProvisionError("--update-repo and --update-key go together: the repository URL and the city's release key")
    try:
        return updates.provision_updates(changes, a.update_repo, a.update_key, a.update_window)
    except ValueError as exc:
        raise ProvisionError(str(exc)) from None


def _load_state(changes: Changes) -> dict:
    path = changes.host(STATE_FILE)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {}
    return {k: v for k, v in data.items() if k in STATE_DEFAULTS} if isinstance(data, dict) else {}


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


def render_config_from(cfg: Config) -> str:
    """A Config as the file provisioning and restore write, without a [demo] table: a written device config
    is never a demo."""
    data = config_dict(cfg)
    data.pop("demo", None)
    return render_config(data)
