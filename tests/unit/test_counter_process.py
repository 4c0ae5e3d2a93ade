"""The counter process runs without the system OpenSSL (pos.cli.main.COUNTER_NEVER_LOADS): its
PIN hashes, card PIN hashes and journal hashes must work there, and give what they gave before."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from hardware.card.cardfile import _pin_hash
from pos.cashiers import check_pin, hash_pin
from pos.cli.main import COUNTER_NEVER_LOADS
from pos.journal import GENESIS, _digest

ROOT = Path(__file__).resolve().parents[2]

# Written by hashlib.scrypt / hashlib.pbkdf2_hmac (OpenSSL) before the counter stopped loading it.
OLD_CASHIER_HASH = ("scrypt$16384$8$1$652d776172756e672d73616c742d3031$"
                    "45accd88cc81c7b3dc1a94c775ebed89d8a8b7da2d81f7139b88e4706b79bfc9")
OLD_CARD_PIN_HASH = "b5955e49052f69d120e2ec8a5c2d8ef3b3197349ddc497fbcc4421abf187f735"
JOURNAL_DIGEST = _digest(GENESIS, 1, "t", "sale", "r", "{}")  # in this process, with OpenSSL


def test_hashes_written_with_openssl_still_verify():
    assert check_pin("2468", OLD_CASHIER_HASH)
    assert not check_pin("2469", OLD_CASHIER_HASH)
    assert _pin_hash(b"card-salt-000001", b"1234").hex() == OLD_CARD_PIN_HASH


def test_stored_cashier_hashes_that_are_not_ours_match_no_pin():
    for stored in ("", "garbage", "md5$1$2$3$00$00", "scrypt$1048576$8$1$00$00",  # 1 GiB of work area
                   "scrypt$3$8$1$00$00", "scrypt$-4$8$1$00$00", "scrypt$16384$-8$-1$00$00",
                   "scrypt$16384$8$1$zz$00", "scrypt$x$8$1$00$00"):
        assert not check_pin("1234", stored), stored
    assert check_pin("123456", hash_pin("123456"))


def test_counter_code_runs_without_the_system_openssl():
    script = textwrap.dedent(f"""
        import sys
        from pos.cli.main import keep_counter_modules_out
        keep_counter_modules_out()
        assert all(sys.modules[m] is None for m in {COUNTER_NEVER_LOADS!r})
        import asyncio, hashlib, hmac, secrets  # what Kivy, peewee and our code import
        from pos.cashiers import check_pin, hash_pin
        from pos.journal import GENESIS, _digest
        from hardware.card.cardfile import CardMemory, new_pin, _pin_hash
        assert check_pin("2468", {OLD_CASHIER_HASH!r})
        assert check_pin("1357", hash_pin("1357")) and not check_pin("1358", hash_pin("1357"))
        assert _pin_hash(b"card-salt-000001", b"1234").hex() == {OLD_CARD_PIN_HASH!r}
        assert hashlib.sha256(b"abc").hexdigest().startswith("ba7816bf")
        assert _digest(GENESIS, 1, "t", "sale", "r", "{{}}") == {JOURNAL_DIGEST!r}
        loaded = [m for m in ("_hashlib", "_ssl", "ssl") if sys.modules.get(m) is not None]
        assert not loaded, loaded
        print("ok")
    """)
    res = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]
