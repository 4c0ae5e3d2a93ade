"""The device configuration: one TOML file, checked against a strict schema.

Unknown keys are errors (a typo must not silently fall back to a default). Every error names
the key, the bad value and what is allowed. Without a file, the built-in demo configuration
is used: virtual reader, virtual printer, sample city, no broker needed.

The schema is msgspec structs: typed, constrained and strict like a pydantic model, at a
fraction of the memory (the counter app's whole budget is 150 MB; see docs/architecture.md).
"""

from __future__ import annotations

import os
import re
import tomllib
import typing
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, field

from pos.device import DeviceIdentity
from pos.household_ids import DEFAULT_AREA_CODE
from pos.policy import Policy

ENV_VAR = "EWARUNG_CONFIG"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
SECRET_KEYS = {"password", "pin"}
Port = Annotated[int, Meta(ge=1, le=65535)]
DeviceId = Annotated[str, Meta(pattern=ID_PATTERN)]


class _Section(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    def replace(self, **changes: object) -> typing.Self:
        """A copy with some keys changed (sections are frozen). Not checked again: pass valid values."""
        return msgspec.structs.replace(self, **changes)

    def __post_init__(self) -> None:
        # "~someone/..." for a user this device lacks made Path.expanduser() raise RuntimeError later
        for name in self.__struct_fields__:
            value = getattr(self, name)
            for p in value if isinstance(value, list) else [value]:
                if isinstance(p, Path):
                    try:
                        p.expanduser()
                    except RuntimeError:
                        raise ValueError(f"{name} = {str(p)!r} starts with ~user for a user this device does not "
                                         "have; write the full path") from None


class DeviceSection(_Section):
    """[device]: who this appliance and its shop are (printed on receipts, stamped on messages) and where
    its data lives; read through Config.identity(), Config.data_dir and Config.to_policy() (language)."""

    id: DeviceId = "EW-DEMO-0001"
    shop_id: DeviceId = "SMD-DEMO-01"
    shop_name: Annotated[str, Meta(min_length=1, max_length=48)] = "E-Warung Mawar (DEMO)"
    shop_address: Annotated[str, Meta(max_length=96)] = "Jl. Pahlawan No. 12, Samarinda"
    city: Annotated[str, Meta(pattern=r"^[a-z0-9-]{1,32}$")] = "samarinda"
    area_code: Annotated[str, Meta(pattern=r"^[0-9]{4}$")] = DEFAULT_AREA_CODE
    """The city's regional code in its household ids (SSN-<area code>-<7 digits>): the counter
    writes it before the digits a cashier types."""
    hotline: Annotated[str, Meta(max_length=48)] = "Pengaduan: 0541-123456 / WA 0811-5555-000"
    data_dir: Path = Path("~/.local/share/ewarung-demo")
    language: Literal["id", "en"] = "id"


class ReaderSection(_Section):
    """[reader]: which card reader the counter opens and how long it waits on a card; read by
    pos.roots.counter and `ewarung doctor`."""

    kind: Literal["pcsc", "fake"] = "pcsc"
    name: str = ""
    """Substring of the PC/SC reader name to use; empty takes the first reader."""
    virtual: bool = False
    """Lab and field testing only: a virtual reader (vsmartcard's vpcd, which anyone on the network can
    put a "card" into) may be used. A production device keeps false and never takes a virtual reader,
    by name or by driver; the demo configuration always may."""
    vpcd_port: Port = 0x8C7B
    transmit_timeout_s: Annotated[float, Meta(gt=0, le=60)] = 5.0
    """Give up on a card that has not answered one command for this long (a hung chip): the counter
    shows "card stopped answering" instead of waiting. A real card's slowest command is about 1 s."""


class PrinterSection(_Section):
    """[printer]: how the receipt printer is reached and its paper width; read by
    hardware.printer.adapter.EscposPrinter and `ewarung doctor`."""

    kind: Literal["usb", "serial", "network", "file", "dummy"] = "network"
    width_mm: Literal[58, 80] = 58
    profile: str = "default"
    usb_vendor: Annotated[int, Meta(ge=0, le=0xFFFF)] = 0
    usb_product: Annotated[int, Meta(ge=0, le=0xFFFF)] = 0
    serial_port: str = "/dev/serial0"
    baudrate: Literal[9600, 19200, 38400, 57600, 115200] = 9600
    host: str = "127.0.0.1"
    port: Port = 9100
    path: Path = Path("/dev/usb/lp0")
    timeout_s: Annotated[float, Meta(gt=0, le=60)] = 5.0
    status_query: bool = True
    """Ask the printer for its status (ESC/POS DLE EOT) before and after each receipt (usb, serial,
    network). Set false only for a printer that prints but never answers status queries."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind == "usb" and not (self.usb_vendor and self.usb_product):
            raise ValueError("printer.kind = 'usb' needs usb_vendor and usb_product (e.g. 0x04b8, 0x0202)")


LOOPBACK_HOSTS = ("localhost", "::1")


def on_this_machine(host: str) -> bool:
    """A broker on loopback: what is sent to it never leaves the device (the shop-local broker)."""
    return host in LOOPBACK_HOSTS or host.startswith("127.")


class MqttSection(_Section):
    """[mqtt]: the broker the sync daemon sends the outbox through, its TLS and its delivery timing;
    read by pos.roots.sync and `ewarung doctor`."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: Port = 1883
    tls: bool | None = None
    """TLS to the broker. Unset: on, except to a broker on this machine (a shop-local broker, whose
    bridge to the city carries the traffic over TLS: sync/broker/shop-bridge.conf)."""
    insecure_plaintext_lab: bool = False
    """LAB ONLY: allows tls = false to a broker on another machine, which sends household names and
    sales in clear; `ewarung doctor` reports it as a fault."""
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive_s: Annotated[int, Meta(ge=5, le=3600)] = 30
    session_expiry_s: Annotated[int, Meta(ge=0, le=30 * 24 * 3600)] = 7 * 24 * 3600
    inflight: Annotated[int, Meta(ge=1, le=1000)] = 64
    heartbeat_s: Annotated[int, Meta(ge=5, le=3600)] = 60
    retention_days: Annotated[int, Meta(ge=0, le=3650)] = 90
    ack_timeout_s: Annotated[int, Meta(ge=5, le=7 * 24 * 3600)] = 300
    """Republish a message the city has not acknowledged this long after its PUBACK."""
    username: str = ""
    password: str = ""

    @property
    def use_tls(self) -> bool:
        """Whether the connection is TLS: as set, else on unless the broker is on this machine."""
        return self.tls if self.tls is not None else not on_this_machine(self.host)

    @property
    def plaintext_off_device(self) -> bool:
        """Plaintext to another machine: only with the lab option, and a fault on any real device."""
        return not self.use_tls and not on_this_machine(self.host)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tls is False and not on_this_machine(self.host) and not self.insecure_plaintext_lab:
            raise ValueError(f"tls = false would send household names and sales to {self.host} in clear: remove it "
                             "(TLS with the device's client certificate), or, in a lab only, set "
                             "insecure_plaintext_lab = true")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("mqtt.cert_file and mqtt.key_file go together: set both or neither")


class KeysSection(_Section):
    """Key paths; relative paths are taken inside the data directory."""

    device_key: Path = Path("keys/device.key.pem")
    issuer_public_keys: list[Path] = field(default_factory=lambda: [Path("keys/issuer.pub.pem")])
    ledger_public_key: Path = Path("keys/ledger.pub.pem")
    central_public_key: Path = Path("keys/central.pub.pem")


class PolicySection(_Section):
    """[policy]: the device's risk limits, set per city; handed to the core as a pos.policy.Policy by
    Config.to_policy()."""

    ledger_warn_age_hours: Annotated[int, Meta(ge=1, le=24 * 90)] = 48
    ledger_max_age_hours: Annotated[int, Meta(ge=1, le=24 * 365)] = 24 * 7
    ledger_expired_action: Literal["refuse", "warn"] = "refuse"
    offline_max_days: Annotated[int, Meta(ge=1, le=90)] = 7
    offline_max_value: Annotated[int, Meta(ge=0)] = 50_000_000
    void_window_minutes: Annotated[int, Meta(ge=0, le=24 * 60)] = 30
    pin_tries: Annotated[int, Meta(ge=1, le=10)] = 3
    override_cap_per_period: Annotated[int, Meta(ge=0, le=1000)] = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ledger_warn_age_hours > self.ledger_max_age_hours:
            raise ValueError("policy.ledger_warn_age_hours must not exceed policy.ledger_max_age_hours")


class DemoSection(_Section):
    """[demo]: only the built-in demo has it, and its presence is what makes a device a demo (sample city
    of this many households, DEMO keys, virtual reader allowed); read by pos.roots.appliance."""

    households: Annotated[int, Meta(ge=9, le=2_000_000)] = 500
    seed: int = 2026


class Config(_Section):
    """The whole device configuration, one section per table of the file: the composition roots read
    it and hand each part plain values, so nothing below them reads the file."""

    device: DeviceSection = field(default_factory=DeviceSection)
    reader: ReaderSection = field(default_factory=ReaderSection)
    printer: PrinterSection = field(default_factory=PrinterSection)
    mqtt: MqttSection = field(default_factory=MqttSection)
    keys: KeysSection = field(default_factory=KeysSection)
    policy: PolicySection = field(default_factory=PolicySection)
    demo: DemoSection | None = None

    @property
    def data_dir(self) -> Path:
        """Where the database and keys live, with a ~ in the file expanded."""
        return self.device.data_dir.expanduser()

    @property
    def database_path(self) -> Path:
        """The appliance's one SQLite database: always in the data directory, so every tool opens the same file."""
        return self.data_dir / "ewarung.db"

    @property
    def allows_virtual_reader(self) -> bool:
        """Demo and lab configurations only (reader.virtual); a production device never does."""
        return self.demo is not None or self.reader.virtual

    def key_path(self, path: Path) -> Path:
        """A key or certificate path from the file made absolute: relative ones are inside the data directory."""
        path = path.expanduser()
        return path if path.is_absolute() else self.data_dir / path

    def identity(self) -> DeviceIdentity:
        """The device and shop as the core's DeviceIdentity, so receipts and messages never read the config."""
        d = self.device
        return DeviceIdentity(d.id, d.shop_id, d.shop_name, d.shop_address, d.city, d.hotline, d.area_code)

    def to_policy(self) -> Policy:
        """[policy] (and the device language) as the core's Policy, so the core judges limits without the config."""
        return Policy(**msgspec.structs.asdict(self.policy), language=self.device.language)

    def with_data_dir(self, data_dir: Path) -> Config:
        """The same configuration over another data directory: the demo in a chosen place, a restore onto this disk."""
        return self.replace(device=self.device.replace(data_dir=data_dir))


SECTIONS: dict[str, type[_Section]] = {  # the tables of the file, read off Config (demo's is optional)
    f.name: next(t for t in (typing.get_args(f.type) or (f.type,)) if t is not type(None))
    for f in msgspec.structs.fields(Config)
}


class ConfigError(ValueError):
    """The configuration is wrong; the message lists every problem and how to fix it."""


def _path_from_text(kind: type, value: object) -> object:
    if kind is Path:
        if isinstance(value, str):
            return Path(value)
        raise TypeError(f"Expected a path (text), got `{type(value).__name__}`")
    raise NotImplementedError(kind)


_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<key>.*)`$")


def _problem(section: str, kind: type[_Section], data: dict, message: str) -> tuple[str | None, str]:
    """One msgspec error as the key it is about (None: the section as a whole) and a line for people."""
    at = _AT.search(message)
    message = message[: at.start()] if at else message
    key = None
    if at and at.group("path"):
        key = re.match(r"\.([^.\[]+)", at.group("path")).group(1)  # type: ignore[union-attr]
    unknown = _UNKNOWN.match(message)
    if unknown:
        key = unknown.group("key")
        return key, f"  - {section}.{key}: unknown key (value {data.get(key)!r}); remove it or check its spelling"
    if key is None:
        return None, f"  - {section}: {message}"
    where = section + (at.group("path") if at else "")
    allowed = typing.get_args(typing.get_type_hints(kind, include_extras=True).get(key))
    if allowed and all(isinstance(a, str | int) for a in allowed):  # a Literal: say what is allowed
        message = "must be one of " + ", ".join(repr(a) for a in allowed)
    if key == "offline_max_value" and isinstance(data.get(key), float):
        message = "money is whole rupiah: write an integer, e.g. 50000000"
    return key, f"  - {where} = {data.get(key)!r}: {message}"


def _section(name: str, data: object) -> tuple[_Section | None, list[str]]:
    """Check one section; a bad key is set aside and the rest checked again, so every bad key is
    reported at once (a problem with the section as a whole is reported only if no key is bad)."""
    kind = SECTIONS[name]
    if not isinstance(data, dict):
        return None, [f"  - {name} = {data!r}: must be a table ([{name}])"]
    lines: list[str] = []
    while True:
        try:
            value = msgspec.convert(data, kind, dec_hook=_path_from_text)
        except msgspec.ValidationError as exc:
            key, line = _problem(name, kind, data, str(exc))
            if key is None and lines:
                return None, lines
            lines.append(line)
            if key is None or key not in data:
                return None, lines
            data = {k: v for k, v in data.items() if k != key}
            continue
        return (None if lines else value), lines


def parse_config(text: str, source: str = "config") -> Config:
    """Check a file's text and build the Config, or raise ConfigError listing every bad key at once (named
    after `source`), so one `ewarung config check` run shows all there is to fix."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}. Fix the syntax and try again.") from None
    lines, sections = [], {}
    for name, data in raw.items():
        if name not in SECTIONS:
            lines.append(f"  - {name}: unknown key (value {data!r}); remove it or check its spelling")
            continue
        sections[name], problems = _section(name, data)
        lines += problems
    if lines:
        raise ConfigError("\n".join([f"{source}: {len(lines)} problem(s) in the configuration:", *lines,
                                     "Fix these keys and run `ewarung config check FILE` again."]))
    return Config(**sections)  # type: ignore[arg-type]


def load_config(path: str | Path | None = None) -> Config:
    """Load `path`, else $EWARUNG_CONFIG, else the built-in demo configuration."""
    if path is None:
        path = os.environ.get(ENV_VAR) or None
    if path is None:
        return demo_config()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file; check --config or ${ENV_VAR}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration ({exc})") from None
    return parse_config(text, str(path))


def demo_config(data_dir: Path | None = None) -> Config:
    """The built-in demo: virtual card on vpcd, virtual printer on loopback, sample city."""
    base = Config(demo=DemoSection())
    return base if data_dir is None else base.with_data_dir(data_dir)


def config_dict(config: Config | _Section) -> dict:
    """The configuration as plain TOML-able values: paths as text, unset (None) keys left out."""

    def strip(obj: object) -> object:
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if v is not None}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj

    return strip(msgspec.to_builtins(config, enc_hook=str))  # type: ignore[return-value]


def masked_dump(config: Config) -> dict:
    """The configuration as a dict with secrets masked, for `ewarung config show`."""

    def mask(obj: object) -> object:
        if isinstance(obj, dict):
            return {k: ("********" if k in SECRET_KEYS and v else mask(v)) for k, v in obj.items()}
        if isinstance(obj, list):
            return [mask(v) for v in obj]
        return obj

    return mask(config_dict(config))  # type: ignore[return-value]
