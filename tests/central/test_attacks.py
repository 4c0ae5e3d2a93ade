"""Issue #16's attacks, each tried on the real stacks: pcscd + vpcd virtual cards, two shops' counters
(`ewarung sale`), their `ewarung sync`, a private mosquitto and `ewarung central serve` on
PostgreSQL (tests/central/attack_rig.py). Each attack must be refused at the counter or quarantined
and reported by the city, while every honest sale of the run lands in the city's totals exactly once.

One stack for the module (a few seconds to build; the whole module runs in about a minute); each
test works on its own households and cards, and the tests run in file order (the last one shortens
the city's void window). An attack the city stores without quarantining fails as NotHeld
("stored and not quarantined"), not on some other assertion.
docs/reliability.md, "Attacks on the card proof (#16)", lists the results.

Run: flock /tmp/ewarung-pcscd.lock .venv/bin/python -m pytest tests/central/test_attacks.py
"""

from __future__ import annotations

import secrets
import time
import uuid

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from hardware.card import transaction
from hardware.card.cardfile import CardFile
from pos.card_proof import CardProof, CardTransaction, lines_digest, redemption_card
from tests.central.attack_rig import AttackRig

pytestmark = [pytest.mark.pcsc, pytest.mark.mqtt, pytest.mark.slow]

TAHU = 7_000  # the sample city's catalog price of TAHU (pos.sample_city.CATALOG)
BERAS5 = 72_500


@pytest.fixture(scope="module")
def pcsc(tmp_path_factory):
    from tests.integration.pcsc_stack import PcscStack

    stack = PcscStack()
    stack.run_dir = tmp_path_factory.mktemp("run")
    stack.start()
    yield stack
    stack.shutdown()


@pytest.fixture(scope="module")
def rig(pg_server, mosquitto, pcsc, tmp_path_factory):
    stack = AttackRig(tmp_path_factory.mktemp("attacks"), pg_server.createdb("attacks"), mosquitto.port, pcsc)
    try:
        yield stack.start()
    finally:
        stack.stop()


def _period() -> str:
    from pos.clock import SystemClock
    from pos.period import Period

    return str(Period.of(SystemClock().now()))


def _body_like(template: dict, **changes) -> dict:
    """A redemption body shaped exactly like one the device wrote, with the attacker's changes."""
    return {**template, "redemption_id": str(uuid.uuid4()), "receipt_no": template["receipt_no"] + 1000, **changes}


def _template(rig: AttackRig, shop) -> dict:
    """The body of one of the shop's honest card sales (one is made if the shop has none yet): the
    attacker copies the device's own message form."""
    mine = [h for h in rig.honest if h.shop is shop]
    if not mine:
        rig.sell_honestly(shop, rig.issue(f"template-{shop.slot}", rig.household("BPNT")), {"TAHU": 1})
        mine = rig.honest[-1:]
    return shop.sale_message(mine[0].redemption_id)["envelope"]["body"]


def _lines(*lines: tuple[str, int, int]) -> list[dict]:
    return [{"item": c, "qty": q, "unit_price": p, "amount": q * p} for c, q, p in lines]


def _card_signed(rig: AttackRig, cardfile, shop, redemption_id: str, total: int, lines,
                 issuer_keys: dict | None = None) -> dict:
    """The attacker's own terminal makes the genuine card sign this transaction for `shop`: a real
    card proof (the PIN is known), for whatever sale the attacker describes."""
    client, card = rig.rogue_terminal(cardfile, issuer_keys=issuer_keys)
    spent = card.spend.spent if card.spend.period == _period() else 0
    tx = CardTransaction(shop.device_id, redemption_id, _period(), total, spent + total,
                         lines_digest([(ln["item"], ln["qty"], ln["unit_price"]) for ln in lines]))
    return redemption_card(card.certificate_bytes, client.spend(tx))


def _own_issuer_card(rig: AttackRig, household: str):
    """A card the attacker made with the card tooling and an issuer key of their own: (card file,
    the issuer keys their terminal trusts)."""
    from hardware.card.certificate import key_id
    from pos.signing import private_pem

    key = ec.generate_private_key(ec.SECP256R1())
    path = rig.root / "attacker-issuer.pem"
    path.write_bytes(private_pem(key))
    card = rig.issue("own-issuer", household, f"CARD-{household}-own", "--issuer-key", str(path))
    return card, {key_id(key.public_key()): key.public_key()}


def _critical(rows: list[dict], *words: str) -> list[dict]:
    return [r for r in rows if r["severity"] == "critical" and all(w in " ".join(r.values()) for w in words)]


def _through_wedge(rig: AttackRig, shop, swallow: str, then: str, items: dict[str, int], fired: str):
    """A new household's new card sold to at `shop` through a wedge (tests/central/card_wedge.py);
    the wedge's log must show it struck. Returns (household, card file, the sale's outcome)."""
    household = rig.household("BPNT")
    card = rig.issue(f"wedge-{swallow}-{then}", household)
    with rig.wedge(shop, swallow, then) as log:
        out = rig.sell(shop, card, items, card_args=("--host", "::1"))
    assert fired in log.read_text(), log.read_text()
    return household, card, out


def test_wedge_faking_the_spend_answer_sells_nothing(rig):
    """Attack 1a, the wedge of issue #16: it keeps SPEND from the card and tells the reader 9000.
    Before: the sale was committed first and the card never charged, so the card could buy again
    elsewhere. Now: no card proof, no sale; the card's record and allowance stay whole."""
    shop = rig.shops[0]
    household, card, out = _through_wedge(rig, shop, "command", "ok", {"BERAS5": 1}, "swallowed the SPEND command")
    assert (out["ok"], out["card_charged"]) == (False, False), out  # the cashier is told nothing was taken
    assert CardFile.load(card).memory.spent == 0
    assert shop.sql("SELECT count(*) FROM redemption WHERE household = ?", household) == [(0,)]
    honest = rig.sell_honestly(shop, card, {"BERAS5": 1})
    assert honest["remaining"] == 200_000 - BERAS5  # nothing was lost to the wedge
    rig.assert_honest_landed()
    assert rig.city_sales(household) == [honest["redemption_id"]]  # the city has the one real sale


def test_wedge_swallowing_the_spend_answer_commits_only_with_the_card_read_back(rig):
    """Attack 1b: the card charged itself, the wedge swallowed its answer and said 6F00. The counter
    reads the card's last transaction back (op 3): the sale is committed with that proof, once."""
    shop = rig.shops[0]
    _, card, out = _through_wedge(rig, shop, "answer", "error", {"TELUR10": 2},
                                  "swallowed the SPEND answer (status 9000)")
    assert out["ok"], out
    rig.remember(shop, out)
    memory = CardFile.load(card).memory
    assert (memory.spent, memory.counter) == (2 * 27_000, 1)  # charged once
    proof = shop.sale_message(out["redemption_id"])["envelope"]["body"]["card"]["proof"]
    assert (proof["op"], proof["counter"]) == (3, 1)  # the read-back proof
    rig.assert_honest_landed()
    code, findings = rig.report()
    assert code == 0, findings  # so far only honest sales and refusals: nothing critical for the city


def test_wedge_cutting_the_card_off_after_spend_reports_the_charge(rig):
    """Attack 1c: the card charged itself and the wedge cut it off before its answer. No sale without
    the proof; at the card's next insertion the counter finds the charge it never committed and
    reports "card charged, nothing sold" with the amount, so the city can credit the household."""
    shop = rig.shops[0]
    household, card, out = _through_wedge(rig, shop, "answer", "pull", {"GULA1": 2}, "cut the card off")
    assert (out["ok"], out["card_charged"]) == (False, None), out  # unknown until the card comes back
    assert CardFile.load(card).memory.spent == 2 * 18_000  # the card was charged
    assert shop.sql("SELECT count(*) FROM redemption WHERE household = ?", household) == [(0,)]
    lost = CardFile.load(card).memory.last_tx_hex  # the card's record of the charge nobody committed
    again = rig.sell_honestly(shop, card, {"TAHU": 1})  # the next insertion, no wedge
    assert again["charge_reported"], again
    rig.wait_drained()
    assert rig.city_sales(household) == [again["redemption_id"]]
    charged = shop.events("card_charged_not_sold")
    assert [(e["household"], e["amount"]) for e in charged] == [(household, 2 * 18_000)], charged
    assert charged[0]["redemption_id"].encode().hex() in lost
    rig.assert_honest_landed()
    from sync.central.store import EventRecord

    stored = EventRecord.select().where(EventRecord.event == "card_charged_not_sold")
    assert [(e.device, e.household) for e in stored] == [(shop.device_id, household)]
    _, findings = rig.report()
    credit = [f for f in findings if f["kind"] == "card_charged_not_sold" and f["subject"] == household]
    assert [(f["severity"], f["amount"]) for f in credit] == [("warning", str(2 * 18_000))], findings


def test_wedge_lowering_the_amount_the_card_signs_sells_nothing(rig):
    """Attack 1d: the wedge passes SPEND on with the amount lowered to Rp 1 and relays the card's
    genuine answer, so the household would take the basket for Rp 1 off its card. The card's
    signature covers the transaction it was given, not the counter's: no sale. The card's charge
    (this device's, never committed) is reported at its next insertion: as Rp 1, the amount the
    card signed, although the card's record rose to the new period total the counter asked for; the
    city reports the difference as `card_record_rise`, to be credited too."""
    shop = rig.shops[0]
    household, card, out = _through_wedge(rig, shop, "none", "relay", {"BERAS5": 2},
                                          "lowered the SPEND amount to 1")
    assert not out["ok"], out
    assert shop.sql("SELECT count(*) FROM redemption WHERE household = ?", household) == [(0,)]
    assert CardFile.load(card).memory.spent == 2 * BERAS5  # the period total the counter sent
    again = rig.sell_honestly(shop, card, {"TAHU": 1})
    assert again["remaining"] == 200_000 - 2 * BERAS5 - TAHU, again
    rig.wait_drained()
    assert rig.city_sales(household) == [again["redemption_id"]]
    charged = [e for e in shop.events("card_charged_not_sold") if e["household"] == household]
    assert [e["amount"] for e in charged] == [1], charged
    rig.assert_honest_landed()
    _, findings = rig.report()
    credit = [f for f in findings if f["kind"] == "card_charged_not_sold" and f["subject"] == household]
    assert [f["amount"] for f in credit] == ["1"], findings
    assert f"its record rose Rp {2 * BERAS5:,}" in credit[0]["detail"], credit
    # the rest of what the card recorded is asked for too: the household's allowance on its card
    rise = [f for f in findings if f["kind"] == "card_record_rise" and f["subject"] == household]
    assert [(f["severity"], f["amount"]) for f in rise] == [("warning", str(2 * BERAS5 - 1))], findings
    assert f"the card's record rose Rp {2 * BERAS5:,} but it signed Rp 1" in rise[0]["detail"]


def test_card_recording_a_future_period_is_refused_and_reported(rig):
    """Attack 2: a rogue terminal writes the card's record in period 2099-12 (the card accepts any
    later period), so that every counter would count it as nothing spent for good. The counter
    refuses it as such, and the city hears of it from the shop."""
    shop = rig.shops[1]
    household = rig.household("BPNT")
    card = rig.issue("future", household)
    client, _ = rig.rogue_terminal(card)
    client.spend(CardTransaction("EW-ROGUE-0001", str(uuid.uuid4()), "2099-12", 1_000, 1_000))
    assert CardFile.load(card).memory.spend_period == "2099-12"
    out = rig.sell(shop, card, {"BERAS5": 1})
    assert (out["ok"], out["refusal"]) == (False, "card_period_future"), out
    assert shop.sql("SELECT count(*) FROM redemption WHERE household = ?", household) == [(0,)]
    card_id = f"CARD-{household}-future"
    reported = [e for e in shop.events("card_refused") if e["reason"] == "card_period_future"]
    assert len(reported) == 1 and card_id in reported[0]["detail"], shop.events("card_refused")
    rig.sell_honestly(shop, rig.issue("future-next", rig.household("BPNT")), {"MINYAK1": 1})
    rig.assert_honest_landed()
    from sync.central.store import EventRecord

    events = [e for e in EventRecord.select().where(EventRecord.event == "card_refused")
              if "card_period_future" in e.body and card_id in e.body]
    assert [e.device for e in events] == [shop.device_id], events


def test_device_key_fabricating_card_sales_is_quarantined(rig):
    """Attack 3: the shop owner copies the device key and signs sales no card made: with no card
    proof, with a proof the device key signed, with a genuine proof replayed from another sale, and
    with a genuine proof on a sale booked to another household (the card's signature does not cover
    the household: the city matches it with the certificate), and with a card the attacker issued
    under an issuer key of their own. Each is stored (the device's
    sequence stays whole) but quarantined as critical, never counted."""
    shop = rig.shops[0]
    household = rig.household("BPNT")
    card = rig.issue("fabricated", household)
    genuine = rig.sell_honestly(shop, card, {"BERAS5": 1})
    template = shop.sale_message(genuine["redemption_id"])["envelope"]["body"]
    victim = rig.household("BPNT")
    no_proof = _body_like(template, household=victim, card_id=f"CARD-{victim}", card=None, card_counter=None)
    certificate = bytes.fromhex(CardFile.load(card).memory.certificate_hex)  # public: any reader gets it
    lines = _lines(("BERAS5", 2, BERAS5))
    forged = _body_like(template, lines=lines, total=2 * BERAS5, card_counter=template["card_counter"] + 1)
    tx = CardTransaction(shop.device_id, forged["redemption_id"], template["period"], forged["total"],
                         template["card"]["proof"]["period_total"] + forged["total"],
                         lines_digest([("BERAS5", 2, BERAS5)]))
    challenge = secrets.token_bytes(16)
    digest = transaction.digest(transaction.encode_record(transaction.encode_template(tx), tx_counter := 2))
    signature = shop.key.sign(transaction.signed_message(2, challenge, digest), ec.ECDSA(hashes.SHA256()))
    forged["card"] = redemption_card(certificate, CardProof(tx, tx_counter, 2, challenge, digest, signature))
    replayed = _body_like(template)  # the genuine card object, on a sale with another id
    elsewhere = _body_like(template, household=victim)  # a genuine proof, the sale booked to another household
    elsewhere["card"] = _card_signed(rig, card, shop, elsewhere["redemption_id"], template["total"],
                                     template["lines"])
    elsewhere["card_counter"] = elsewhere["card"]["proof"]["counter"]
    own_issuer = _own_issuer_card(rig, victim)  # a card the attacker issued: their issuer key, their chip
    mine = _body_like(template, household=victim, card_id=f"CARD-{victim}-own")
    mine["card"] = _card_signed(rig, own_issuer[0], shop, mine["redemption_id"], template["total"],
                                template["lines"], issuer_keys=own_issuer[1])
    mine["card_counter"] = mine["card"]["proof"]["counter"]
    bodies = {"without the card's proof": no_proof, "did not sign": forged, "did not sign this": replayed,
              "is not the card's household": elsewhere, "unknown issuer key": mine}
    ids = {rig.forge(shop, "redemption", body): (said, body) for said, body in bodies.items()}
    rig.wait_stored(*ids)
    for msg_id, (said, body) in ids.items():
        rig.expect_quarantined(msg_id, said)
        assert not rig.in_totals(body["redemption_id"])
    code, findings = rig.report()
    assert code == 1 and all(_critical(findings, msg_id) for msg_id in ids), findings
    rig.assert_honest_landed()


def test_cross_device_void_is_quarantined_and_the_sale_stays(rig):
    """Attack 4: shop B's key signs a void of shop A's sale, to take it out of the city's totals; and
    shop A voids its own sale for more than it took. Both quarantined as critical; the sale stays in
    the totals. A shop voiding its own sale honestly still works."""
    a, b = rig.shops
    card = rig.issue("void-victim", rig.household("BPNT"))
    sale = rig.sell_honestly(a, card, {"KENTANG1": 2})
    own = rig.sell_honestly(a, rig.issue("void-own", rig.household("BPNT")), {"TAHU": 2},
                            "--void", "wrong_items", "--supervisor", "spv1", "--supervisor-pin", "9999")
    assert own["voided"], own
    rig.assert_honest_landed()  # A's sale stored first: the void names a stored sale
    void_id = str(uuid.uuid4())
    msg_id = rig.forge(b, "void", {"void_id": void_id, "redemption_id": sale["redemption_id"],
                                   "household": sale["household"], "period": _period(), "amount": sale["total"],
                                   "reason": "salah barang", "cashier": "kasir1", "supervisor": "spv1"})
    inflated = rig.forge(a, "void", {"void_id": str(uuid.uuid4()), "redemption_id": sale["redemption_id"],
                                     "household": sale["household"], "period": _period(),
                                     "amount": sale["total"] + 100_000, "reason": "salah barang", "cashier": "kasir1",
                                     "supervisor": "spv1"})  # its own sale, but giving back more than it took
    rig.wait_stored(msg_id, inflated)
    rig.expect_quarantined(msg_id, "only the selling device may void")
    rig.expect_quarantined(inflated, "void")
    assert rig.in_totals(sale["redemption_id"])
    assert not rig.in_totals(own["redemption_id"])  # the own void counted
    code, findings = rig.report()
    assert code == 1 and _critical(findings, msg_id, b.device_id), findings
    rig.assert_honest_landed()


def test_negative_and_inflated_totals_are_quarantined(rig):
    """Attack 5: the issue's 150,000 total for one item priced 7,000, and a negative total. Even a
    card proof over the inflated total (the attacker's own terminal, PIN known) does not make the
    arithmetic or the catalog price right: quarantined as critical, never in the totals."""
    shop = rig.shops[0]
    card = rig.issue("inflated", rig.household("BPNT"))
    template = _template(rig, shop)
    household = rig.rogue_terminal(card)[1].certificate.household_id
    bodies = []
    for lines, total in ((_lines(("TAHU", 1, TAHU)), 150_000), (_lines(("TAHU", 1, 150_000)), 150_000)):
        body = _body_like(template, household=household, lines=lines, total=total, remaining_after=0)
        body["card"] = _card_signed(rig, card, shop, body["redemption_id"], total, lines)
        body.update(card_id=f"CARD-{household}-inflated", card_counter=body["card"]["proof"]["counter"])
        bodies.append(body)
    negative = _body_like(bodies[1], lines=[{"item": "TAHU", "qty": -1, "unit_price": TAHU, "amount": -TAHU}],
                          total=-TAHU)
    bodies.append(negative)
    ids = [rig.forge(shop, "redemption", body) for body in bodies]
    rig.wait_stored(*ids)
    for msg_id, body, said in zip(ids, bodies, ("not the sum of its lines", "catalog", "not positive"), strict=True):
        rig.expect_quarantined(msg_id, said)
        assert not rig.in_totals(body["redemption_id"])
    code, findings = rig.report()
    assert code == 1 and all(_critical(findings, msg_id) for msg_id in ids), findings
    rig.assert_honest_landed()


def test_redemption_id_collision_is_flagged_and_the_genuine_sale_kept(rig):
    """Attack 6: shop B reuses the id of shop A's sale (before, `INSERT OR IGNORE` silently dropped
    whichever came second). B's sale even carries a genuine card proof for that id: flagged as
    critical, and A's genuine sale stays in the totals. A sending its own sale again as a new
    message (to have it counted twice) is flagged the same way."""
    a, b = rig.shops
    genuine = rig.sell_honestly(a, rig.issue("collision-a", rig.household("BPNT")), {"SARDEN": 2})
    rig.assert_honest_landed()
    template = a.sale_message(genuine["redemption_id"])["envelope"]["body"]
    card = rig.issue("collision-b", household := rig.household("BPNT"))
    lines = _lines(("SARDEN", 1, 24_000))
    body = _body_like(template, redemption_id=genuine["redemption_id"], household=household, lines=lines,
                      total=24_000, shop_id=f"SHOP-{b.device_id[-4:]}")
    body["card"] = _card_signed(rig, card, b, body["redemption_id"], 24_000, lines)
    body.update(card_id=f"CARD-{household}-collision-b", card_counter=body["card"]["proof"]["counter"])
    msg_id = rig.forge(b, "redemption", body)
    again = rig.forge(a, "redemption", template)  # A sends its own sale once more, as a new message
    rig.wait_stored(msg_id, again)
    rig.expect_quarantined(msg_id, "id_collision")
    rig.expect_quarantined(again, "id_collision")
    from sync.central.store import RedemptionRecord

    kept = RedemptionRecord.get_by_id(genuine["redemption_id"])
    assert (kept.device, kept.total) == (a.device_id, genuine["total"])
    code, findings = rig.report()
    assert code == 1 and _critical(findings, msg_id, genuine["redemption_id"]), findings
    assert _critical(findings, again), findings
    rig.assert_honest_landed()  # counted once, from its first message


def test_override_flood_beyond_the_city_cap_is_critical(rig):
    """Attack 7: the shop owner lifts the device's own override cap (its config) and sells card-less
    "overrides" through the device's own software, beyond the cap the city set with
    `ewarung central policy`. Each message is well formed and signed; the city counts them per device
    and per household and reports the flood as critical."""
    from pos.clock import SystemClock
    from pos.device import DeviceIdentity
    from pos.ledger import Ledger
    from pos.policy import Policy
    from pos.redemption import RedemptionRequest, RedemptionService
    from pos.signing import EcdsaSigner

    shop = rig.shops[0]
    out = rig.central_cli("policy", "set", "--override-cap-device", "3", "--override-cap-household", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    identity = DeviceIdentity(shop.device_id, f"SHOP-{shop.device_id[-4:]}", "Warung", "Samarinda")
    households = [rig.household("BPNT") for _ in range(4)]
    with rig.device_db(shop) as db:
        service = RedemptionService(db, Ledger(), identity, EcdsaSigner(shop.key, shop.device_id), SystemClock(),
                                    Policy(override_cap_per_period=1000))
        sales = [service.redeem(RedemptionRequest(h, "kasir1", {"TEMPE": 1}, mode="override",
                                                  override_reason="card_damaged")) for h in households]
        sales.append(service.redeem(RedemptionRequest(households[0], "kasir1", {"TAHU": 1}, mode="override",
                                                      override_reason="card_forgotten")))
    rig.wait_drained()
    code, findings = rig.report()
    assert code == 1, findings
    assert _critical(findings, shop.device_id, "override"), findings
    assert _critical(findings, households[0], "override"), findings
    assert len(sales) == 5
    _template(rig, rig.shops[0])  # run alone, the module has no honest sale yet: make one
    rig.assert_honest_landed()


def test_rollover_household_at_two_shops_beyond_its_carry_over_is_critical(rig):
    """Attack 8: a rollover (LANSIA) household holds two valid cards (a replacement not yet
    hotlisted) and is served at two offline shops, each within allowance + carry-over on its own.
    The city adds both up against the allowance and the carry-over from its own records and reports
    the overspend as critical (before, the report skipped rollover plans)."""
    a, b = rig.shops
    household = rig.household("LANSIA")
    cards = [rig.issue("lansia-a", household), rig.issue("lansia-b", household)]
    for shop in rig.shops:
        shop.stop_sync()  # both offline: neither hears of the other's sale
    try:
        with rig.card_in(a, cards[0]), rig.card_in(b, cards[1]):
            procs = [rig.sale_process(shop, {"AYAM1": 7}) for shop in (a, b)]
            outs = [rig.outcome(p) for p in procs]
    finally:
        for shop in rig.shops:
            shop.start_sync()
    assert all(o["ok"] and o["total"] == 7 * 39_000 for o in outs), outs  # 273,000 each, of 300,000 here
    rig.wait_drained()
    for shop, out in zip((a, b), outs, strict=True):
        assert rig.stored(shop.sale_message(out["redemption_id"])["msg_id"])
    code, findings = rig.report()
    assert code == 1
    over = [f for f in _critical(findings, household) if f["kind"] == "overspend"]
    both = f"{a.device_id},{b.device_id}"
    assert [(f["devices"], f["amount"]) for f in over] == [(both, str(2 * 273_000 - 300_000))], \
        findings  # allowance 150,000 + 150,000 carried over from a month with nothing spent
    assert all(rig.in_totals(o["redemption_id"]) for o in outs)  # both genuine card sales: counted, and reported
    _template(rig, rig.shops[0])  # run alone, the module has no honest sale yet: make one
    rig.assert_honest_landed()


def test_cloned_card_at_two_shops_is_critical(rig):
    """Attack 9 (issue #16, item 4): a card's memory copied onto a second chip (here: the virtual
    card's file copied), both used at two offline shops. Each copy signs its charge with the same
    counter; the city's card counter chain keeps the first sale it receives and quarantines the
    other as a clone or a replay."""
    import shutil

    a, b = rig.shops
    household = rig.household("BPNT")
    card = rig.issue("cloned", household)
    clone = card.with_name("cloned-copy.json")
    shutil.copy(card, clone)
    for shop in rig.shops:
        shop.stop_sync()
    try:
        with rig.card_in(a, card), rig.card_in(b, clone):
            outs = [rig.outcome(rig.sale_process(shop, {"TELUR10": 1})) for shop in (a, b)]
    finally:
        for shop in rig.shops:
            shop.start_sync()
    assert all(o["ok"] for o in outs), outs  # each shop alone sees a genuine card
    rig.wait_drained()
    msgs = [shop.sale_message(o["redemption_id"]) for shop, o in zip((a, b), outs, strict=True)]
    assert {m["envelope"]["body"]["card_counter"] for m in msgs} == {1}
    held = [rig.quarantined(m["msg_id"]) for m in msgs]
    counted = [rig.in_totals(o["redemption_id"]) for o in outs]
    assert sorted(counted) == [False, True], (counted, held)  # one kept, the copy's sale not counted
    copy = held[counted.index(False)]
    assert [(q["rule"], q["severity"]) for q in copy] == [("card_clone", "critical")], copy
    code, findings = rig.report()
    assert code == 1 and _critical(findings, "card_clone", household), findings
    _template(rig, rig.shops[0])  # run alone, the module has no honest sale yet: make one
    rig.assert_honest_landed()


def test_charge_event_for_a_sale_made_is_not_credited(rig):
    """Attack 10: the device's owner claims "card charged, nothing sold" for a sale that was made,
    with the card's genuine read-back of that very charge, so the household would be credited for
    goods it took; and once more with the amount raised. The first earns no credit (its sale is in
    the totals), the second is quarantined as critical."""
    from pos.card_proof import charge_card

    shop = rig.shops[0]
    household = rig.household("BPNT")
    card = rig.issue("double-credit", household)
    sale = rig.sell_honestly(shop, card, {"AYAM1": 2})
    client, auth = rig.rogue_terminal(card)
    proof = client.last_transaction()  # op 3: the card's genuine record of the sale's charge
    assert proof.transaction.redemption_id == sale["redemption_id"]
    event = {"event": "card_charged_not_sold", "household": household, "card_id": auth.certificate.card_id,
             "redemption_id": sale["redemption_id"], "amount": sale["total"], "period": _period(),
             "card": charge_card(auth.certificate_bytes, proof)}
    claimed = rig.forge(shop, "event", event)
    raised = rig.forge(shop, "event", {**event, "amount": sale["total"] * 10})
    rig.wait_stored(claimed, raised)
    rig.expect_quarantined(raised, "amount")
    assert rig.in_totals(sale["redemption_id"])
    _, findings = rig.report()
    credit = [f for f in findings if f["kind"] == "card_charged_not_sold" and f["subject"] == household]
    assert not credit, credit
    asked = [f for f in findings if f["kind"] == "charge_for_sale_made" and sale["redemption_id"] in f["detail"]]
    assert asked and asked[0]["severity"] == "warning", findings  # no credit, and not silent
    assert _critical(findings, raised), findings
    rig.assert_honest_landed()


def test_hotlisted_card_at_a_shop_that_never_heard_is_quarantined(rig):
    """Attack 11: the city hotlists a card (lost, replaced) and a shop keeps serving it, its sync
    stopped (or the hotlist dropped by its owner). The counter, knowing nothing, sells; the city
    judges the sale against the hotlist as it stood at the sale's time: quarantined, critical."""
    b = rig.shops[1]
    household = rig.household("BPNT")
    card = rig.issue("hotlisted", household)
    card_id = f"CARD-{household}-hotlisted"
    b.stop_sync()
    try:
        out = rig.central_cli("hotlist", "add", card_id, "--reason", "hilang", "--broker", f"127.0.0.1:{rig.port}")
        assert out.returncode == 0, out.stdout + out.stderr
        sale = rig.sell(b, card, {"MINYAK1": 1})
    finally:
        b.start_sync()
    assert sale["ok"], sale  # the shop never heard of the block
    rig.wait_drained()
    msg_id = b.sale_message(sale["redemption_id"])["msg_id"]
    rig.expect_quarantined(msg_id, "hotlisted", "hilang")
    assert not rig.in_totals(sale["redemption_id"])
    code, findings = rig.report()
    assert code == 1 and _critical(findings, msg_id), findings
    _template(rig, rig.shops[0])  # run alone, the module has no honest sale yet: make one
    rig.assert_honest_landed()


def _booked(rig: AttackRig, name: str, period: str, created_at: str | None = None) -> tuple[str, dict]:
    """A sale of a new card (its household's own) for `period`, the card's genuine proof for that
    period from the attacker's terminal, forged into shop A's outbox with `created_at`."""
    shop = rig.shops[0]
    household = rig.household("BPNT")
    template = _template(rig, shop)
    client, auth = rig.rogue_terminal(rig.issue(f"period-{name}", household))
    lines = _lines(("BERAS5", 2, BERAS5))
    body = _body_like(template, household=household, period=period, lines=lines, total=2 * BERAS5,
                      card_id=auth.certificate.card_id, remaining_after=200_000 - 2 * BERAS5)
    tx = CardTransaction(shop.device_id, body["redemption_id"], period, 2 * BERAS5, 2 * BERAS5,
                         lines_digest([("BERAS5", 2, BERAS5)]))
    body["card"] = redemption_card(auth.certificate_bytes, client.spend(tx))
    body["card_counter"] = body["card"]["proof"]["counter"]
    return rig.forge(shop, "redemption", body, created_at), body


class NotHeld(AssertionError):
    """The city stored a forged message and did not quarantine it: the hole the test names."""


def _expect_held(rig: AttackRig, forged: dict[str, dict], said: str) -> None:
    rig.wait_stored(*forged)
    for msg_id, body in forged.items():
        if not rig.quarantined(msg_id):
            time.sleep(5)  # the write path judges a batch at once: longer than this is not coming
        if not rig.quarantined(msg_id):
            counted = "counted in the totals" if rig.in_totals(body["redemption_id"]) else "not counted"
            raise NotHeld(f"sale for {body['period']} stored, not quarantined, {counted}")
        rig.expect_quarantined(msg_id, said)
        assert not rig.in_totals(body["redemption_id"])
    code, findings = rig.report()
    assert code == 1 and all(_critical(findings, msg_id) for msg_id in forged), findings


def test_sale_booked_into_another_month_is_quarantined(rig):
    """Attack 12: the shop owner books sales, made now, into a month whose allowance the household
    never used (last month) or has not reached (2099-12), each with a genuine card proof for that
    period (the attacker's terminal; a card takes any period not before its record). Counted there,
    the household is served on an allowance that lapsed or does not exist yet."""
    from pos.period import Period

    last_month = str(Period.parse(_period()).previous())
    forged = dict([_booked(rig, "bd", last_month), _booked(rig, "fu", "2099-12")])
    _expect_held(rig, forged, "period")
    rig.assert_honest_landed()


def test_sale_backdated_with_its_time_is_flagged(rig):
    """Attack 12b: as 12, but the message's created_at is backdated too (the device writes it), to
    the last day of last month. Its sequence number comes after sales of this month from the same
    device: time going backwards along one device's sequence is what gives it away."""
    from datetime import timedelta

    from pos.clock import SystemClock, iso
    from pos.period import WITA, Period

    now = SystemClock().now()
    first_of_month = now.astimezone(WITA).replace(day=1, hour=12, minute=0, second=0, microsecond=0)
    back = first_of_month - timedelta(days=1)
    forged = dict([_booked(rig, "bt", str(Period.of(back)), iso(back))])
    _expect_held(rig, forged, "created_at")
    rig.assert_honest_landed()


def test_sale_for_a_household_the_city_barred_is_quarantined(rig):
    """Attack 13: the shop owner (the counter would refuse; an offline counter on an old ledger
    would not) sells to a household the city revoked, and to one whose validity ended last month,
    each with the household's genuine card (issued before, still in its hands, not hotlisted). The
    city must judge the sale by its own list as it stood at the sale's time."""
    shop = rig.shops[0]
    template = _template(rig, shop)
    forged = {}
    for household in (rig.household("revoked"), rig.household("out_of_dates")):
        card = rig.issue("barred", household)
        body = _body_like(template, household=household, card_id=f"CARD-{household}-barred")
        body["card"] = _card_signed(rig, card, shop, body["redemption_id"], template["total"], template["lines"])
        body["card_counter"] = body["card"]["proof"]["counter"]
        forged[rig.forge(shop, "redemption", body)] = body
    _expect_held(rig, forged, "household")
    rig.assert_honest_landed()


def test_void_after_the_city_window_is_quarantined(rig):
    """Attack 14: a shop voids its own sale (taking it out of the city's totals, the goods long
    gone) later than the window the city sets (`ewarung central policy set --void-window-minutes`).
    Quarantined as critical; the sale stays in the totals. Last in the module: it shortens the
    window for everything after it."""
    from datetime import timedelta

    from pos.clock import iso, parse_iso

    a = rig.shops[0]
    sale = rig.sell_honestly(a, rig.issue("late-void", rig.household("BPNT")), {"KCGHIJAU": 1})
    rig.assert_honest_landed()
    out = rig.central_cli("policy", "set", "--void-window-minutes", "30")
    assert out.returncode == 0, out.stdout + out.stderr
    made = parse_iso(a.sale_message(sale["redemption_id"])["envelope"]["created_at"])
    late = rig.forge(a, "void", {"void_id": str(uuid.uuid4()), "redemption_id": sale["redemption_id"],
                                 "household": sale["household"], "period": _period(), "amount": sale["total"],
                                 "reason": "salah barang", "cashier": "kasir1", "supervisor": "spv1"},
                     iso(made + timedelta(minutes=31)))
    rig.wait_stored(late)
    rig.expect_quarantined(late, "void", "window")
    assert rig.in_totals(sale["redemption_id"])
    code, findings = rig.report()
    assert code == 1 and _critical(findings, late), findings
    rig.assert_honest_landed()
