"""The terminal's card client: authenticates the SSN card and drives PIN and spend updates.

Everything the card says is parsed defensively: any malformed, truncated, oversized or
unexpected response becomes Refusal(CARD_UNREADABLE); only signed facts are believed. The
PIN result and the spend are believed only from the card's signature over a fresh
challenge (from `secrets`), never from a bare 9000 (a wedge device could fake that). Protocol
version 2: the spend's signature covers the transaction's digest (pos.card_proof).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from hardware.card import apdu, certificate, tlv, transaction
from pos.card_proof import NO_LINES, CardProof, CardTransaction
from pos.ports import AuthenticatedCard, CardCertificate, SpendRecord
from pos.refusals import Reason, Refusal

MAX_RESPONSE = 258  # 256 data bytes + SW: anything longer is not our card
MAX_DATA = 256  # no answer of the protocol is longer, however it arrives (61xx chains included)


class CardGone(Exception):
    """Raised by a transport when the card left the reader (maps to CARD_REMOVED)."""


class TransportError(Exception):
    """Raised by a transport for any other I/O failure (maps to CARD_UNREADABLE)."""


Transmit = Callable[[bytes], bytes]


@dataclass(frozen=True)
class CardState:
    """The card state as the card signed it, tied to the operation and challenge it answered."""

    op: int
    challenge: bytes
    spend: SpendRecord
    tries_left: int
    pin_verified: bool


class CardClient:
    """One session with one card; implements pos.ports.CardSessionPort."""

    def __init__(
        self,
        transmit: Transmit,
        issuer_keys: dict[str, ec.EllipticCurvePublicKey],
        *,
        random: Callable[[int], bytes] = secrets.token_bytes,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._transmit = transmit
        self._issuer_keys = dict(issuer_keys)
        self._random = random
        self._on_close = on_close
        self._card_key: ec.EllipticCurvePublicKey | None = None
        self._cert: CardCertificate | None = None
        self._record: SpendRecord | None = None

    # --- transport -------------------------------------------------------------------
    def _send(self, command: bytes, what: str) -> tuple[bytes, int]:
        """One command's answer; on T=0 a 61xx is followed by GET RESPONSE until the data is whole.
        A 6Cxx is never obeyed: the terminal always sends Le = 00, which a conforming card accepts,
        and resending a SPEND a wedge claims had the wrong Le could charge the card twice."""
        data, sw = self._exchange(command, what)
        while sw & 0xFF00 == apdu.SW_BYTES_AVAILABLE:
            more, sw = self._exchange(apdu.get_response(sw & 0xFF), what)
            data += more
            if len(data) > MAX_DATA:
                raise Refusal(Reason.CARD_UNREADABLE, f"{what}: answer longer than {MAX_DATA} bytes")
        return data, sw

    def _exchange(self, command: bytes, what: str) -> tuple[bytes, int]:
        try:
            resp = self._transmit(command)
        except CardGone as exc:
            raise Refusal(Reason.CARD_REMOVED, f"{what}: {exc}") from exc
        except TransportError as exc:
            raise Refusal(Reason.CARD_UNREADABLE, f"{what}: {exc}") from exc
        if not isinstance(resp, (bytes, bytearray)) or not 2 <= len(resp) <= MAX_RESPONSE:
            raise Refusal(Reason.CARD_UNREADABLE, f"{what}: response of bad size")
        return apdu.split_response(bytes(resp))

    def _expect_ok(self, command: bytes, what: str) -> bytes:
        data, sw = self._send(command, what)
        if sw != apdu.SW_OK:
            raise Refusal(Reason.CARD_UNREADABLE, f"{what}: status {sw:04X}")
        return data

    # --- protocol --------------------------------------------------------------------
    def authenticate(self) -> AuthenticatedCard:
        """Select the applet, verify the issuer's certificate, then challenge the
        card: a genuine certificate on a chip without its key is a clone."""
        fci = self._expect_ok(apdu.select(), "select")
        try:
            if tlv.parse_map(tlv.parse_one(fci, 0x6F)).get(0x84) != apdu.AID:
                raise tlv.TlvError("FCI names another application")
        except (tlv.TlvError, ValueError) as exc:
            raise Refusal(Reason.CARD_UNREADABLE, f"select: {exc}") from exc
        raw_cert = self._expect_ok(apdu.get_certificate(), "read certificate")
        try:
            parsed = certificate.parse(raw_cert)
        except (tlv.TlvError, certificate.CertificateError, ValueError) as exc:
            raise Refusal(Reason.CARD_UNREADABLE, f"certificate: {exc}") from exc
        issuer = self._issuer_keys.get(parsed.info.issuer_key_id)
        if issuer is None:
            raise Refusal(Reason.CARD_FORGED, f"unknown issuer key {parsed.info.issuer_key_id}")
        if not certificate.verify(parsed, issuer):
            raise Refusal(Reason.CARD_FORGED, f"issuer signature invalid on {parsed.info.card_id}")
        self._card_key, self._cert = parsed.card_public_key, parsed.info
        state = self._challenge_state(apdu.OP_AUTH, "internal authenticate", clone_check=True)
        self._record = state.spend
        return AuthenticatedCard(parsed.info, state.spend, state.tries_left, raw_cert)

    def _fresh(self) -> bytes:
        challenge = self._random(apdu.CHALLENGE_LEN)
        if len(challenge) != apdu.CHALLENGE_LEN:
            raise RuntimeError("challenge source returned the wrong length")
        return challenge

    def _challenge_state(self, op: int, what: str, *, clone_check: bool = False) -> CardState:
        challenge = self._fresh()
        data, sw = self._send(apdu.internal_authenticate(challenge), what)
        if sw != apdu.SW_OK:
            raise Refusal(Reason.CARD_UNREADABLE, f"{what}: status {sw:04X}")
        return self._check_signed(data, op, challenge, what, clone_check=clone_check)

    def _check_signed(self, data: bytes, op: int, challenge: bytes, what: str, *, clone_check: bool) -> CardState:
        if self._card_key is None:
            raise RuntimeError("authenticate() first")
        try:
            items = tlv.parse(data)
            if [t for t, _ in items] != [apdu.T_STATE, apdu.T_STATE_SIG]:
                raise tlv.TlvError("expected state (73) then signature (74)")
            state_tlv = tlv.encode(apdu.T_STATE, items[0][1])
            signature = items[1][1]
        except tlv.TlvError as exc:
            raise Refusal(Reason.CARD_UNREADABLE, f"{what}: {exc}") from exc
        try:
            self._card_key.verify(signature, apdu.AUTH_DOMAIN + state_tlv, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError) as exc:
            # the certificate is genuine but the chip does not hold its key: a copy
            reason = Reason.CARD_CLONED if clone_check else Reason.CARD_UNREADABLE
            raise Refusal(reason, f"{what}: card signature invalid") from exc
        state = parse_state(items[0][1])
        if state.op != op or state.challenge != challenge:
            raise Refusal(Reason.CARD_UNREADABLE, f"{what}: signed state is not for this challenge")
        return state

    def verify_pin(self, pin: str) -> None:
        """Check the PIN on the card, then believe the result only
        from a state the card signs over a fresh challenge."""
        if not (pin.isdigit() and apdu.PIN_MIN <= len(pin) <= apdu.PIN_MAX):
            raise Refusal(Reason.PIN_WRONG, f"the PIN is {apdu.PIN_MIN} to {apdu.PIN_MAX} digits")
        if self._card_key is None:
            raise RuntimeError("authenticate() first")
        data, sw = self._send(apdu.verify_pin(pin), "verify PIN")
        if data:
            raise Refusal(Reason.CARD_UNREADABLE, "verify PIN: unexpected data in the answer")
        if sw == apdu.SW_PIN_BLOCKED:
            raise Refusal(Reason.PIN_BLOCKED, "tries left 0")
        if sw & 0xFFF0 == apdu.SW_PIN_WRONG_BASE:
            raise Refusal(Reason.PIN_WRONG, f"tries left {sw & 0x0F}")
        if sw != apdu.SW_OK:
            raise Refusal(Reason.CARD_UNREADABLE, f"verify PIN: status {sw:04X}")
        # believe the PIN result only from the card's signature over a fresh challenge
        state = self._challenge_state(apdu.OP_AUTH, "confirm PIN")
        if not state.pin_verified:
            raise Refusal(Reason.CARD_UNREADABLE, "the card did not sign PIN verified")

    def record_spend(self, period: str, spent_total: int) -> SpendRecord:
        """Write the period's new total to the card with what this call knows of the sale (no
        device, redemption or lines: the amount is what the total adds to the card's record). For
        card tools and tests: the counter sells with `spend` and the sale's own transaction."""
        if isinstance(spent_total, bool) or not 0 <= spent_total <= transaction.U32:
            raise ValueError("spent_total must be 0..4294967295 rupiah")
        known = self._record
        base = known.spent if known is not None and known.period == period else 0
        tx = CardTransaction("", "", period, max(0, spent_total - base), spent_total, NO_LINES)
        proof = self.spend(tx)
        return SpendRecord(period, spent_total, proof.counter)

    def spend(self, tx: CardTransaction) -> CardProof:
        """SPEND: the card charges the transaction and signs its digest over our challenge;
        accepted only if the signature covers exactly this transaction."""
        if self._card_key is None:
            raise RuntimeError("authenticate() first")
        template = transaction.encode_template(tx)  # ValueError: the caller's mistake, not the card's
        challenge = self._fresh()
        data, sw = self._send(apdu.spend(challenge, template), "spend")
        if sw == apdu.SW_SECURITY_NOT_SATISFIED:
            raise Refusal(Reason.PIN_WRONG, "PIN not verified in this session")
        if sw == apdu.SW_PIN_BLOCKED:
            raise Refusal(Reason.PIN_BLOCKED, "tries left 0")
        if sw != apdu.SW_OK:
            raise Refusal(Reason.CARD_UNREADABLE, f"spend: status {sw:04X}")
        try:
            counter_raw, signature = tlv.parse_exact(data, (apdu.T_COUNTER, apdu.T_STATE_SIG))
            if len(counter_raw) != 4:
                raise tlv.TlvError("counter is 4 bytes")
        except tlv.TlvError as exc:
            raise Refusal(Reason.CARD_UNREADABLE, f"spend: {exc}") from exc
        counter = int.from_bytes(counter_raw, "big")
        if self._record is not None and counter <= self._record.counter:
            raise Refusal(Reason.CARD_UNREADABLE, "spend: the card's counter did not grow")
        proof = self._proof(apdu.OP_SPEND, challenge, transaction.encode_record(template, counter), signature, "spend")
        self._record = SpendRecord(tx.period, tx.period_total, counter)
        return proof

    def last_transaction(self) -> CardProof | None:
        """The card's last transaction signed over a fresh challenge (None before its first), so a
        terminal can find a sale the card was charged for that no device committed."""
        if self._card_key is None:
            raise RuntimeError("authenticate() first")
        challenge = self._fresh()
        data, sw = self._send(apdu.last_transaction(challenge), "last transaction")
        if sw == apdu.SW_NO_RECORD and not data:
            return None
        if sw != apdu.SW_OK:
            raise Refusal(Reason.CARD_UNREADABLE, f"last transaction: status {sw:04X}")
        try:
            record_value, signature = tlv.parse_exact(data, (apdu.T_TX_RECORD, apdu.T_STATE_SIG))
        except tlv.TlvError as exc:
            raise Refusal(Reason.CARD_UNREADABLE, f"last transaction: {exc}") from exc
        return self._proof(apdu.OP_LAST_TX, challenge, tlv.encode(apdu.T_TX_RECORD, record_value), signature,
                           "last transaction")

    def _proof(self, op: int, challenge: bytes, record: bytes, signature: bytes, what: str) -> CardProof:
        """Check the card's signature over a 76 record's digest and decode the record."""
        assert self._card_key is not None
        tx_digest = transaction.digest(record)
        try:
            self._card_key.verify(signature, transaction.signed_message(op, challenge, tx_digest),
                                  ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError) as exc:
            raise Refusal(Reason.CARD_UNREADABLE, f"{what}: card signature invalid") from exc
        try:
            template_value, counter_raw = tlv.parse_exact(tlv.parse_one(record, apdu.T_TX_RECORD),
                                                          (apdu.T_TX_TEMPLATE, apdu.T_COUNTER))
            tx = transaction.parse_template(template_value)
            if len(counter_raw) != 4:
                raise tlv.TlvError("counter is 4 bytes")
        except (tlv.TlvError, UnicodeDecodeError) as exc:
            raise Refusal(Reason.CARD_UNREADABLE, f"{what}: {exc}") from exc
        return CardProof(tx, int.from_bytes(counter_raw, "big"), op, challenge, tx_digest, signature)

    def close(self) -> None:
        """End the session once; the transport's hook releases the card."""
        if self._on_close:
            cb, self._on_close = self._on_close, None
            cb()


STATE_TAGS = (apdu.T_OPERATION, apdu.T_CHALLENGE, apdu.T_PERIOD, apdu.T_SPENT, apdu.T_COUNTER, apdu.T_TRIES_LEFT,
              apdu.T_PIN_VERIFIED)


def parse_state(value: bytes) -> CardState:
    """Decode the card's signed state (tag 73 contents); any malformed field is CARD_UNREADABLE."""
    try:
        op, challenge, period, spent, counter, tries, verified = tlv.parse_exact(value, STATE_TAGS)
        if len(op) != 1 or len(spent) != 4 or len(counter) != 4:
            raise ValueError("bad field length")
        if len(tries) != 1 or verified not in (b"\x00", b"\x01"):
            raise ValueError("bad PIN fields")
        if period and not transaction.readable_period(period):
            raise ValueError(f"bad period {period!r}")
        spend = SpendRecord(period.decode("ascii"), int.from_bytes(spent, "big"), int.from_bytes(counter, "big"))
        return CardState(op[0], challenge, spend, tries[0], verified == b"\x01")
    except (tlv.TlvError, ValueError, UnicodeDecodeError) as exc:
        raise Refusal(Reason.CARD_UNREADABLE, f"card state: {exc}") from exc
