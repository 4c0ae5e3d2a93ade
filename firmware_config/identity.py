"""Device identity: the device's P-256 key pair and a certificate signing request for the city CA.

The private key is written once, mode 0600, and never printed or logged. The CSR carries the
device id as its common name (the city CA issues the MQTT client certificate from it) and the
shop id as organizational unit. Keys are read and written by pos.signing, as everywhere else;
`load_private_key` and `load_public_key_pem` are its loaders, named here for doctor and provision.
"""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from firmware_config.config import ID_PATTERN
from pos import signing
from pos.signing import load_private_key
from pos.signing import load_public_key as load_public_key_pem

__all__ = ["certificate_matches_key", "check_id", "csr_matches", "csr_pem", "load_private_key",
           "load_public_key_pem", "new_private_key_pem", "public_key_pem"]


def check_id(value: str, what: str) -> str:
    """Refuse a device or shop id that MQTT topics, file names and
    certificate names cannot carry, with an example of a good one."""
    if not re.fullmatch(ID_PATTERN, value or ""):
        raise ValueError(
            f"{what} {value!r} is not valid: 1-64 characters, letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. EW-SMD-0042)"
        )
    return value


def new_private_key_pem() -> bytes:
    """A fresh device key (P-256, PKCS#8 PEM), made once at provisioning and never replaced."""
    return signing.private_pem(ec.generate_private_key(ec.SECP256R1()))


def public_key_pem(private_pem: bytes) -> bytes:
    """The device's public key, which the city registers to check the device's signatures."""
    return signing.public_pem(load_private_key(private_pem).public_key())


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
    """Whether an existing CSR still fits the key and names, so
    provisioning keeps it instead of writing a new one."""
    try:
        req = x509.load_pem_x509_csr(csr)
    except ValueError:
        return False
    cn = req.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ou = req.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    same_key = signing.public_pem(req.public_key()) == public_key_pem(private_pem)
    return (
        req.is_signature_valid
        and same_key
        and bool(cn)
        and cn[0].value == device_id
        and bool(ou)
        and ou[0].value == shop_id
    )


def certificate_matches_key(cert_pem: bytes, private_pem: bytes) -> bool:
    """Whether an installed client certificate was issued for this
    device key; a mismatch means the city must reissue it."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return signing.public_pem(cert.public_key()) == public_key_pem(private_pem)
