"""The virtual card's persistent memory: a JSON file, written atomically (temp + fsync + rename).

It holds what a real card keeps in EEPROM: the card's private key (it is a virtual card), the
certificate, the PIN (salted hash), the PIN try counter, the spend record, the transaction
counter and the last transaction's record. A kill at any moment leaves either the old or the new
file, never a torn one.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

FORMAT = "ewarung-ssn-card/1"


class CardFileError(ValueError):
    """A card file that is missing, unreadable or not ours; the message says how to make one."""


@dataclass
class CardMemory:
    """What a real card keeps in EEPROM, as the JSON a virtual card is saved in."""

    card_private_key_pem: str
    certificate_hex: str
    pin_salt_hex: str
    pin_hash_hex: str
    pin_tries_max: int
    pin_tries_left: int
    spend_period: str  # "" before the first spend
    spent: int
    counter: int
    label: str = ""
    last_tx_hex: str = ""  # the 76 record of the last SPEND, "" before the first (protocol v2)

    def pin_matches(self, pin: bytes) -> bool:
        """Compare a PIN with the stored salted hash in
        constant time, as a card's secure compare would."""
        return hmac.compare_digest(_pin_hash(bytes.fromhex(self.pin_salt_hex), pin).hex(), self.pin_hash_hex)


def _pin_hash(salt: bytes, pin: bytes) -> bytes:
    """PBKDF2-HMAC-SHA256, 1000 rounds (cryptography's, not hashlib's: the counter process runs the
    demo deck without the system OpenSSL, see pos.cli.main.COUNTER_NEVER_LOADS)."""
    return PBKDF2HMAC(algorithm=SHA256(), length=32, salt=salt, iterations=1000).derive(pin)


def new_pin(pin: str) -> tuple[str, str]:
    """Salt and hash a PIN for a new card file, refusing PINs the applet would refuse."""
    if not (pin.isdigit() and 4 <= len(pin) <= 12):
        raise CardFileError("the PIN must be 4 to 12 digits")
    salt = secrets.token_bytes(16)
    return salt.hex(), _pin_hash(salt, pin.encode()).hex()


class CardFile:
    """A card file on disk plus its loaded memory; save() is atomic and durable."""

    def __init__(self, path: Path, memory: CardMemory) -> None:
        self.path = Path(path)
        self.memory = memory

    @classmethod
    def load(cls, path: Path) -> CardFile:
        """Read a card file, with an error that says what to run when it is missing or foreign."""
        path = Path(path)
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise CardFileError(f"no card file at {path}; make one with `ewarung card issue` or `ewarung card deck`") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise CardFileError(f"{path} is not a readable card file: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise CardFileError(f"{path} is not an SSN card file (format {FORMAT!r} expected)")
        doc.pop("format")
        try:
            memory = CardMemory(**doc)
        except TypeError as exc:
            raise CardFileError(f"{path}: {exc}") from exc
        return cls(path, memory)

    def save(self) -> None:
        """Write the memory atomically and durably: a kill mid-save
        leaves the old or the new card, as EEPROM writes do."""
        data = json.dumps({"format": FORMAT, **asdict(self.memory)}, indent=1).encode()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
