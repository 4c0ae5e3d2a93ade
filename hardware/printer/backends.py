"""The escpos backend from config, and real-time status (DLE EOT n) with a timeout.

python-escpos 3.1 pitfalls handled here: devices open lazily (we open explicitly, so a
missing printer is a clear PrinterFault("offline") now, not an odd error at first print);
Usb timeout=0 blocks forever (we always pass timeout_s in ms); paper_status() answers
"plenty" when nothing answers (we send DLE EOT ourselves and treat silence as offline);
Dummy and File cannot read, so their status is "unknown".
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pos.ports import PrinterFault, PrinterStatus

if TYPE_CHECKING:  # pragma: no cover
    from escpos.escpos import Escpos

    from firmware_config.config import PrinterSection

DLE_EOT = b"\x10\x04"
CAN_READ_STATUS = {"network", "serial", "usb"}


def _prepare_env() -> None:
    os.environ.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", str(Path.home() / ".cache" / "ewarung-escpos"))
    Path(os.environ["ESCPOS_CAPABILITIES_PICKLE_DIR"]).mkdir(parents=True, exist_ok=True)


class UnknownProfile(ValueError):
    """The configured printer.profile is not in python-escpos's
    capability database; the message lists similar names."""


def profile_name(cfg: PrinterSection) -> str | None:
    """The escpos profile to ask for; "default" and "" mean escpos's own default."""
    return None if cfg.profile in ("", "default") else cfg.profile


def check_profile(name: str | None) -> None:
    """A configured capability profile must exist in python-escpos's capability database."""
    if name is None:
        return
    _prepare_env()
    from escpos.capabilities import CAPABILITIES

    profiles = CAPABILITIES.get("profiles", {})
    if name not in profiles:
        close = sorted(p for p in profiles if name.lower()[:4] in p.lower())[:8]
        raise UnknownProfile(
            f"printer.profile = {name!r} is not a python-escpos capability profile"
            + (f"; similar: {', '.join(close)}" if close else "")
            + '. Use "default" or a profile name from python-escpos (escpos/capabilities.json).'
        )


def make_dummy(profile: str | None = None) -> Escpos:
    """An in-memory printer with the configured profile, to lay out bytes without a device."""
    check_profile(profile)
    from escpos.printer import Dummy

    return Dummy(profile=profile)


def make_backend(cfg: PrinterSection) -> Escpos:
    """Create (not open) the escpos printer for the configured backend."""
    _prepare_env()
    from escpos import printer

    profile = profile_name(cfg)
    check_profile(profile)
    if cfg.kind == "network":
        return printer.Network(host=cfg.host, port=cfg.port, timeout=cfg.timeout_s, profile=profile)
    if cfg.kind == "serial":
        return printer.Serial(devfile=cfg.serial_port, baudrate=cfg.baudrate, timeout=cfg.timeout_s, profile=profile)
    if cfg.kind == "usb":
        return printer.Usb(cfg.usb_vendor, cfg.usb_product, timeout=int(cfg.timeout_s * 1000), profile=profile)
    if cfg.kind == "file":
        return printer.File(devfile=str(cfg.path), profile=profile)
    if cfg.kind == "dummy":
        return printer.Dummy(profile=profile)
    raise ValueError(f"unknown printer kind {cfg.kind!r}")


def describe(cfg: PrinterSection) -> str:
    """The configured printer in words, for fault messages the technician can act on."""
    return {
        "network": f"network printer {cfg.host}:{cfg.port}",
        "serial": f"serial printer {cfg.serial_port} at {cfg.baudrate} baud",
        "usb": f"USB printer {cfg.usb_vendor:04x}:{cfg.usb_product:04x}",
        "file": f"printer device file {cfg.path}",
        "dummy": "dummy printer (nothing is printed)",
    }[cfg.kind]


def open_backend(cfg: PrinterSection) -> Escpos:
    """Create and open the backend now; PrinterFault('offline') if it is not there."""
    from escpos.exceptions import DeviceNotFoundError

    try:
        p = make_backend(cfg)
    except UnknownProfile as exc:
        raise PrinterFault("error", str(exc)) from None
    if cfg.kind == "dummy":
        return p
    try:
        p.open(raise_not_found=True)
    except (DeviceNotFoundError, OSError) as exc:
        raise PrinterFault("offline", f"{describe(cfg)}: {str(exc).strip()}") from None
    except Exception as exc:  # pyusb/pyserial raise their own types  # noqa: BLE001
        raise PrinterFault("offline", f"{describe(cfg)}: {type(exc).__name__}: {exc}") from None
    if p._device in (None, False):
        raise PrinterFault("offline", f"{describe(cfg)}: could not be opened")
    return p


class SocketStatusLine:
    """A network printer's socket, for the status query alone. DLE EOT is three bytes each way and
    needs no python-escpos: the counter asks an idle printer how it is every few seconds, and
    that must not load escpos and all it imports before the first receipt does."""

    def __init__(self, sock: socket.socket) -> None:
        self._device = sock

    def _raw(self, data: bytes) -> None:
        """Send the query bytes (query_status writes through this, as through an escpos backend)."""
        self._device.sendall(data)

    def close(self) -> None:
        """Hang up: the next query opens a new connection, as printing does."""
        self._device.close()


def open_status_line(cfg: PrinterSection) -> Escpos | SocketStatusLine:
    """What to ask for status: a bare socket for a network printer, the escpos backend otherwise
    (serial and USB go through pyserial and pyusb, which escpos drives). PrinterFault('offline')
    if it is not there."""
    if cfg.kind != "network":
        return open_backend(cfg)
    try:
        sock = socket.create_connection((cfg.host, cfg.port), timeout=cfg.timeout_s)
    except OSError as exc:
        raise PrinterFault("offline", f"{describe(cfg)}: {str(exc).strip()}") from None
    return SocketStatusLine(sock)


def _read_byte(p: Escpos, kind: str, timeout_s: float) -> bytes:
    """One status byte, or b'' on silence within timeout_s."""
    deadline = time.monotonic() + timeout_s
    if kind == "network":
        sock: socket.socket = p._device  # type: ignore[assignment]
        sock.settimeout(timeout_s)
        try:
            return sock.recv(1)
        except (TimeoutError, OSError):
            return b""
    if kind == "serial":  # escpos reads 16 bytes, which waits the whole timeout: read the one byte
        dev = p._device
        dev.timeout = timeout_s  # type: ignore[union-attr]
        try:
            return bytes(dev.read(1))  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001
            return b""
    while time.monotonic() < deadline:
        try:
            data = p._read()
        except Exception:  # noqa: BLE001  (pyusb timeout / serial error: both mean silence)
            return b""
        if data:
            return bytes(data[-1:])
        time.sleep(0.01)
    return b""


def query_status(p: Escpos, kind: str, timeout_s: float) -> PrinterStatus:
    """Ask the printer itself (DLE EOT 1, 2, 4). Silence means offline, never 'plenty'."""
    if kind not in CAN_READ_STATUS:
        return PrinterStatus(online=None)
    answers = {}
    for n in (1, 2, 4):
        try:
            p._raw(DLE_EOT + bytes([n]))
        except OSError:
            return PrinterStatus(online=False)
        byte = _read_byte(p, kind, timeout_s)
        if not byte or (byte[0] & 0x93) != 0x12:  # fixed bits: 1 and 4 set, 0 and 7 clear
            return PrinterStatus(online=False)
        answers[n] = byte[0]
    offline = bool(answers[1] & 0x08)
    cover_open = bool(answers[2] & 0x04)
    paper_end = bool(answers[4] & 0x60) or bool(answers[2] & 0x20)
    near_end = bool(answers[4] & 0x0C)
    paper = "out" if paper_end else ("low" if near_end else "ok")
    return PrinterStatus(online=not offline, paper=paper, cover_open=cover_open)


def fault_of(status: PrinterStatus) -> PrinterFault | None:
    """The fault a status means for printing, or None if it may print (or cannot tell)."""
    if status.online is False and status.paper == "unknown":
        return PrinterFault("offline", "the printer does not answer")
    if status.cover_open:
        return PrinterFault("cover_open", "the paper cover is open")
    if status.paper == "out":
        return PrinterFault("paper_out", "no paper")
    if status.online is False:
        return PrinterFault("offline", "the printer reports it is offline")
    return None
