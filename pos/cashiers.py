"""Cashiers and supervisors: PINs kept only as scrypt hashes (a slow KDF, stdlib)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from pos.db import Cashier
from pos.refusals import Reason, Refusal

_N, _R, _P = 2**14, 8, 1


def hash_pin(pin: str) -> str:
    if not pin.isdigit() or not 4 <= len(pin) <= 8:
        raise ValueError("a cashier PIN is 4 to 8 digits")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def check_pin(pin: str, stored: str) -> bool:
    try:
        algo, n, r, p, salt, digest = stored.split("$")
        if algo != "scrypt":
            return False
        got = hashlib.scrypt(pin.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


def add_cashier(cashier_id: str, name: str, pin: str, role: str = "cashier") -> Cashier:
    if role not in ("cashier", "supervisor", "technician"):
        raise ValueError("role must be cashier, supervisor or technician")
    return Cashier.create(id=cashier_id, name=name, role=role, pin_hash=hash_pin(pin))


def authenticate(cashier_id: str, pin: str, *, supervisor: bool = False) -> Cashier:
    cashier = Cashier.get_or_none((Cashier.id == cashier_id) & (Cashier.active == True))  # noqa: E712
    if cashier is None:
        raise Refusal(Reason.CASHIER_UNKNOWN, cashier_id)
    if not check_pin(pin, cashier.pin_hash):
        raise Refusal(Reason.CASHIER_PIN_WRONG, cashier_id)
    if supervisor and cashier.role != "supervisor":
        raise Refusal(Reason.NOT_A_SUPERVISOR, cashier_id)
    return cashier
