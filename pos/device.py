"""Who this appliance is: the identity printed on receipts and carried in every message."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceIdentity:
    """The device's and its shop's names and ids from the config: printed on
    receipts, stamped on every message, and `city` picks the ledger topics."""

    device_id: str
    shop_id: str
    shop_name: str
    shop_address: str
    city: str = "samarinda"
    hotline: str = ""
