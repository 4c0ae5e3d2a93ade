"""Who this appliance is: the identity printed on receipts and carried in every message."""

from __future__ import annotations

from dataclasses import dataclass

from pos.household_ids import DEFAULT_AREA_CODE


@dataclass(frozen=True)
class DeviceIdentity:
    """The device's and its shop's names and ids from the config: printed on
    receipts, stamped on every message, `city` picks the ledger topics, and `area_code` is the
    city's part of its household ids (pos.household_ids)."""

    device_id: str
    shop_id: str
    shop_name: str
    shop_address: str
    city: str = "samarinda"
    hotline: str = ""
    area_code: str = DEFAULT_AREA_CODE
