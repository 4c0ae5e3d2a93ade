"""kill -9 while the card writes its memory: the card file is always whole (old or new)."""

import os
import random
import signal
import subprocess
import sys
import time

from hardware.card.cardfile import CardFile
from tests.conftest import ROOT

WRITER = """
import sys
from hardware.card.cardfile import CardFile
card = CardFile.load(sys.argv[1])
print("ready", flush=True)
while True:
    card.memory.counter += 1
    card.memory.spent += 1000
    card.save()
"""


def test_kill_during_writes_never_tears_the_file(deck):
    path = deck["holder"]
    rng = random.Random(7)
    last = 0
    for _ in range(15):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        m = CardFile.load(path).memory  # parses: never torn
        assert m.spent == m.counter * 1000 and m.counter >= last
        last = m.counter
    assert last > 0
