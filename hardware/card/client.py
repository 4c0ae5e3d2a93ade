"""The terminal's card client: authenticates the SSN card and drives PIN and spend updates.

Everything the card says is parsed defensively: any malformed, truncated, oversized or
unexpected response becomes Refusal(CARD_UNREADABLE); only signed facts are believed. The
PIN result and the spend update are believed only from the card's signature over a fresh
challenge (from `secrets`), never from a bare 9000 (a wedge device could fake that).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from hardware.card import apdu, certificate, tlv
from pos.ports import AuthenticatedCard, CardCertificate, SpendRecord
from pos.refusals import Reason, Refusal

MAX_RESPONSE = 258  # 256 data bytes + SW: anything longer is not our card


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

    # --- transport -------------------------------------------------------------------
    def _send(self, command: bytes, what: str) -> tuple[bytes, int]:
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
        return AuthenticatedCard(parsed.info, state.spend, state.tries_left)

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
        """Write the period's new total to the card and accept it only if
        the card signs exactly that record over our challenge."""
        if self._card_key is None:
            raise RuntimeError("authenticate() first")
        if isinstance(spent_total, bool) or not 0 <= spent_total <= 0xFFFFFFFF:
            raise ValueError("spent_total must be 0..4294967295 rupiah")
        challenge = self._fresh()
        payload = tlv.encode_all(
            [(apdu.T_CHALLENGE, challenge), (apdu.T_PERIOD, period.encode("ascii")),
             (apdu.T_SPENT, spent_total.to_bytes(4, "big"))]
        )
        data, sw = self._send(apdu.update_spend(payload), "update spend")
        if sw == apdu.SW_SECURITY_NOT_SATISFIED:
            raise Refusal(Reason.PIN_WRONG, "PIN not verified in this session")
        if sw == apdu.SW_PIN_BLOCKED:
            raise Refusal(Reason.PIN_BLOCKED, "tries left 0")
        if sw != apdu.SW_OK:
            raise Refusal(Reason.CARD_UNREADABLE, f"update spend: status {sw:04X}")
        state = self._check_signed(data, apdu.OP_SPEND, challenge, "update spend", clone_check=False)
        if state.spend.period != period or state.spend.spent != spent_total:
            raise Refusal(Reason.CARD_UNREADABLE, "the card signed another spend record than asked")
        return state.spend

    def close(self) -> None:
        """End the session once; the transport's hook releases the card."""
        if self._on_close:
            cb, self._on_close = self._on_close, None
            cb()


def parse_state(value: bytes) -> CardState:
    """Decode the card's signed state (tag 73 contents); any malformed field is CARD_UNREADABLE."""
    try:
        f = tlv.parse_map(
            value,
            required=(apdu.T_OPERATION, apdu.T_CHALLENGE, apdu.T_PERIOD, apdu.T_SPENT, apdu.T_COUNTER,
                      apdu.T_TRIES_LEFT, apdu.T_PIN_VERIFIED),
        )
        op, period = f[apdu.T_OPERATION], f[apdu.T_PERIOD].decode("ascii")
        if len(op) != 1 or len(f[apdu.T_SPENT]) != 4 or len(f[apdu.T_COUNTER]) != 4:
            raise ValueError("bad field length")
        if len(f[apdu.T_TRIES_LEFT]) != 1 or f[apdu.T_PIN_VERIFIED] not in (b"\x00", b"\x01"):
            raise ValueError("bad PIN fields")
        if period and not (len(period) == 7 and period[4] == "-" and period.replace("-", "").isdigit()):
            raise ValueError(f"bad period {period!r}")
        spend = SpendRecord(period, int.from_bytes(f[apdu.T_SPENT], "big"), int.from_bytes(f[apdu.T_COUNTER], "big"))
        return CardState(op[0], f[apdu.T_CHALLENGE], spend, f[apdu.T_TRIES_LEFT][0], f[apdu.T_PIN_VERIFIED] == b"\x01")
    except (tlv.TlvError, ValueError, UnicodeDecodeError) as exc:
        raise Refusal(Reason.CARD_UNREADABLE, f"card state: {exc}") from exc
