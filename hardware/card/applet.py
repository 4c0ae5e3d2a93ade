"""The SSN card applet in Python: what a JavaCard implementation of docs/card-protocol.md does.

`process(apdu) -> response` is the whole interface (plus power_on/reset). Persistent state
lives in a CardFile (saved atomically before any response that depends on it); the session
state (selected, PIN verified) lives in RAM and is lost at power off or reset, as on a card.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from hardware.card import apdu, tlv, transaction
from hardware.card.cardfile import CardFile
from pos.signing import load_private_key


def _sw(code: int, data: bytes = b"") -> bytes:
    return data + bytes([code >> 8, code & 0xFF])


class Applet:
    """The card side of docs/card-protocol.md in Python: the virtual cards of the demo and
    the tests run it, so the terminal is tested against the protocol, not a mock."""

    signature_algorithm = ec.ECDSA(hashes.SHA256())
    """Randomized ECDSA, as a JavaCard signs; the spec's test vectors use RFC 6979's deterministic one."""

    def __init__(self, card: CardFile) -> None:
        self.card = card
        self._key: ec.EllipticCurvePrivateKey = load_private_key(card.memory.card_private_key_pem.encode())
        self.apdu_count = 0
        self.power_on()

    # --- power -----------------------------------------------------------------------
    def power_on(self) -> None:
        """Forget the session (selection, PIN verified), as a real card does at power-up or reset."""
        self.selected = False
        self.pin_verified = False

    reset = power_on

    # --- dispatch --------------------------------------------------------------------
    def process(self, raw: bytes) -> bytes:
        """Answer one command APDU as the card would: malformed input, a missing
        SELECT or a failed memory write become status words, never exceptions."""
        self.apdu_count += 1
        try:
            cmd = apdu.decode_command(bytes(raw))
        except ValueError:
            return _sw(apdu.SW_WRONG_LENGTH)
        if cmd.cla not in (apdu.CLA_ISO, apdu.CLA_PROP):
            return _sw(apdu.SW_CLA_NOT_SUPPORTED)
        if cmd.ins == apdu.INS_SELECT and cmd.cla == apdu.CLA_ISO:
            return self._select(cmd)
        if not self.selected:
            return _sw(apdu.SW_COMMAND_NOT_ALLOWED)
        handler = {
            (apdu.CLA_PROP, apdu.INS_GET_DATA): self._get_data,
            (apdu.CLA_ISO, apdu.INS_INTERNAL_AUTH): self._internal_authenticate,
            (apdu.CLA_ISO, apdu.INS_VERIFY): self._verify,
            (apdu.CLA_PROP, apdu.INS_SPEND): self._spend,
            (apdu.CLA_PROP, apdu.INS_LAST_TX): self._last_transaction,
        }.get((cmd.cla, cmd.ins))
        if handler is None:
            return _sw(apdu.SW_INS_NOT_SUPPORTED)
        try:
            return handler(cmd)
        except OSError:
            return _sw(apdu.SW_MEMORY_FAILURE)

    # --- commands --------------------------------------------------------------------
    def _select(self, cmd: apdu.Command) -> bytes:
        if cmd.p1 != 0x04 or cmd.p2 != 0x00:
            return _sw(apdu.SW_WRONG_P1P2)
        if cmd.data != apdu.AID:
            self.selected = False
            return _sw(apdu.SW_NOT_FOUND)
        self.selected = True
        self.pin_verified = False
        fci = tlv.encode(0x6F, tlv.encode(0x84, apdu.AID))
        return _sw(apdu.SW_OK, fci)

    def _get_data(self, cmd: apdu.Command) -> bytes:
        if cmd.p1 != 0 or cmd.data:
            return _sw(apdu.SW_WRONG_P1P2 if cmd.p1 else apdu.SW_WRONG_LENGTH)
        if cmd.p2 == apdu.P2_CERTIFICATE:
            return _sw(apdu.SW_OK, bytes.fromhex(self.card.memory.certificate_hex))
        if cmd.p2 == apdu.P2_STATE:
            return _sw(apdu.SW_OK, self._state(0, b""))
        return _sw(apdu.SW_NOT_FOUND)

    def _state(self, op: int, challenge: bytes) -> bytes:
        m = self.card.memory
        items = []
        if op:
            items += [(apdu.T_OPERATION, bytes([op])), (apdu.T_CHALLENGE, challenge)]
        items += [
            (apdu.T_PERIOD, m.spend_period.encode("ascii")),
            (apdu.T_SPENT, m.spent.to_bytes(4, "big")),
            (apdu.T_COUNTER, m.counter.to_bytes(4, "big")),
            (apdu.T_TRIES_LEFT, bytes([m.pin_tries_left])),
            (apdu.T_PIN_VERIFIED, b"\x01" if self.pin_verified else b"\x00"),
        ]
        return tlv.encode(apdu.T_STATE, tlv.encode_all(items))

    def _signed_state(self, op: int, challenge: bytes) -> bytes:
        state = self._state(op, challenge)
        sig = self._key.sign(apdu.AUTH_DOMAIN + state, self.signature_algorithm)
        return state + tlv.encode(apdu.T_STATE_SIG, sig)

    def _internal_authenticate(self, cmd: apdu.Command) -> bytes:
        if cmd.p1 or cmd.p2:
            return _sw(apdu.SW_WRONG_P1P2)
        if len(cmd.data) != apdu.CHALLENGE_LEN:
            return _sw(apdu.SW_WRONG_LENGTH)
        return _sw(apdu.SW_OK, self._signed_state(apdu.OP_AUTH, cmd.data))

    def _verify(self, cmd: apdu.Command) -> bytes:
        m = self.card.memory
        if cmd.p1 != 0 or cmd.p2 != apdu.P2_PIN:
            return _sw(apdu.SW_WRONG_P1P2)
        if m.pin_tries_left <= 0:
            return _sw(apdu.SW_PIN_BLOCKED)
        if not cmd.data:  # ISO 7816-4: VERIFY without data asks for the tries left
            return _sw(apdu.SW_OK if self.pin_verified else apdu.SW_PIN_WRONG_BASE | min(m.pin_tries_left, 15))
        if not (apdu.PIN_MIN <= len(cmd.data) <= apdu.PIN_MAX) or not cmd.data.isdigit():
            return _sw(apdu.SW_WRONG_DATA)
        # decrement persistently BEFORE comparing: pulling the card mid-compare gains nothing
        m.pin_tries_left -= 1
        self.card.save()
        if m.pin_matches(cmd.data):
            m.pin_tries_left = m.pin_tries_max
            self.card.save()
            self.pin_verified = True
            return _sw(apdu.SW_OK)
        self.pin_verified = False
        if m.pin_tries_left == 0:
            return _sw(apdu.SW_PIN_BLOCKED)
        return _sw(apdu.SW_PIN_WRONG_BASE | min(m.pin_tries_left, 15))

    def _spend(self, cmd: apdu.Command) -> bytes:
        m = self.card.memory
        if cmd.p1 or cmd.p2:
            return _sw(apdu.SW_WRONG_P1P2)
        try:
            challenge, template_value = tlv.parse_exact(cmd.data, (apdu.T_CHALLENGE, apdu.T_TX_TEMPLATE))
            tx = transaction.parse_template(template_value)
            if len(challenge) != apdu.CHALLENGE_LEN:
                raise tlv.TlvError("challenge is 16 bytes")
        except tlv.TlvError:
            return _sw(apdu.SW_WRONG_DATA)
        if m.pin_tries_left <= 0:
            return _sw(apdu.SW_PIN_BLOCKED)
        if not self.pin_verified:
            return _sw(apdu.SW_SECURITY_NOT_SATISFIED)
        if m.spend_period and tx.period < m.spend_period:
            return _sw(apdu.SW_CONDITIONS_NOT_SATISFIED)  # no going back to an earlier period
        base = m.spent if tx.period == m.spend_period else 0
        if base + tx.amount > min(tx.period_total, transaction.U32):
            return _sw(apdu.SW_CONDITIONS_NOT_SATISFIED)  # the total must cover the record and this sale
        if m.counter >= transaction.U32:
            return _sw(apdu.SW_CONDITIONS_NOT_SATISFIED)  # the counter never wraps
        counter = m.counter + 1
        record = transaction.encode_record(tlv.encode(apdu.T_TX_TEMPLATE, template_value), counter)
        m.spend_period, m.spent, m.counter, m.last_tx_hex = tx.period, tx.period_total, counter, record.hex()
        self.card.save()
        return _sw(apdu.SW_OK, tlv.encode(apdu.T_COUNTER, counter.to_bytes(4, "big"))
                   + self._tx_signature(apdu.OP_SPEND, challenge, record))

    def _last_transaction(self, cmd: apdu.Command) -> bytes:
        if cmd.p1 or cmd.p2:
            return _sw(apdu.SW_WRONG_P1P2)
        if len(cmd.data) != apdu.CHALLENGE_LEN:
            return _sw(apdu.SW_WRONG_LENGTH)
        if not self.card.memory.last_tx_hex:
            return _sw(apdu.SW_NO_RECORD)
        record = bytes.fromhex(self.card.memory.last_tx_hex)
        return _sw(apdu.SW_OK, record + self._tx_signature(apdu.OP_LAST_TX, cmd.data, record))

    def _tx_signature(self, op: int, challenge: bytes, record: bytes) -> bytes:
        message = transaction.signed_message(op, challenge, transaction.digest(record))
        return tlv.encode(apdu.T_STATE_SIG, self._key.sign(message, self.signature_algorithm))
