"""Checking a card's evidence without the card: issuer chain, then the card's signature.

The city (and any auditor) runs this on every redemption and recovery report: the certificate
must be signed by a known issuer key, and the card key it certifies must have signed the
transaction the message describes (docs/mqtt-contract.md, "Card evidence"). The
encoding is hardware.card.transaction's, the one the applet and the terminal use.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from hardware.card import certificate, tlv, transaction
from pos.card_proof import CardEvidence
from pos.ports import CardCertificate


class EvidenceError(ValueError):
    """The evidence does not prove what the message says; the text is the reason to record."""


@dataclass(frozen=True)
class CertifiedCard:
    """A certificate whose issuer signature verified: who the card is and the key it signs with."""

    info: CardCertificate
    card_key: ec.EllipticCurvePublicKey


class CertificateCache:
    """Certificates already verified, by the SHA-256 of their bytes: a card sells many times, and
    its certificate's issuer signature need only be checked once per process. The city's hot path
    also finds them by the text a message carries (`by_text`), so a card's next sale costs neither
    decoding nor hashing."""

    def __init__(self, issuer_keys: dict[str, ec.EllipticCurvePublicKey], limit: int = 200_000) -> None:
        self.issuer_keys = issuer_keys
        self.limit = limit
        self._known: dict[bytes, CertifiedCard] = {}
        self.by_text: dict[str, CertifiedCard] = {}
        """A verified certificate by the base64url text it came in (only `certified` fills it)."""

    def certified(self, raw: bytes, text: str | None = None) -> CertifiedCard:
        """The card a certificate names, once its issuer signature verifies; EvidenceError otherwise.
        `text`: the base64url text `raw` was decoded from, to find the card by next time."""
        key = hashlib.sha256(raw).digest()
        found = self._known.get(key)
        if found is None:
            found = self._verified(raw, key)
        if text is not None:
            if len(self.by_text) >= self.limit:
                self.by_text.clear()
            self.by_text[text] = found
        return found

    def _verified(self, raw: bytes, key: bytes) -> CertifiedCard:
        try:
            parsed = certificate.parse(raw)
        except (tlv.TlvError, certificate.CertificateError, ValueError) as exc:
            raise EvidenceError(f"card certificate is malformed: {exc}") from None
        issuer = self.issuer_keys.get(parsed.info.issuer_key_id)
        if issuer is None:
            raise EvidenceError(f"card certificate names unknown issuer key {parsed.info.issuer_key_id}")
        if not certificate.verify(parsed, issuer):
            raise EvidenceError(f"card certificate of {parsed.info.card_id} is not signed by its issuer (forged)")
        if len(self._known) >= self.limit:
            self._known.clear()
        found = self._known[key] = CertifiedCard(parsed.info, parsed.card_public_key)
        return found


def signed_message(ev: CardEvidence) -> bytes:
    """The exact bytes the card signed for this evidence, rebuilt from the transaction; EvidenceError
    when the transaction could not have been sent to a card at all."""
    try:
        tx_digest = transaction.record_digest(ev.transaction, ev.counter)
    except ValueError as exc:
        raise EvidenceError(f"card transaction cannot be encoded: {exc}") from None
    return transaction.signed_message(ev.op, ev.challenge, tx_digest)


_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())  # immutable: one for every card signature


def verify(ev: CardEvidence, certs: CertificateCache) -> CertifiedCard:
    """The certified card, if its issuer signed the certificate and the card signed exactly this
    transaction with this counter; EvidenceError with the reason otherwise."""
    card = certs.certified(ev.certificate)
    card_signed(card, ev.signature, signed_message(ev))
    return card


def card_signed(card: CertifiedCard, signature: bytes, message: bytes) -> None:
    """Nothing if the certified card signed exactly `message` (the bytes signed_message rebuilds);
    EvidenceError with the reason otherwise."""
    try:
        card.card_key.verify(signature, message, _ECDSA_SHA256)
    except (InvalidSignature, ValueError):
        raise EvidenceError(f"card {card.info.card_id} did not sign this transaction (its signature does not "
                            "verify over the sale the message reports)") from None
