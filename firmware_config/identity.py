"""Device identity: the device's P-256 key pair and a certificate signing request for the city CA.

The private key is written once, mode 0600, and never printed or logged. The CSR carries the
device id as its common name (the city CA issues the MQTT client certificate from it) and the
shop id as organizational unit.
"""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from firmware_config.config import ID_PATTERN


def check_id(value: str, what: str) -> str:
    if not re.fullmatch(ID_PATTERN, value or ""):
        raise ValueError(
            f"{what} {value!r} is not valid: 1-64 characters, letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. EW-SMD-0042)"
        )
    return value


def new_private_key_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("not an EC P-256 private key")
    return key


def public_key_pem(private_pem: bytes) -> bytes:
    return load_private_key(private_pem).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def csr_pem(private_pem: bytes, device_id: str, shop_id: str, city: str) -> bytes:
    """A CSR that is stable for the same key and names (so re-provisioning changes nothing).

    ECDSA signatures are randomized, so a fresh CSR differs byte for byte each time; callers
    keep an existing CSR when `csr_matches` says it still fits the key and names.
    """
    key = load_private_key(private_pem)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, check_id(device_id, "device id")),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, shop_id),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"E-Warung {city}"),
        ]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def csr_matches(csr: bytes, private_pem: bytes, device_id: str, shop_id: str) -> bool:
    try:
        req = x509.load_pem_x509_csr(csr)
    except ValueError:
        return False
    cn = req.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ou = req.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    same_key = req.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == public_key_pem(private_pem)
    return (
        req.is_signature_valid
        and same_key
        and bool(cn)
        and cn[0].value == device_id
        and bool(ou)
        and ou[0].value == shop_id
    )


def certificate_matches_key(cert_pem: bytes, private_pem: bytes) -> bool:
    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == public_key_pem(private_pem)


def load_public_key_pem(pem: bytes) -> ec.EllipticCurvePublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("not an EC P-256 public key")
    return key
