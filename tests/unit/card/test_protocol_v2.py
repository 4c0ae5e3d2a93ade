"""Card protocol v2 rules (docs/card-protocol.md): the spend's transaction proof, the last
transaction read back, exact periods and field lists, status-word precedence, 32-bit limits, T=0."""

from __future__ import annotations

import pytest

from hardware.card import apdu, tlv, transaction
from hardware.card.applet import Applet
from hardware.card.cardfile import CardFile
from hardware.card.client import CardClient
from hardware.card.fake import FakeReader
from pos.card_decision import decide
from pos.card_proof import CardTransaction, lines_digest
from pos.ledger import Ledger
from pos.refusals import Reason, Refusal
from tests.card_fixtures import issuer_keys, today_and_period

PIN = "123456"
CHALLENGE = bytes(range(16))


def _applet(path, *, verified: bool = True) -> Applet:
    applet = Applet(CardFile.load(path))
    assert applet.process(apdu.select())[-2:] == b"\x90\x00"
    if verified:
        assert applet.process(apdu.verify_pin(PIN)) == b"\x90\x00"
    return applet


def _tx(period="2026-11", amount=10_000, total=10_000, **kw) -> CardTransaction:
    fields = {"device_id": "EW-1", "redemption_id": "r-1", "lines_digest": lines_digest([("BERAS5", 1, amount)])}
    fields.update(kw)
    return CardTransaction(period=period, amount=amount, period_total=total, **fields)


def _template(fields: list[tuple[int, bytes]]) -> bytes:
    return tlv.encode(apdu.T_TX_TEMPLATE, tlv.encode_all(fields))


def _fields(period=b"2026-11", amount=10_000, total=10_000) -> list[tuple[int, bytes]]:
    return [(apdu.T_DEVICE_ID, b"EW-1"), (apdu.T_REDEMPTION_ID, b"r-1"), (apdu.T_PERIOD, period),
            (apdu.T_AMOUNT, amount.to_bytes(4, "big")), (apdu.T_SPENT, total.to_bytes(4, "big")),
            (apdu.T_LINES_DIGEST, bytes(32))]


def _sw(answer: bytes) -> int:
    return int.from_bytes(answer[-2:], "big")


def _session(path) -> CardClient:
    reader = FakeReader(issuer_keys())
    reader.insert(Applet(CardFile.load(path)))
    s = reader.open_session()
    s.authenticate()
    return s


def test_spend_signs_the_transaction_and_the_card_keeps_it(deck):
    s = _session(deck["holder"])
    assert s.last_transaction() is None  # read before the PIN: nothing yet
    s.verify_pin(PIN)
    tx = _tx(amount=40_000, total=40_000)
    proof = s.spend(tx)
    assert (proof.op, proof.counter, proof.transaction) == (apdu.OP_SPEND, 1, tx)
    record = transaction.encode_record(transaction.encode_template(tx), 1)
    assert proof.digest == transaction.digest(record)
    mem = CardFile.load(deck["holder"]).memory
    assert (mem.spend_period, mem.spent, mem.counter, mem.last_tx_hex) == ("2026-11", 40_000, 1, record.hex())
    # a later terminal, after power-off, reads the same transaction back, signed for its own challenge
    again = _session(deck["holder"])
    back = again.last_transaction()
    assert (back.op, back.digest, back.counter, back.transaction) == (apdu.OP_LAST_TX, proof.digest, 1, tx)
    assert back.challenge != proof.challenge


def test_record_spend_sends_the_v2_spend_with_what_it_knows(deck):
    s = _session(deck["holder"])
    s.verify_pin(PIN)
    assert s.record_spend("2026-11", 30_000).counter == 1
    assert s.record_spend("2026-11", 45_000).counter == 2
    last = s.last_transaction().transaction
    assert (last.device_id, last.redemption_id, last.amount, last.period_total) == ("", "", 15_000, 45_000)


@pytest.mark.parametrize("period", [b"2026-11\n", b"2026-13", b"2026-00", b"2026-1", b" 2026-11", b"1999-12",
                                    b"2100-01", b"2026/11", b"", b"2026-11\x00"])
def test_periods_are_exact(deck, period):
    applet = _applet(deck["holder"])
    command = apdu.spend(CHALLENGE, _template(_fields(period=period)))
    assert _sw(applet.process(command)) == apdu.SW_WRONG_DATA
    assert applet.card.memory.counter == 0
    with pytest.raises(ValueError):
        transaction.encode_template(_tx(period=period.decode("latin-1")))


@pytest.mark.parametrize("data", [
    tlv.encode(apdu.T_CHALLENGE, CHALLENGE) + _template(_fields()) + tlv.encode(0xDC, b"x"),  # extra TLV after
    tlv.encode(apdu.T_CHALLENGE, CHALLENGE) * 2 + _template(_fields()),  # repeated challenge
    _template(_fields()) + tlv.encode(apdu.T_CHALLENGE, CHALLENGE),  # reordered
    tlv.encode(apdu.T_CHALLENGE, CHALLENGE[:8]) + _template(_fields()),  # short challenge
    tlv.encode(apdu.T_CHALLENGE, CHALLENGE) + _template(_fields() + [(0xDC, b"x")]),  # extra field
    tlv.encode(apdu.T_CHALLENGE, CHALLENGE) + _template(_fields()[1:]),  # missing field
    tlv.encode(apdu.T_CHALLENGE, CHALLENGE) + _template(list(reversed(_fields()))),  # reordered fields
    tlv.encode(apdu.T_CHALLENGE, CHALLENGE) + _template(_fields()[:3] + [(apdu.T_AMOUNT, b"\x01")]
                                                         + _fields()[4:]),  # short amount
    tlv.encode(apdu.T_CHALLENGE, CHALLENGE) + _template([(apdu.T_DEVICE_ID, b"EW 1")] + _fields()[1:]),
])
def test_extra_repeated_or_missing_fields_are_wrong_data(deck, data):
    applet = _applet(deck["holder"])
    assert _sw(applet.process(apdu.Command(0x80, apdu.INS_SPEND, 0, 0, data, 0).encode())) == apdu.SW_WRONG_DATA
    assert applet.card.memory.counter == 0


def test_status_word_precedence(deck):
    good = apdu.spend(CHALLENGE, _template(_fields()))
    bad = apdu.spend(CHALLENGE, _template(_fields(period=b"2026-13")))
    applet = _applet(deck["holder"], verified=False)
    assert _sw(applet.process(apdu.Command(0x80, apdu.INS_SPEND, 1, 0, b"", 0).encode())) == apdu.SW_WRONG_P1P2
    assert _sw(applet.process(bad)) == apdu.SW_WRONG_DATA  # data before PIN
    assert _sw(applet.process(good)) == apdu.SW_SECURITY_NOT_SATISFIED
    applet.card.memory.pin_tries_left = 0
    assert _sw(applet.process(good)) == apdu.SW_PIN_BLOCKED  # blocked before not verified
    applet.power_on()
    assert _sw(applet.process(bytes.fromhex("80FF0000"))) == apdu.SW_COMMAND_NOT_ALLOWED  # not selected first
    assert _sw(applet.process(apdu.last_transaction(CHALLENGE))) == apdu.SW_COMMAND_NOT_ALLOWED
    applet.process(apdu.select())
    assert _sw(applet.process(apdu.last_transaction(CHALLENGE[:15]))) == apdu.SW_WRONG_LENGTH
    assert applet.process(apdu.last_transaction(CHALLENGE)) == b"\x6a\x88"


def test_32_bit_arithmetic_never_wraps(deck):
    applet = _applet(deck["holder"])
    m = applet.card.memory
    m.spend_period, m.spent = "2026-11", 0xFFFFFF00

    def spend(amount: int, total: int, period: bytes = b"2026-11") -> int:
        return _sw(applet.process(apdu.spend(CHALLENGE, _template(_fields(period, amount, total)))))

    assert spend(0x200, 0xFFFFFFFF) == apdu.SW_CONDITIONS_NOT_SATISFIED  # base + amount carries out of 32 bits
    assert spend(0x10, 0xFFFFFF0F) == apdu.SW_CONDITIONS_NOT_SATISFIED  # total below base + amount
    assert spend(0x10, 0xFFFFFFFF) == apdu.SW_OK  # the total may exceed base + amount
    assert (m.spent, m.counter) == (0xFFFFFFFF, 1)
    assert spend(0x10, 0x10, b"2026-10") == apdu.SW_CONDITIONS_NOT_SATISFIED  # no going back
    assert spend(0x10, 0x10, b"2026-12") == apdu.SW_OK  # a later period starts again from 0
    m.counter = 0xFFFFFFFF
    assert spend(0, 0x10, b"2026-12") == apdu.SW_CONDITIONS_NOT_SATISFIED  # the counter never wraps
    assert (m.spent, m.counter) == (0x10, 0xFFFFFFFF)


class _T0:
    """The applet behind a T=0 reader: every answer with data comes as 61xx, fetched by GET RESPONSE
    in pieces of at most `piece` bytes; `wrong_le` makes SPEND answer 6Cxx instead."""

    def __init__(self, applet: Applet, piece: int = 100, wrong_le: bool = False) -> None:
        self.applet, self.piece, self.wrong_le = applet, piece, wrong_le
        self.pending, self.sent = b"", []

    def transmit(self, command: bytes) -> bytes:
        self.sent.append(command)
        if command[1] == apdu.INS_GET_RESPONSE:
            chunk, self.pending = self.pending[:self.piece], self.pending[self.piece:]
            return chunk + (bytes([0x61, min(len(self.pending), 255)]) if self.pending else b"\x90\x00")
        if self.wrong_le and command[1] == apdu.INS_SPEND:
            return b"\x6c\x10"
        answer = self.applet.process(command)
        if answer[-2:] != b"\x90\x00" or len(answer) == 2:
            return answer
        self.pending = answer[:-2]
        return bytes([0x61, min(len(self.pending), 255)])


def test_t0_get_response_chains_carry_a_whole_sale(deck):
    t0 = _T0(Applet(CardFile.load(deck["holder"])))
    s = CardClient(t0.transmit, issuer_keys())
    s.authenticate()  # the certificate (228 bytes) arrives in three pieces
    s.verify_pin(PIN)
    assert s.spend(_tx()).counter == 1
    assert s.last_transaction().transaction == _tx()
    assert sum(c[1] == apdu.INS_GET_RESPONSE for c in t0.sent) >= 8


def test_a_6cxx_is_refused_and_the_spend_never_resent(deck):
    t0 = _T0(Applet(CardFile.load(deck["holder"])), wrong_le=True)
    s = CardClient(t0.transmit, issuer_keys())
    s.authenticate()
    s.verify_pin(PIN)
    with pytest.raises(Refusal) as e:
        s.spend(_tx())
    assert e.value.reason is Reason.CARD_UNREADABLE and "6C10" in e.value.detail
    assert sum(c[1] == apdu.INS_SPEND for c in t0.sent) == 1


def test_an_endless_61xx_chain_is_refused(deck):
    s = CardClient(lambda command: b"\x00" * 100 + b"\x61\x64" if command[1] == apdu.INS_GET_RESPONSE
                   else b"\x61\x64", issuer_keys())
    with pytest.raises(Refusal) as e:
        s.authenticate()
    assert e.value.reason is Reason.CARD_UNREADABLE


def test_a_card_recording_a_future_period_is_refused_by_name(deck, city, clock):
    card = CardFile.load(deck["holder"])
    card.memory.spend_period, card.memory.spent = "9999-12", 1
    card.save()  # written so by a faulty or hostile terminal: the card itself refuses years past 2099
    s = _session(deck["holder"])
    auth = s.authenticate()
    assert auth.spend.period == "9999-12"
    today, period = today_and_period(clock)
    with pytest.raises(Refusal) as e:
        decide(auth, Ledger(), period, today)
    assert e.value.reason is Reason.CARD_PERIOD_FUTURE
    assert "9999-12" in e.value.detail
    assert "bulan yang belum tiba" in e.value.message("id") and "not come yet" in e.value.message("en")
