"""Device registry: device id -> public key (PEM), shop, status. Only registered, active
devices' messages are accepted; retiring a device stops accepting its new messages."""

from __future__ import annotations

from datetime import datetime

from pos.clock import iso
from pos.signing import load_public_key
from sync.central.store import Device, central_db


def add_device(device_id: str, pem: bytes, *, shop_id: str = "", now: datetime, replace: bool = False) -> Device:
    """Register a device's public key: only registered devices' messages are stored, and a key is replaced
    only on purpose."""
    if not device_id or any(c in device_id for c in "/+#") or len(device_id) > 64:
        raise ValueError(f"device id {device_id!r} must be 1-64 characters without / + #")
    try:
        load_public_key(pem)
    except ValueError as exc:
        raise ValueError(f"the key for {device_id} is not an EC P-256 public key in PEM: {exc}") from None
    with central_db.atomic():
        existing = Device.get_or_none(Device.id == device_id)
        if existing and not replace:
            raise ValueError(f"device {device_id} is already registered; pass --replace to change its key")
        Device.delete().where(Device.id == device_id).execute()
        Device.insert(id=device_id, public_key_pem=pem.decode("ascii"), shop_id=shop_id, status="active",
                      added_at=iso(now)).execute()
    return Device.get_by_id(device_id)


def set_status(device_id: str, status: str) -> None:
    """Retire (or reactivate) a device: a lost or stolen device's new messages are refused."""
    if status not in ("active", "retired"):
        raise ValueError("status must be active or retired")
    if not Device.update(status=status).where(Device.id == device_id).execute():
        raise ValueError(f"device {device_id} is not registered (see `ewarung central device list`)")


def list_devices() -> list[Device]:
    """The registry in id order, for `ewarung central device list`."""
    return list(Device.select().order_by(Device.id))
