"""ES256 signatures and JWS compact serialization (RFC 7515) for everything that crosses a wire.

Messages to and from the city, ledger files and receipt QR codes are JWS compact tokens:
``base64url(header) . base64url(payload) . base64url(r || s)``, header
``{"alg":"ES256","kid":...,"typ":...}``. Any JOSE library in any language can check them,
which is the point: other agencies must be able to consume what we send.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import pybase64
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

MAX_TOKEN_BYTES = 16 * 1024 * 1024


class Signer(Protocol):
    """Port: something that signs with a private key we do not hand around."""

    key_id: str

    def sign(self, data: bytes) -> bytes:
        """Return the raw 64-byte ES256 signature (r || s) over `data`."""
        ...


class BadSignature(ValueError):
    """The token is malformed, signed by an unknown key, or its signature does not verify."""


class EcdsaSigner:
    """A Signer over a P-256 private key held in this process (device, city and demo keys)."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey, key_id: str) -> None:
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError("ES256 needs a P-256 key")
        self._key = private_key
        self.key_id = key_id

    def sign(self, data: bytes) -> bytes:
        """The raw r || s signature ES256 wants, not the DER that cryptography returns."""
        der = self._key.sign(data, _ES256)
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The matching public key, to publish or to check our own tokens."""
        return self._key.public_key()


_ES256 = ec.ECDSA(hashes.SHA256())  # immutable: one for every signature and verification


def verify_raw(public_key: ec.EllipticCurvePublicKey, data: bytes, signature: bytes) -> bool:
    """Check a raw r || s ES256 signature; returns False rather
    than raising, so each caller gives its own reason."""
    if len(signature) != 64:
        return False
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        public_key.verify(der, data, _ES256)
    except InvalidSignature:
        return False
    return True


def b64url(data: bytes) -> str:
    """Base64url without padding, as JWS requires."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str | bytes) -> bytes:
    """Strict base64url (text, or its ASCII bytes as a token's parts come): padding, the standard
    alphabet's + and /, whitespace and any other character are refused, so one token has one
    spelling. The city decodes three parts of every message, so the decoding and the check are
    pybase64's (SIMD, validating), not a scan in Python."""
    try:
        data = text.encode("ascii") if isinstance(text, str) else text
    except UnicodeEncodeError:
        raise BadSignature("not base64url: not ASCII") from None
    if not isinstance(data, bytes) or data.find(b"=") >= 0 or data.find(b"+") >= 0 or data.find(b"/") >= 0:
        raise BadSignature("not base64url")  # find: the same test as `in`, cheaper on bytes
    try:
        return pybase64.b64decode(data + b"=" * (-len(data) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadSignature(f"not base64url: {exc}") from None


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)  # one for every call


def _no_floats(o: object) -> None:
    if isinstance(o, float):
        raise TypeError("floats are not allowed in signed messages")
    if isinstance(o, dict):
        o = o.values()
    elif not isinstance(o, list | tuple):
        return
    for v in o:
        if type(v) is not str and type(v) is not int:  # the usual leaves are passed without a call each
            _no_floats(v)


def canonical_json(obj: object) -> bytes:
    """Deterministic JSON bytes: sorted keys, no spaces, UTF-8. Floats are refused (money!)."""
    _no_floats(obj)
    return _CANONICAL.encode(obj).encode("utf-8")


@lru_cache(maxsize=64)
def _header(key_id: str, typ: str) -> str:
    """A JWS header, encoded once per signer and kind of token (the city signs one ack per device per batch)."""
    return b64url(canonical_json({"alg": "ES256", "kid": key_id, "typ": typ}))


def jws_sign(payload: bytes, signer: Signer, typ: str) -> bytes:
    """Sign a payload into a JWS compact token (ES256, the
    signer's kid, `typ` naming what kind of token it is)."""
    signing_input = f"{_header(signer.key_id, typ)}.{b64url(payload)}".encode("ascii")
    return signing_input + b"." + b64url(signer.sign(signing_input)).encode("ascii")


@dataclass(frozen=True)
class VerifiedToken:
    """A token whose signature verified: its header and the exact payload bytes that were signed."""

    header: dict
    payload: bytes

    def json(self) -> dict:
        """The payload as a JSON object; anything else is refused
        like a bad signature, since no caller expects it."""
        try:
            obj = json.loads(self.payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadSignature(f"payload is not JSON: {exc}") from None
        except RecursionError:  # "[[[[..." thousands deep: json.loads gives up on the stack
            raise BadSignature("payload JSON is nested too deeply") from None
        if not isinstance(obj, dict):
            raise BadSignature("payload is not a JSON object")
        return obj


def jws_peek(token: bytes | str) -> dict:
    """The header of a token, unverified: only to pick the key that will verify it."""
    parts = _split(token)
    try:
        header = json.loads(b64url_decode(parts[0]))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadSignature(f"header is not JSON: {exc}") from None
    except RecursionError:  # unsigned input: a header nested thousands deep must not crash a reader
        raise BadSignature("header JSON is nested too deeply") from None
    if not isinstance(header, dict) or header.get("alg") != "ES256" or not isinstance(header.get("kid"), str):
        raise BadSignature("header must be a JSON object with alg ES256 and a string kid")
    return header


def jws_verify(
    token: bytes | str, keys: dict[str, ec.EllipticCurvePublicKey], typ: str | None = None
) -> VerifiedToken:
    """Verify a token against the trusted keys by kid; raise BadSignature with the reason."""
    parts = _split(token)
    header = jws_peek(token)
    if typ is not None and header.get("typ") != typ:
        raise BadSignature(f"expected a {typ} token, got {header.get('typ')!r}")
    key = keys.get(header["kid"])
    if key is None:
        raise BadSignature(f"signed by unknown key {header['kid']!r}")
    signature = b64url_decode(parts[2])
    if not verify_raw(key, f"{parts[0]}.{parts[1]}".encode("ascii"), signature):
        raise BadSignature(f"signature by {header['kid']!r} does not verify (tampered or forged)")
    return VerifiedToken(header, b64url_decode(parts[1]))


def _split(token: bytes | str) -> list[str]:
    if isinstance(token, bytes):
        if len(token) > MAX_TOKEN_BYTES:
            raise BadSignature(f"token larger than {MAX_TOKEN_BYTES} bytes")
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise BadSignature("token is not ASCII") from None
    if not isinstance(token, str):
        raise BadSignature("token must be bytes or text")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise BadSignature("not a JWS compact token (three base64url parts joined by dots)")
    return parts


def load_private_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    """Read a PEM private key and insist on P-256, so a wrong
    key file fails at start, not at the first signature."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("expected an EC P-256 private key in PEM")
    return key


def load_public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    """Read a PEM public key and insist on P-256, so a wrong
    trust anchor fails at start, not at the first token."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("expected an EC P-256 public key in PEM")
    return key


def private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The private key as unencrypted PKCS#8 PEM, the form load_private_key reads back."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    """The public key as SubjectPublicKeyInfo PEM, the form load_public_key reads back."""
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
