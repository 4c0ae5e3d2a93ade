"""The SSN card's command set and status words, protocol version 2 (docs/card-protocol.md is the specification)."""

from __future__ import annotations

from dataclasses import dataclass

# Proprietary AID: F0 (unregistered, proprietary RID range) + "EWSSN" + protocol version 02
AID = bytes.fromhex("F0455753534E02")
# ATR: direct convention, T=1, historical bytes "EWSSN2"; TCK = XOR of T0..last
_ATR_BODY = bytes([0x3B, 0x86, 0x80, 0x01]) + b"EWSSN2"
ATR = _ATR_BODY + bytes([__import__("functools").reduce(lambda a, b: a ^ b, _ATR_BODY[1:], 0)])

CLA_ISO = 0x00
CLA_PROP = 0x80
INS_SELECT = 0xA4
INS_GET_DATA = 0xCA
INS_INTERNAL_AUTH = 0x88
INS_VERIFY = 0x20
INS_SPEND = 0xD6
INS_LAST_TX = 0xCC
INS_GET_RESPONSE = 0xC0  # T=0 only: the terminal fetches what a 61xx announced

P2_CERTIFICATE = 0x01  # GET DATA 80 CA 00 01: the issuer-signed certificate
P2_STATE = 0x02  # GET DATA 80 CA 00 02: the card state (unsigned, informative)
P2_PIN = 0x81  # VERIFY 00 20 00 81: the cardholder PIN

CHALLENGE_LEN = 16
PIN_MIN, PIN_MAX = 4, 12
DEVICE_ID_MAX = 32
REDEMPTION_ID_MAX = 40

SW_OK = 0x9000
SW_WRONG_LENGTH = 0x6700
SW_SECURITY_NOT_SATISFIED = 0x6982
SW_PIN_BLOCKED = 0x6983
SW_CONDITIONS_NOT_SATISFIED = 0x6985
SW_COMMAND_NOT_ALLOWED = 0x6986
SW_WRONG_DATA = 0x6A80
SW_NOT_FOUND = 0x6A82
SW_NO_RECORD = 0x6A88  # referenced data not found: no transaction yet
SW_WRONG_P1P2 = 0x6B00
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00
SW_MEMORY_FAILURE = 0x6581
SW_PIN_WRONG_BASE = 0x63C0  # 63Cx: wrong PIN, x tries left
SW_BYTES_AVAILABLE = 0x6100  # 61xx (T=0): xx more bytes, fetch them with GET RESPONSE
SW_WRONG_LE = 0x6C00  # 6Cxx (T=0): resend with Le = xx

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
T_OPERATION = 0xD6  # 01 authenticate, 02 spend, 03 last transaction read back
T_DEVICE_ID = 0xD7
T_REDEMPTION_ID = 0xD8
T_AMOUNT = 0xD9
T_LINES_DIGEST = 0xDA
T_TX_DIGEST = 0xDB
T_TX_TEMPLATE = 0x75  # what the terminal asks the card to sign
T_TX_RECORD = 0x76  # the template and the counter the card gave it (the card keeps the last one)
T_TX_PROOF = 0x77  # op, challenge, digest: what the card signs (rebuilt by the verifier, never sent)

OP_AUTH = 1
OP_SPEND = 2
OP_LAST_TX = 3
AUTH_DOMAIN = b"EWSSN-STATE-v2"  # prefix of the card state the card signs
TX_DIGEST_DOMAIN = b"EWSSN-TXD-v2"  # prefix of the 76 record in the transaction digest
TX_SIGN_DOMAIN = b"EWSSN-TX-v2"  # prefix of the 77 proof the card signs
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


def spend(challenge: bytes, template: bytes) -> bytes:
    """SPEND: the fresh challenge and the transaction template; the card answers with
    the counter it gave the transaction and its signature over the digest."""
    return Command(CLA_PROP, INS_SPEND, 0x00, 0x00, tlv_challenge(challenge) + template, 0).encode()


def last_transaction(challenge: bytes) -> bytes:
    """GET LAST TRANSACTION: the card's last record, signed again over a fresh challenge."""
    return Command(CLA_PROP, INS_LAST_TX, 0x00, 0x00, challenge, 0).encode()


def get_response(length: int) -> bytes:
    """GET RESPONSE (T=0): fetch the `length` bytes a 61xx announced (0 means 256)."""
    return Command(CLA_ISO, INS_GET_RESPONSE, 0x00, 0x00, b"", length).encode()


def tlv_challenge(challenge: bytes) -> bytes:
    """The D5 challenge TLV that opens SPEND's data."""
    return bytes([T_CHALLENGE, len(challenge)]) + challenge


def split_response(resp: bytes) -> tuple[bytes, int]:
    """Split a response into data and status word; shorter than a status word is refused."""
    if len(resp) < 2:
        raise ValueError(f"response of {len(resp)} bytes has no status word")
    return bytes(resp[:-2]), (resp[-2] << 8) | resp[-1]
