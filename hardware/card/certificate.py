"""The card certificate: a compact TLV the issuer signs (not X.509; see docs/card-protocol.md).

70 { 71 { C0 version, C1 card id, C2 household id, C3 valid from, C4 valid until,
          C5 issuer key id, C6 card public key (65-byte uncompressed P-256 point) },
     72 ECDSA-SHA256 signature (DER) over "EWSSN-CERT-v1" || the whole 71 TLV }
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hardware.card import apdu, tlv
from pos.ports import CardCertificate

_ID = re.compile(r"^[A-Za-z0-9._-]{1,40}$")


class CertificateError(ValueError):
    """Malformed certificate (not a signature problem)."""


@dataclass(frozen=True)
class ParsedCertificate:
    """A decoded certificate kept with its exact signed bytes, so
    verify checks what the card sent, not a re-encoding."""

    info: CardCertificate
    card_public_key: ec.EllipticCurvePublicKey
    signed_bytes: bytes
    signature: bytes


def _date(raw: bytes) -> date:
    text = raw.decode("ascii")
    if not re.fullmatch(r"\d{8}", text):
        raise CertificateError(f"bad date {text!r}")
    return date(int(text[:4]), int(text[4:6]), int(text[6:]))


def valid_id(text: str) -> bool:
    """Card and household ids use the card spec's alphabet only (a newline would pass `$`)."""
    return _ID.fullmatch(text) is not None


def _ident(raw: bytes, what: str) -> str:
    text = raw.decode("ascii")
    if not valid_id(text):
        raise CertificateError(f"bad {what} {text!r}")
    return text


def encode_body(info: CardCertificate, card_public_key: ec.EllipticCurvePublicKey) -> bytes:
    """The certificate body (tag 71) the issuer signs, in the field order the protocol fixes."""
    point = card_public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return tlv.encode(
        apdu.T_CERT_BODY,
        tlv.encode_all(
            [
                (apdu.T_VERSION, b"\x01"),
                (apdu.T_CARD_ID, info.card_id.encode("ascii")),
                (apdu.T_HOUSEHOLD, info.household_id.encode("ascii")),
                (apdu.T_VALID_FROM, info.valid_from.strftime("%Y%m%d").encode()),
                (apdu.T_VALID_UNTIL, info.valid_until.strftime("%Y%m%d").encode()),
                (apdu.T_ISSUER_KEY_ID, info.issuer_key_id.encode("ascii")),
                (apdu.T_CARD_PUBKEY, point),
            ]
        ),
    )


def sign(info: CardCertificate, card_public_key: ec.EllipticCurvePublicKey, issuer: ec.EllipticCurvePrivateKey) -> bytes:
    """Issue a certificate for a card key: the issuer's
    ECDSA signature over the domain-separated body."""
    body = encode_body(info, card_public_key)
    sig = issuer.sign(apdu.CERT_DOMAIN + body, ec.ECDSA(hashes.SHA256()))
    return tlv.encode(apdu.T_CERT, body + tlv.encode(apdu.T_CERT_SIG, sig))


def parse(raw: bytes) -> ParsedCertificate:
    """Decode without verifying; raises CertificateError / TlvError on malformed input."""
    inner = tlv.parse_one(raw, apdu.T_CERT)
    items = tlv.parse(inner)
    if [t for t, _ in items] != [apdu.T_CERT_BODY, apdu.T_CERT_SIG]:
        raise CertificateError("certificate must be body (71) then signature (72)")
    body_value, sig = items[0][1], items[1][1]
    f = tlv.parse_map(
        body_value,
        required=(apdu.T_VERSION, apdu.T_CARD_ID, apdu.T_HOUSEHOLD, apdu.T_VALID_FROM, apdu.T_VALID_UNTIL,
                  apdu.T_ISSUER_KEY_ID, apdu.T_CARD_PUBKEY),
    )
    if f[apdu.T_VERSION] != b"\x01":
        raise CertificateError(f"unsupported certificate version {f[apdu.T_VERSION].hex()}")
    try:
        info = CardCertificate(
            card_id=_ident(f[apdu.T_CARD_ID], "card id"),
            household_id=_ident(f[apdu.T_HOUSEHOLD], "household id"),
            valid_from=_date(f[apdu.T_VALID_FROM]),
            valid_until=_date(f[apdu.T_VALID_UNTIL]),
            issuer_key_id=_ident(f[apdu.T_ISSUER_KEY_ID], "issuer key id"),
        )
        point = f[apdu.T_CARD_PUBKEY]
        if len(point) != 65 or point[0] != 0x04:
            raise CertificateError("card public key must be a 65-byte uncompressed P-256 point")
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CertificateError(str(exc)) from exc
    body_tlv = tlv.encode(apdu.T_CERT_BODY, body_value)
    return ParsedCertificate(info, key, body_tlv, sig)


def verify(parsed: ParsedCertificate, issuer_public_key: ec.EllipticCurvePublicKey) -> bool:
    """Whether the issuer's key signed this certificate; False,
    not an exception, so the client names the refusal."""
    try:
        issuer_public_key.verify(parsed.signature, apdu.CERT_DOMAIN + parsed.signed_bytes, ec.ECDSA(hashes.SHA256()))
        return True
    except (InvalidSignature, ValueError):
        return False


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """Issuer key id: first 8 bytes of SHA-256 of the uncompressed point, hex."""
    import hashlib

    point = public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return hashlib.sha256(point).hexdigest()[:16]
