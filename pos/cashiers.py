"""Cashiers and supervisors: PINs kept only as scrypt hashes (a slow KDF).

scrypt comes from cryptography, which the counter loads for card signatures anyway, not from
hashlib: the counter process does without the system OpenSSL that hashlib's scrypt needs
(pos.cli.main.COUNTER_NEVER_LOADS). Same algorithm, same parameters, same stored hashes.
"""

from __future__ import annotations

import hmac
import math
import secrets

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from pos.clock import SystemClock
from pos.db import Cashier, database
from pos.refusals import Reason, Refusal
from pos.staff_lockout import CounterService, StaffLockout
from pos.staff_roles import APPROVERS, ROLES

_N, _R, _P = 2**14, 8, 1
_MAX_WORK_BYTES = 32 * 2**20  # hashlib.scrypt's own cap; ours take 16 MiB


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(pin.encode())


def hash_pin(pin: str) -> str:
    """What a PIN is stored as (scrypt$n$r$p$salt$hash): the PIN never
    reaches the database, and a copied database is slow to brute-force."""
    if not pin.isdigit() or not 4 <= len(pin) <= 8:
        raise ValueError("a cashier PIN is 4 to 8 digits")
    salt = secrets.token_bytes(16)
    digest = _scrypt(pin, salt, _N, _R, _P)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def check_pin(pin: str, stored: str) -> bool:
    """Whether a PIN matches a stored hash, compared in constant time; a hash
    hash_pin did not write, or one too costly for the device, matches nothing."""
    try:
        algo, n, r, p, salt, digest = stored.split("$")
        cost = int(n), int(r), int(p)
        if algo != "scrypt" or 128 * math.prod(cost) > _MAX_WORK_BYTES:
            return False  # a stored hash that would take more memory than the device has is not ours
        got = _scrypt(pin, bytes.fromhex(salt), *cost)
    except (ValueError, TypeError, OverflowError):  # not a hash we wrote: no PIN matches it
        return False
    return hmac.compare_digest(got.hex(), digest)


def add_cashier(cashier_id: str, name: str, pin: str, role: str = "cashier") -> Cashier:
    """Register staff with a role the sign-in and supervisor
    checks know; the PIN is hashed here, never stored."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    return Cashier.create(id=cashier_id, name=name, role=role, pin_hash=hash_pin(pin))


def authenticate(cashier_id: str, pin: str, *, supervisor: bool = False,
                 lockout: StaffLockout | None = None) -> Cashier:
    """The active staff member this PIN belongs to, or a Refusal saying why not (unknown, wrong PIN,
    wait or locked after too many wrong ones, not a supervisor when one is needed).

    Every PIN check goes through the lockout, so no path is an unlimited guessing oracle; without one
    given, failures are still counted and journaled (a tool with no device key to report them).
    """
    lockout = lockout or StaffLockout(database, SystemClock())
    purpose = "approval" if supervisor else "sign_in"
    cashier = Cashier.get_or_none((Cashier.id == cashier_id) & (Cashier.active == True))  # noqa: E712
    if cashier is None:
        raise lockout.unknown(cashier_id, purpose)
    lockout.may_try(cashier)
    if not check_pin(pin, cashier.pin_hash):
        raise lockout.failed(cashier, purpose)
    lockout.passed(cashier.id)
    if supervisor and cashier.role not in APPROVERS:
        raise Refusal(Reason.NOT_A_SUPERVISOR, cashier_id)
    return cashier


def approve(service: CounterService, supervisor_id: str, pin: str) -> Cashier:
    """A supervisor's PIN on a void or an override: limited like a sign-in, per supervisor, with
    wrong ones reported to the city by the device."""
    return authenticate(supervisor_id, pin, supervisor=True, lockout=StaffLockout.beside(service))
