"""The SSN card's command set and status words (docs/card-protocol.md is the specification)."""

from __future__ import annotations

from dataclasses import dataclass

# Proprietary AID: F0 (unregistered, proprietary RID range) + "EWSSN" + version 01
AID = bytes.fromhex("F0455753534E01")
# ATR: direct convention, T=1, historical bytes "EWSSN1"; TCK = XOR of T0..last
_ATR_BODY = bytes([0x3B, 0x86, 0x80, 0x01]) + b"EWSSN1"
ATR = _ATR_BODY + bytes([__import__("functools").reduce(lambda a, b: a ^ b, _ATR_BODY[1:], 0)])

CLA_ISO = 0x00
CLA_PROP = 0x80
INS_SELECT = 0xA4
INS_GET_DATA = 0xCA
INS_INTERNAL_AUTH = 0x88
INS_VERIFY = 0x20
INS_UPDATE_SPEND = 0xD6

P2_CERTIFICATE = 0x01  # GET DATA 80 CA 00 01: the issuer-signed certificate
P2_STATE = 0x02  # GET DATA 80 CA 00 02: the card state (unsigned, informative)
P2_PIN = 0x81  # VERIFY 00 20 00 81: the cardholder PIN

CHALLENGE_LEN = 16
PIN_MIN, PIN_MAX = 4, 12

SW_OK = 0x9000
SW_WRONG_LENGTH = 0x6700
SW_SECURITY_NOT_SATISFIED = 0x6982
SW_PIN_BLOCKED = 0x6983
SW_CONDITIONS_NOT_SATISFIED = 0x6985
SW_COMMAND_NOT_ALLOWED = 0x6986
SW_WRONG_DATA = 0x6A80
SW_NOT_FOUND = 0x6A82
SW_WRONG_P1P2 = 0x6B00
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00
SW_MEMORY_FAILURE = 0x6581
SW_PIN_WRONG_BASE = 0x63C0  # 63Cx: wrong PIN, x tries left

# TLV tags
T_CERT = 0x70  # certificate: 71 body + 72 signature
T_CERT_BODY = 0x71
T_CERT_SIG = 0x72
T_VERSION = 0xC0
T_CARD_ID = 0xC1
T_HOUSEHOLD = 0xC2
T_VALID_FROM = 0xC3
T_VALID_UNTIL = 0xC4
T_ISSUER_KEY_ID = 0xC5
T_CARD_PUBKEY = 0xC6
T_STATE = 0x73  # signed card state
T_STATE_SIG = 0x74
T_PERIOD = 0xD0
T_SPENT = 0xD1
T_COUNTER = 0xD2
T_TRIES_LEFT = 0xD3
T_PIN_VERIFIED = 0xD4
T_CHALLENGE = 0xD5
T_OPERATION = 0xD6  # 01 authenticate, 02 spend update

OP_AUTH = 1
OP_SPEND = 2
AUTH_DOMAIN = b"EWSSN-STATE-v1"  # prefix of what the card signs
CERT_DOMAIN = b"EWSSN-CERT-v1"  # prefix of what the issuer signs


@dataclass(frozen=True)
class Command:
    """One short APDU as its ISO 7816-4 fields, so commands are
    built and parsed in one place and never by hand."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def encode(self) -> bytes:
        """The bytes on the wire; short APDUs only, as the card protocol uses nothing longer."""
        out = bytes([self.cla, self.ins, self.p1, self.p2])
        if self.data:
            if len(self.data) > 255:
                raise ValueError("short APDU data is at most 255 bytes")
            out += bytes([len(self.data)]) + self.data
        if self.le is not None:
            out += bytes([self.le & 0xFF])
        return out


def decode_command(raw: bytes) -> Command:
    """Parse a short APDU (cases 1-4). Raises ValueError with SW_WRONG_LENGTH semantics."""
    if len(raw) < 4:
        raise ValueError("APDU shorter than 4 bytes")
    cla, ins, p1, p2 = raw[:4]
    body = raw[4:]
    if not body:
        return Command(cla, ins, p1, p2)
    if len(body) == 1:
        return Command(cla, ins, p1, p2, b"", body[0])
    lc = body[0]
    if lc == 0:
        raise ValueError("extended APDUs are not supported")
    if len(body) == 1 + lc:
        return Command(cla, ins, p1, p2, body[1:], None)
    if len(body) == 2 + lc:
        return Command(cla, ins, p1, p2, body[1 : 1 + lc], body[-1])
    raise ValueError("Lc does not match the APDU length")


def select() -> bytes:
    """SELECT the SSN applet by its AID: the first command of every session."""
    return Command(CLA_ISO, INS_SELECT, 0x04, 0x00, AID, 0).encode()


def get_certificate() -> bytes:
    """GET DATA for the issuer-signed certificate, read before the card is challenged."""
    return Command(CLA_PROP, INS_GET_DATA, 0x00, P2_CERTIFICATE, b"", 0).encode()


def get_state() -> bytes:
    """GET DATA for the unsigned card state: informative only,
    never believed (the bench's baseline round trip)."""
    return Command(CLA_PROP, INS_GET_DATA, 0x00, P2_STATE, b"", 0).encode()


def internal_authenticate(challenge: bytes) -> bytes:
    """INTERNAL AUTHENTICATE with a fresh challenge: the card signs
    its state over it, proving it holds the certified key."""
    return Command(CLA_ISO, INS_INTERNAL_AUTH, 0x00, 0x00, challenge, 0).encode()


def verify_pin(pin: str) -> bytes:
    """VERIFY the cardholder PIN (ASCII digits); the result
    is believed only from a signed state afterwards."""
    return Command(CLA_ISO, INS_VERIFY, 0x00, P2_PIN, pin.encode("ascii")).encode()


def update_spend(payload: bytes) -> bytes:
    """UPDATE SPEND with a TLV payload (challenge, period,
    total); the card answers with its newly signed state."""
    return Command(CLA_PROP, INS_UPDATE_SPEND, 0x00, 0x00, payload, 0).encode()


def split_response(resp: bytes) -> tuple[bytes, int]:
    """Split a response into data and status word; shorter than a status word is refused."""
    if len(resp) < 2:
        raise ValueError(f"response of {len(resp)} bytes has no status word")
    return bytes(resp[:-2]), (resp[-2] << 8) | resp[-1]
