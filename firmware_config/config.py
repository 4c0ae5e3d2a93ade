"""The device configuration: one TOML file, checked against a strict schema.

Unknown keys are errors (a typo must not silently fall back to a default). Every error names
the key, the bad value and what is allowed. Without a file, the built-in demo configuration
is used: virtual reader, virtual printer, sample city, no broker needed.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pos.device import DeviceIdentity
from pos.policy import Policy

ENV_VAR = "EWARUNG_CONFIG"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
SECRET_KEYS = {"password", "pin"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _paths_expand(cls, value: object) -> object:
        # "~someone/..." for a user this device lacks made Path.expanduser() raise RuntimeError later
        for p in value if isinstance(value, list) else [value]:
            if isinstance(p, Path):
                try:
                    p.expanduser()
                except RuntimeError:
                    raise ValueError(f"{str(p)!r} starts with ~user for a user this device does not have; "
                                     "write the full path") from None
        return value


class DeviceSection(_Section):
    id: Annotated[str, Field(pattern=ID_PATTERN)] = "EW-DEMO-0001"
    shop_id: Annotated[str, Field(pattern=ID_PATTERN)] = "SMD-DEMO-01"
    shop_name: Annotated[str, Field(min_length=1, max_length=48)] = "E-Warung Mawar (DEMO)"
    shop_address: Annotated[str, Field(max_length=96)] = "Jl. Pahlawan No. 12, Samarinda"
    city: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,32}$")] = "samarinda"
    hotline: Annotated[str, Field(max_length=48)] = "Pengaduan: 0541-123456 / WA 0811-5555-000"
    data_dir: Path = Path("~/.local/share/ewarung-demo")
    language: Literal["id", "en"] = "id"


class ReaderSection(_Section):
    kind: Literal["pcsc", "fake"] = "pcsc"
    name: str = ""
    """Substring of the PC/SC reader name to use; empty takes the first reader."""
    virtual: bool = True
    """Demo and field testing: start the project's virtual card on vpcd."""
    vpcd_port: Annotated[int, Field(ge=1, le=65535)] = 0x8C7B


class PrinterSection(_Section):
    kind: Literal["usb", "serial", "network", "file", "dummy"] = "network"
    width_mm: Literal[58, 80] = 58
    profile: str = "default"
    usb_vendor: Annotated[int, Field(ge=0, le=0xFFFF)] = 0
    usb_product: Annotated[int, Field(ge=0, le=0xFFFF)] = 0
    serial_port: str = "/dev/serial0"
    baudrate: Literal[9600, 19200, 38400, 57600, 115200] = 9600
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 9100
    path: Path = Path("/dev/usb/lp0")
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    status_query: bool = True
    """Ask the printer for its status (ESC/POS DLE EOT) before and after each receipt (usb, serial,
    network). Set false only for a printer that prints but never answers status queries."""

    @model_validator(mode="after")
    def _backend_complete(self) -> PrinterSection:
        if self.kind == "usb" and not (self.usb_vendor and self.usb_product):
            raise ValueError("printer.kind = 'usb' needs usb_vendor and usb_product (e.g. 0x04b8, 0x0202)")
        return self


class MqttSection(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    session_expiry_s: Annotated[int, Field(ge=0, le=30 * 24 * 3600)] = 7 * 24 * 3600
    inflight: Annotated[int, Field(ge=1, le=1000)] = 64
    heartbeat_s: Annotated[int, Field(ge=5, le=3600)] = 60
    retention_days: Annotated[int, Field(ge=0, le=3650)] = 90
    ack_timeout_s: Annotated[int, Field(ge=5, le=7 * 24 * 3600)] = 300
    """Republish a message the city has not acknowledged this long after its PUBACK."""
    username: str = ""
    password: str = ""

    @model_validator(mode="after")
    def _tls_complete(self) -> MqttSection:
        if self.tls and self.ca_file is None:
            raise ValueError("mqtt.tls = true needs mqtt.ca_file (the broker CA certificate)")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("mqtt.cert_file and mqtt.key_file go together: set both or neither")
        return self


class KeysSection(_Section):
    """Key paths; relative paths are taken inside the data directory."""

    device_key: Path = Path("keys/device.key.pem")
    issuer_public_keys: list[Path] = [Path("keys/issuer.pub.pem")]
    ledger_public_key: Path = Path("keys/ledger.pub.pem")
    central_public_key: Path = Path("keys/central.pub.pem")


class PolicySection(_Section):
    ledger_warn_age_hours: Annotated[int, Field(ge=1, le=24 * 90)] = 48
    ledger_max_age_hours: Annotated[int, Field(ge=1, le=24 * 365)] = 24 * 7
    ledger_expired_action: Literal["refuse", "warn"] = "refuse"
    offline_max_days: Annotated[int, Field(ge=1, le=90)] = 7
    offline_max_value: Annotated[int, Field(ge=0)] = 50_000_000
    void_window_minutes: Annotated[int, Field(ge=0, le=24 * 60)] = 30
    pin_tries: Annotated[int, Field(ge=1, le=10)] = 3
    override_cap_per_period: Annotated[int, Field(ge=0, le=1000)] = 20

    @field_validator("offline_max_value", mode="before")
    @classmethod
    def _integer_rupiah(cls, v: object) -> object:
        if isinstance(v, float):
            raise ValueError("money is whole rupiah: write an integer, e.g. 50000000")
        return v

    @model_validator(mode="after")
    def _ages_ordered(self) -> PolicySection:
        if self.ledger_warn_age_hours > self.ledger_max_age_hours:
            raise ValueError("policy.ledger_warn_age_hours must not exceed policy.ledger_max_age_hours")
        return self


class DemoSection(_Section):
    households: Annotated[int, Field(ge=9, le=2_000_000)] = 500
    seed: int = 2026


class Config(_Section):
    device: DeviceSection = DeviceSection()
    reader: ReaderSection = ReaderSection()
    printer: PrinterSection = PrinterSection()
    mqtt: MqttSection = MqttSection()
    keys: KeysSection = KeysSection()
    policy: PolicySection = PolicySection()
    demo: DemoSection | None = None

    @property
    def data_dir(self) -> Path:
        return self.device.data_dir.expanduser()

    @property
    def database_path(self) -> Path:
        return self.data_dir / "ewarung.db"

    def key_path(self, path: Path) -> Path:
        path = path.expanduser()
        return path if path.is_absolute() else self.data_dir / path

    def identity(self) -> DeviceIdentity:
        d = self.device
        return DeviceIdentity(d.id, d.shop_id, d.shop_name, d.shop_address, d.city, d.hotline)

    def to_policy(self) -> Policy:
        return Policy(**self.policy.model_dump(), language=self.device.language)


class ConfigError(ValueError):
    """The configuration is wrong; the message lists every problem and how to fix it."""


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: {exc.error_count()} problem(s) in the configuration:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"  - {loc}: unknown key (value {err['input']!r}); remove it or check its spelling")
            continue
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"  - {loc} = {err['input']!r}: {msg}")
    lines.append("Fix these keys and run `ewarung config check FILE` again.")
    return "\n".join(lines)


def parse_config(text: str, source: str = "config") -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}. Fix the syntax and try again.") from None
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None


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
    if data_dir is not None:
        base = base.model_copy(update={"device": base.device.model_copy(update={"data_dir": data_dir})})
    return base


def masked_dump(config: Config) -> dict:
    """The configuration as a dict with secrets masked, for `ewarung config show`."""

    def mask(obj: object) -> object:
        if isinstance(obj, dict):
            return {k: ("********" if k in SECRET_KEYS and v else mask(v)) for k, v in obj.items()}
        if isinstance(obj, list):
            return [mask(v) for v in obj]
        if isinstance(obj, Path):
            return str(obj)
        return obj

    return mask(config.model_dump(mode="python", exclude_none=True))  # type: ignore[return-value]
