"""The card protocol's test vectors (docs/card-protocol.md, "Test vectors"): one fixed card, fixed
challenges and one fixed sale, run through the terminal's whole procedure.

`python -m tests.unit.card.card_vectors` prints the block the spec quotes; test_card_vectors checks
the spec's block against the applet and the client.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import count

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from hardware.card import apdu, tlv, transaction
from hardware.card.applet import Applet
from hardware.card.cardfile import CardMemory, new_pin
from hardware.card.certificate import key_id
from hardware.card.client import CardClient
from hardware.card.fake import ChipMemory
from hardware.card.issuing import private_pem
from pos.card_proof import CardTransaction, lines_digest

CARD_SCALAR = 0x7CBB895ED1979DF57FD591D157D54E314268D4F237574411FA0134199B192161
CERTIFICATE = bytes.fromhex(
    "7081E1718195C00101C115434152442D53534E2D363437322D30303030303031C21053534E2D363437322D30303030303031C3"
    "083230323630313031C4083230323731323331C51037363064353339323864326664326464C64104F85A92DE8CF4C09F96EA"
    "DC7C0AF05E8A85A1AE7D41013467BCBE8CC2D62F2E2DBC085E4060939F7CEB23968D83CF5E7ED6F5703A586EC300E8A13170"
    "179F317A72473045022100D7255F4670FFD203A6DBB156774E17EAFB5B3C7349E8015AFED82016C8A1763D022064DEC0BD38"
    "58209527C5E028C299C312036CA616B21CA04086B6901D284B1573"
)
PIN = "123456"
LINES = [("BERAS5", 1, 68_000), ("TELUR10", 2, 25_000)]
SALE = CardTransaction("EW-DEMO-01", "6f1c3a52-0d8e-4b7e-9a55-3c2f1e0b7d10", "2026-11", 118_000, 118_000,
                       lines_digest(LINES))


class VectorApplet(Applet):
    """The applet signing with RFC 6979, so the vectors' answers are reproducible byte for byte."""

    signature_algorithm = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)


def card() -> VectorApplet:
    """The fixed card: the spec's private scalar and certificate, PIN 123456, 3 tries, never used."""
    key = ec.derive_private_key(CARD_SCALAR, ec.SECP256R1())
    salt, pin_hash = new_pin(PIN)
    return VectorApplet(ChipMemory(CardMemory(private_pem(key).decode(), CERTIFICATE.hex(), salt, pin_hash, 3, 3,
                                              "", 0, 0)))


def challenges() -> Callable[[int], bytes]:
    """The terminal's challenges, in order: 00..0F, 10..1F, 20..2F, ..."""
    n = count()

    def fixed(length: int) -> bytes:
        first = next(n) * length
        return bytes(range(first, first + length))

    return fixed


def issuer_keys() -> dict[str, ec.EllipticCurvePublicKey]:
    """The DEMO issuer, which signed the fixed certificate."""
    from pos.sample_city import demo_key

    pub = demo_key("issuer").public_key()
    return {key_id(pub): pub}


def run(transmit: Callable[[bytes], bytes]) -> dict[str, object]:
    """The terminal's procedure over `transmit`: authenticate, look for an uncommitted sale, PIN,
    spend, read the sale back. Returns what the client concluded at each step."""
    client = CardClient(transmit, issuer_keys(), random=challenges())
    auth = client.authenticate()
    before = client.last_transaction()
    client.verify_pin(PIN)
    proof = client.spend(SALE)
    after = client.last_transaction()
    return {"auth": auth, "before": before, "proof": proof, "after": after}


def transcript() -> list[tuple[bytes, bytes]]:
    """Every (command, answer) of `run` against the fixed card."""
    applet, pairs = card(), []

    def transmit(command: bytes) -> bytes:
        answer = applet.process(command)
        pairs.append((command, answer))
        return answer

    run(transmit)
    return pairs


def without_signatures(answer: bytes) -> bytes:
    """An answer with its card signatures (74) emptied: what must match byte for byte whatever the
    card's ECDSA nonce (the signatures are checked by verifying them)."""
    data, sw = answer[:-2], answer[-2:]
    try:
        items = tlv.parse(data)
    except tlv.TlvError:
        return answer
    return tlv.encode_all([(t, b"" if t == apdu.T_STATE_SIG else v) for t, v in items]) + sw


def block() -> str:
    """The vectors as the spec quotes them: one `> command` and `< answer` line per exchange."""
    pairs = transcript()
    record = tlv.parse(pairs[-1][1][:-2])[0]
    tx_digest = transaction.digest(tlv.encode(*record))
    lines = [f"card private scalar: {CARD_SCALAR:#066x}", f"lines digest: {SALE.lines_digest.hex().upper()}",
             f"transaction digest: {tx_digest.hex().upper()}"]
    for command, answer in pairs:
        lines += [f"> {command.hex().upper()}", f"< {answer.hex().upper()}"]
    return "\n".join(lines)


if __name__ == "__main__":
    print(block())
