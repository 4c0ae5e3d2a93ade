"""The SSN card protocol over the in-process fake reader (fast; the same Applet as the virtual card)."""

from __future__ import annotations

import pytest

from hardware.card import apdu, tlv
from hardware.card.applet import Applet
from hardware.card.cardfile import CardFile
from hardware.card.fake import FakeReader
from pos.card_decision import decide
from pos.ledger import Ledger
from pos.refusals import Reason, Refusal
from tests.card_fixtures import issuer_keys, today_and_period


def _session(path):
    reader = FakeReader(issuer_keys())
    events = []
    reader.subscribe(events.append)
    reader.insert(Applet(CardFile.load(path)))
    return reader, reader.open_session(), events


def _decide(path, city, clock, pin="123456"):
    _, s, _ = _session(path)
    card = s.authenticate()
    today, period = today_and_period(clock)
    ent = decide(card, Ledger(), period, today)
    s.verify_pin(pin)
    return s, card, ent


def test_holder_served_and_spend_recorded(deck, city, clock):
    s, card, ent = _decide(deck["holder"], city, clock)
    assert card.certificate.household_id == city.notable["holder"]
    assert ent.remaining == ent.allowance
    rec = s.record_spend(city.period, 50_000)
    assert (rec.period, rec.spent, rec.counter) == (city.period, 50_000, 1)
    mem = CardFile.load(deck["holder"]).memory
    assert (mem.spend_period, mem.spent, mem.counter) == (city.period, 50_000, 1)
    # the record is monotonic within a period
    with pytest.raises(Refusal) as e:
        s.record_spend(city.period, 10_000)
    assert e.value.reason is Reason.CARD_UNREADABLE and "6985" in e.value.detail
    # a new period resets the amount, the counter keeps growing
    rec = s.record_spend("2099-01", 0)
    assert (rec.spent, rec.counter) == (0, 2)
    with pytest.raises(Refusal):
        s.record_spend(city.period, 60_000)  # no going back to an earlier period


@pytest.mark.parametrize(
    "role,reason",
    [
        ("revoked", Reason.CARD_REVOKED),
        ("expired", Reason.CARD_EXPIRED),
        ("used_up", Reason.ALLOWANCE_USED_UP),
    ],
)
def test_deck_decision_refusals(deck, city, clock, role, reason):
    _, s, _ = _session(deck[role])
    card = s.authenticate()
    today, period = today_and_period(clock)
    with pytest.raises(Refusal) as e:
        decide(card, Ledger(), period, today)
    assert e.value.reason is reason


@pytest.mark.parametrize("role,reason", [("forged", Reason.CARD_FORGED), ("cloned", Reason.CARD_CLONED)])
def test_forged_and_cloned_refused_at_authentication(deck, role, reason):
    _, s, _ = _session(deck[role])
    with pytest.raises(Refusal) as e:
        s.authenticate()
    assert e.value.reason is reason


def test_pin_blocked_card(deck):
    _, s, _ = _session(deck["pin_blocked"])
    assert s.authenticate().pin_tries_left == 0
    with pytest.raises(Refusal) as e:
        s.verify_pin("123456")
    assert e.value.reason is Reason.PIN_BLOCKED


def test_wrong_pin_to_blocking_is_persistent(deck):
    _, s, _ = _session(deck["holder"])
    s.authenticate()
    for left in (2, 1):
        with pytest.raises(Refusal) as e:
            s.verify_pin("000000")
        assert e.value.reason is Reason.PIN_WRONG and f"tries left {left}" in e.value.detail
        assert CardFile.load(deck["holder"]).memory.pin_tries_left == left
    with pytest.raises(Refusal) as e:
        s.verify_pin("000000")
    assert e.value.reason is Reason.PIN_BLOCKED
    _, s2, _ = _session(deck["holder"])  # a new session (power cycle) stays blocked
    s2.authenticate()
    with pytest.raises(Refusal) as e:
        s2.verify_pin("123456")
    assert e.value.reason is Reason.PIN_BLOCKED


def test_right_pin_resets_counter(deck):
    _, s, _ = _session(deck["holder"])
    s.authenticate()
    with pytest.raises(Refusal):
        s.verify_pin("111111")
    s.verify_pin("123456")
    assert CardFile.load(deck["holder"]).memory.pin_tries_left == 3


def test_spend_needs_pin(deck, city):
    _, s, _ = _session(deck["holder"])
    s.authenticate()
    with pytest.raises(Refusal) as e:
        s.record_spend(city.period, 1000)
    assert e.value.reason is Reason.PIN_WRONG
    assert CardFile.load(deck["holder"]).memory.counter == 0


def test_wedge_faking_pin_ok_is_caught(deck):
    """A device between card and terminal answers 9000 to a wrong PIN: the signed state says otherwise."""
    reader, s, _ = _session(deck["holder"])
    s.authenticate()
    reader.transmit_hook = lambda cmd, resp: b"\x90\x00" if cmd[1] == apdu.INS_VERIFY else resp
    with pytest.raises(Refusal) as e:
        s.verify_pin("999999")
    assert e.value.reason is Reason.CARD_UNREADABLE


def test_replayed_authentication_is_refused(deck):
    """Replaying an old signed answer (Chip and Skim) fails: the challenge is fresh each time."""
    reader, s, _ = _session(deck["holder"])
    s.authenticate()
    saved = {}

    def hook(cmd, resp):
        if cmd[1] == apdu.INS_INTERNAL_AUTH:
            return saved.setdefault("auth", resp)
        return resp

    reader.transmit_hook = hook
    s.authenticate()
    with pytest.raises(Refusal) as e:
        s.authenticate()
    assert e.value.reason is Reason.CARD_UNREADABLE


def test_card_removed_mid_session(deck):
    reader, s, events = _session(deck["holder"])
    reader.pull()
    with pytest.raises(Refusal) as e:
        s.authenticate()
    assert e.value.reason is Reason.CARD_REMOVED
    assert [ev.kind for ev in events] == ["inserted", "removed"]


def test_applet_status_words(deck):
    applet = Applet(CardFile.load(deck["holder"]))
    assert applet.process(apdu.get_certificate())[-2:] == b"\x69\x86"  # not selected
    assert applet.process(b"\x00")[-2:] == b"\x67\x00"
    assert applet.process(bytes.fromhex("00A4040003A0000000"))[-2:] == b"\x6a\x82"
    assert applet.process(apdu.select())[-2:] == b"\x90\x00"
    assert applet.process(bytes.fromhex("A0CA000100"))[-2:] == b"\x6e\x00"
    assert applet.process(bytes.fromhex("80FF000000"))[-2:] == b"\x6d\x00"
    assert applet.process(apdu.internal_authenticate(b"short"))[-2:] == b"\x67\x00"
    assert applet.process(bytes.fromhex("00200081"))[-2:] == b"\x63\xc3"  # tries left, no decrement
    assert applet.process(apdu.Command(0x80, apdu.INS_SPEND, 0, 0, b"\x01\x02", 0).encode())[-2:] == b"\x6a\x80"


def test_tlv_rejects_malformed():
    for bad in [b"\xd0", b"\xd0\x05ab", b"\xd0\x83\x00\x00\x01", b"\x00\x00"]:
        with pytest.raises(tlv.TlvError):
            tlv.parse(bad)
    assert tlv.parse(tlv.encode(0xD0, b"x" * 300)) == [(0xD0, b"x" * 300)]


def test_any_response_never_crashes_the_client(deck, city):
    """Every kind of bad answer, any size (0..700 bytes), at every step: a Refusal, never a crash."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(step=st.integers(1, 6), junk=st.binary(max_size=700), keep=st.integers(0, 300))
    def run(step, junk, keep):
        reader, s, _ = _session(deck["holder"])
        n = {"i": 0}

        def hook(cmd, resp):
            n["i"] += 1
            return resp[:keep] + junk if n["i"] == step else resp

        reader.transmit_hook = hook
        before = reader.applet.card.memory.counter
        try:
            s.authenticate()
            s.verify_pin("123456")
            s.record_spend(city.period, before * 1000 + 1000)
            ok = True
        except Refusal:
            ok = False
        if step < 6 and not ok:
            assert reader.applet.card.memory.counter == before
        reader.applet.card.memory.pin_tries_left = 3

    run()


def test_decision_not_yet_valid_and_old_period_spend(tmp_path, city, clock):
    from datetime import timedelta

    from hardware.card.issuing import IssueRequest, issue
    from pos.ports import AuthenticatedCard, CardCertificate, SpendRecord
    from pos.sample_city import demo_key

    today, period = today_and_period(clock)
    path = tmp_path / "future.json"
    issue(path, IssueRequest("CARD-F", city.notable["holder"], today + timedelta(days=3), today + timedelta(days=400)),
          demo_key("issuer"))
    _, s, _ = _session(path)
    with pytest.raises(Refusal) as e:
        decide(s.authenticate(), Ledger(), period, today)
    assert e.value.reason is Reason.CARD_NOT_YET_VALID
    cert = CardCertificate("CARD-X", city.notable["holder"], today, today, "k")
    old = AuthenticatedCard(cert, SpendRecord(str(period.previous()), 200_000, 4), 3)
    assert decide(old, Ledger(), period, today).card_spent == 0  # last month's record does not count
    now = AuthenticatedCard(cert, SpendRecord(str(period), 150_000, 5), 3)
    assert decide(now, Ledger(), period, today).remaining == 50_000


# --- the deck's FakeCard: the same applet, in RAM ------------------------------------------------

def _fake_card_session(**kw):
    from hardware.card.fake import FakeCard

    card = FakeCard("CARD-T", "SSN-6472-0000001", **kw)
    reader = FakeReader()  # trusts the DEMO issuer, which personalises every FakeCard
    reader.insert(card)
    return card, reader, reader.open_session()


def test_fake_card_pin_and_spend_rules_are_the_applets(city):
    card, reader, s = _fake_card_session()
    assert s.authenticate().pin_tries_left == 3
    with pytest.raises(Refusal) as e:
        s.record_spend(city.period, 1000)  # no spend without the PIN, as on the card
    assert e.value.reason is Reason.PIN_WRONG and card.spend.counter == 0
    with pytest.raises(Refusal) as e:
        s.verify_pin("9999")
    assert e.value.reason is Reason.PIN_WRONG and card.pin_tries_left == 2
    s.verify_pin(card.pin)
    assert card.pin_tries_left == 3
    assert s.record_spend(city.period, 5000).counter == 1 == card.spend.counter
    with pytest.raises(Refusal) as e:
        s.record_spend(city.period, 4000)  # monotonic within a period: the applet's 6985
    assert e.value.reason is Reason.CARD_UNREADABLE and card.spend.spent == 5000
    reader.insert(card)  # a power cycle forgets the PIN
    again = reader.open_session()
    again.authenticate()
    with pytest.raises(Refusal) as e:
        again.record_spend(city.period, 6000)
    assert e.value.reason is Reason.PIN_WRONG


@pytest.mark.parametrize("behaviour, reason", [("forged", Reason.CARD_FORGED), ("cloned", Reason.CARD_CLONED),
                                               ("unreadable", Reason.CARD_UNREADABLE)])
def test_fake_card_behaviours_are_refused_by_the_terminals_checks(behaviour, reason):
    _, _, s = _fake_card_session(behaviour=behaviour)
    with pytest.raises(Refusal) as e:
        s.authenticate()
    assert e.value.reason is reason


def test_fake_card_that_stops_answering_fails_once_with_an_event():
    card, reader, s = _fake_card_session()
    events = []
    reader.subscribe(events.append)
    s.authenticate()
    assert reader.stop_answering()
    for _ in range(2):
        with pytest.raises(Refusal) as e:
            s.verify_pin(card.pin)
        assert e.value.reason is Reason.CARD_UNREADABLE
    assert [ev.kind for ev in events] == ["card_not_answering"]
    reader.pull()
    assert not reader.stop_answering()


def test_fake_card_knows_no_other_behaviour():
    from hardware.card.fake import FakeCard

    with pytest.raises(ValueError, match="cannot act"):
        FakeCard("CARD-T", "SSN-6472-0000001", behaviour="blank")
