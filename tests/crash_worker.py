"""A child process that redeems in a loop and reports each sale after it returns (committed).

Used by the crash tests: the parent kills it with SIGKILL at random moments, restarts it,
and checks that every sale reported here survived whole, and nothing else is half there.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from pos.clock import SystemClock
from pos.db import open_database
from pos.device import DeviceIdentity
from pos.ledger import Ledger
from pos.policy import Policy
from pos.redemption import RedemptionRequest, RedemptionService
from pos.sample_city import demo_key, household_id
from pos.signing import EcdsaSigner


def main(path: str, households: int) -> None:
    db = open_database(Path(path))
    device = DeviceIdentity("EW-CRASH-0001", "SMD-CRASH", "Crash", "Jl. Crash")
    policy = replace(Policy(), offline_max_value=10**12)
    service = RedemptionService(db, Ledger(), device, EcdsaSigner(demo_key("device"), device.device_id),
                                SystemClock(), policy)
    i = 0
    print("ready", flush=True)
    while True:
        hid = household_id(10 + (i % (households - 10)))
        r = service.redeem(RedemptionRequest(hid, "kasir1", {"TAHU": 1}, card_id=f"C{i}"))
        print(f"{r.seq} {r.redemption_id}", flush=True)
        i += 1
        if i % 7 == 0:
            v = service.void(r.redemption_id, "cashier_mistake", "kasir1", "spv1")
            print(f"{v.seq} void {v.redemption_id}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
