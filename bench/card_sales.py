"""Redemption messages (schema ewarung.redemption/2) carrying real card evidence, for the central
benchmark: a few hundred cards personalised by the DEMO issuer, each a real Applet that signs
every SPEND through the terminal's own CardClient (hardware.card.fake.FakeReader), and devices
that sign the envelopes. Made before any clock starts; nothing here is measured.

The sales are honest, so the city has nothing to quarantine: each card visits the shops in turn,
spends at most its 200,000 allowance per period at catalog prices, one period after another
(created_at inside the sale's period, the card's counter and period total growing as the card
keeps them). Message and redemption ids are minted as a device mints them (`pos.ids.new_id`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pos.sample_city import CATALOG

# Baskets at sample-city catalog prices, each under a quarter of the BPNT allowance (200,000):
# four sales per household per period stay within it.
PRICES = {code: price for code, _, _, _, price in CATALOG}
BASKETS = (
    (("TELUR10", 1), ("GULA1", 1)),
    (("MINYAK1", 2),),
    (("TEMPE", 2), ("TAHU", 1), ("TERIGU1", 1)),
    (("SARDEN", 1), ("KCGHIJAU", 1)),
)
SALES_PER_PERIOD = 4
FIRST_PERIOD = (2025, 1)  # periods run on from here, one per SALES_PER_PERIOD sales of a card
CARD_VALID = (date(2025, 1, 1), date(2029, 12, 31))
PIN = "123456"


@dataclass(frozen=True)
class CardSales:
    """What a benchmark needs: the devices' registered keys and the signed messages, in the order a
    live city would deliver them (devices interleaved, each device's messages in sequence order)."""

    device_keys: list[tuple[str, str]]  # (device id, public key PEM)
    messages: list[tuple[str, bytes]]  # (topic, signed token)
    cards: int
    issuer_keys: dict
    households: list[str]  # the cards' households, for the city's list


def _period(index: int) -> str:
    year, month = FIRST_PERIOD
    months = year * 12 + month - 1 + index
    return f"{months // 12:04d}-{months % 12 + 1:02d}"


def _cards(count: int):
    """`count` cards, each in its own in-process reader, authenticated and PIN-verified."""
    from hardware.card.applet import Applet
    from hardware.card.fake import ChipMemory, FakeReader, demo_issuer, demo_issuer_keys
    from hardware.card.issuing import IssueRequest, personalise
    from pos.sample_city import household_id

    issuer, keys = demo_issuer(), demo_issuer_keys()
    sessions = []
    for c in range(count):
        hid = household_id(100 + c)
        memory = personalise(IssueRequest(f"CARD-{hid}", hid, *CARD_VALID, pin=PIN), issuer)
        reader = FakeReader(keys)
        reader.insert(Applet(ChipMemory(memory)))
        session = reader.open_session()
        auth = session.authenticate()
        session.verify_pin(PIN)
        sessions.append((session, auth))
    return keys, sessions


def card_sales(n: int, devices: int, cards: int) -> CardSales:
    """`n` redemptions (rounded down to whole rounds of `cards` sales) from `devices` devices, each
    carrying the SPEND proof its card signed for exactly that sale."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from pos.card_proof import CardTransaction, lines_digest, redemption_card
    from pos.ids import new_id
    from pos.messages import build_envelope, device_topic, sign_envelope
    from pos.signing import EcdsaSigner, public_pem

    issuer_keys, sessions = _cards(cards)
    signers, device_keys = [], []
    for d in range(devices):
        key = ec.generate_private_key(ec.SECP256R1())
        did = f"EW-BENCH-{d:04d}"
        signers.append(EcdsaSigner(key, did))
        device_keys.append((did, public_pem(key.public_key())))
    seqs = [0] * devices
    spent: list[tuple[str, int]] = [("", 0)] * cards  # each card's (period, total spent in it)
    messages = []
    for k in range(n // cards):  # round k: every card makes its k-th sale
        period = _period(k // SALES_PER_PERIOD)
        created_at = f"{period}-{5 + k % SALES_PER_PERIOD:02d}T02:00:00.000Z"
        for c, (session, auth) in enumerate(sessions):
            d = (c + k) % devices  # a card visits the shops in turn
            signer, seqs[d] = signers[d], seqs[d] + 1
            lines = [(item, qty, PRICES[item]) for item, qty in BASKETS[(c + k) % len(BASKETS)]]
            total = sum(q * p for _, q, p in lines)
            before = spent[c][1] if spent[c][0] == period else 0
            rid = new_id()
            proof = session.spend(CardTransaction(signer.key_id, rid, period, total, before + total,
                                                  lines_digest(lines)))
            spent[c] = (period, before + total)
            cert = auth.certificate
            body = {
                "redemption_id": rid, "receipt_no": seqs[d], "shop_id": f"SMD-{d:03d}",
                "household": cert.household_id, "card_id": cert.card_id, "card_counter": proof.counter,
                "period": period, "mode": "card", "override_reason": "",
                "collected_by": {"kind": "holder", "representative_id": "", "name": "Siti Rahmawati"},
                "cashier": "kasir1", "ledger_version": 1,
                "lines": [{"item": i, "qty": q, "unit_price": p, "amount": q * p} for i, q, p in lines],
                "total": total, "remaining_after": 200_000 - before - total,
                "card": redemption_card(auth.certificate_bytes, proof),
            }
            env = build_envelope("redemption", new_id(), signer.key_id, seqs[d], created_at, body)
            env["schema"] = "ewarung.redemption/2"
            messages.append((device_topic(signer.key_id, "redemption"), sign_envelope(env, signer)))
    return CardSales(device_keys, messages, cards, issuer_keys, [auth.certificate.household_id for _, auth in sessions])
