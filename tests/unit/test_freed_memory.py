"""The counter gives the 16 MiB scrypt work area of every cashier PIN check back to the system.

Without pos.ui.boot.return_freed_blocks_to_system, glibc keeps that area in the heap from the second
check on (its mmap threshold rises after the first large free), 16 MiB more for each thread that checks
PINs, for as long as the app runs. Measured in a fresh process: resident memory before and after PIN
checks on the main thread and on a worker thread, as the session does them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

CHECKS = """
import json, sys, threading
from pos.cashiers import check_pin, hash_pin
from pos.ui.boot import return_freed_blocks_to_system

if sys.argv[1] == "fixed":
    return_freed_blocks_to_system()
stored = hash_pin("1234")

def rss_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))

before = rss_kib()
for _ in range(3):
    assert check_pin("1234", stored)
worker = threading.Thread(target=lambda: [check_pin("9999", stored) for _ in range(3)])
worker.start()
worker.join()
print(json.dumps({"grew_mib": (rss_kib() - before) / 1024}))
"""


def _growth(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", CHECKS, mode], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])["grew_mib"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc behaviour")
def test_pin_checks_do_not_keep_their_work_area():
    assert _growth("fixed") < 4
    # the control: glibc as it comes keeps at least one 16 MiB area (so the test can fail)
    assert _growth("default") >= 14
