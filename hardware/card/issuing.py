"""Personalizing SSN card files (issuer side) and the field testers' deck from the sample city."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from hardware.card import certificate
from hardware.card.cardfile import CardFile, CardMemory, new_pin
from pos.ports import CardCertificate
from pos.signing import private_pem

DEFAULT_PIN = "123456"
DEFAULT_TRIES = 3


@dataclass(frozen=True)
class IssueRequest:
    """What the issuer writes on one card: its ids, validity, PIN and try count, and for a test or demo
    card a label naming its role."""

    card_id: str
    household_id: str
    valid_from: date
    valid_until: date
    pin: str = DEFAULT_PIN
    pin_tries: int = DEFAULT_TRIES
    label: str = ""


def issue(path: Path, req: IssueRequest, issuer: ec.EllipticCurvePrivateKey, *,
          card_key: ec.EllipticCurvePrivateKey | None = None, sign_with: ec.EllipticCurvePrivateKey | None = None,
          cert_key: ec.EllipticCurvePublicKey | None = None) -> CardFile:
    """Write a card file. `sign_with` (forgery) and `card_key`/`cert_key` (cloning) exist for the test deck."""
    if not Path(path).parent.is_dir():
        raise ValueError(f"the folder {Path(path).parent} does not exist; create it first")
    card = CardFile(Path(path), personalise(req, issuer, card_key=card_key, sign_with=sign_with, cert_key=cert_key))
    card.save()
    return card


def personalise(req: IssueRequest, issuer: ec.EllipticCurvePrivateKey, *,
                card_key: ec.EllipticCurvePrivateKey | None = None, sign_with: ec.EllipticCurvePrivateKey | None = None,
                cert_key: ec.EllipticCurvePublicKey | None = None) -> CardMemory:
    """A card's memory as the issuer writes it, not yet on disk: the in-process fake card's chip
    (hardware.card.fake) and the card file are personalised by this one function."""
    for what, value in (("card id", req.card_id), ("household id", req.household_id)):
        if not certificate.valid_id(value):
            raise ValueError(f"{what} {value!r}: use 1 to 40 of A-Z a-z 0-9 . _ - (the card spec's alphabet; "
                             "terminals refuse anything else)")
    if not 1 <= req.pin_tries <= 15:
        raise ValueError("pin tries must be 1..15")
    if req.valid_until < req.valid_from:
        raise ValueError("valid_until is before valid_from")
    card_key = card_key or ec.generate_private_key(ec.SECP256R1())
    info = CardCertificate(req.card_id, req.household_id, req.valid_from, req.valid_until,
                           certificate.key_id(issuer.public_key()))
    cert = certificate.sign(info, cert_key or card_key.public_key(), sign_with or issuer)
    salt, digest = new_pin(req.pin)
    return CardMemory(private_pem(card_key).decode(), cert.hex(), salt, digest, req.pin_tries, req.pin_tries,
                      "", 0, 0, req.label)


DECK_ROLES = ("holder", "representative", "revoked", "expired", "pin_blocked", "used_up", "forged", "cloned")


def make_deck(directory: Path, issuer: ec.EllipticCurvePrivateKey, today: date, period: str) -> dict[str, Path]:
    """The field testers' deck: one card file per role (see the README it writes)."""
    from pos.sample_city import NOTABLE, household_id

    directory.mkdir(parents=True, exist_ok=True)
    hid = {role: household_id(i) for i, role in NOTABLE.items()}
    start, end = date(today.year, 1, 1), date(today.year + 2, 12, 31)
    paths: dict[str, Path] = {}

    def card(role: str, card_id: str, household: str, **kw) -> CardFile:
        req = IssueRequest(card_id, household, kw.pop("valid_from", start), kw.pop("valid_until", end), label=role)
        paths[role] = directory / f"{role}.card.json"
        return issue(paths[role], req, issuer, **kw)

    card("holder", f"CARD-{hid['holder']}", hid["holder"])
    card("representative", f"CARD-{hid['representative']}", hid["representative"])
    card("revoked", "CARD-REVOKED-DEMO", hid["holder"])
    card("expired", f"CARD-EXP-{hid['holder']}", hid["holder"], valid_from=date(today.year - 3, 1, 1),
         valid_until=today - timedelta(days=1))
    blocked = card("pin_blocked", f"CARD-BLK-{hid['partly_spent']}", hid["partly_spent"])
    blocked.memory.pin_tries_left = 0
    blocked.save()
    used = card("used_up", f"CARD-{hid['used_up']}", hid["used_up"])
    used.memory.spend_period, used.memory.spent, used.memory.counter = period, 200_000, 1
    used.save()
    card("forged", f"CARD-FRG-{hid['lansia']}", hid["lansia"], sign_with=ec.generate_private_key(ec.SECP256R1()))
    # the clone: a genuine certificate (the holder's data) in a chip holding another key
    genuine = CardFile.load(paths["holder"])
    clone = card("cloned", f"CARD-{hid['holder']}", hid["holder"])
    clone.memory.certificate_hex = genuine.memory.certificate_hex
    clone.save()
    (directory / "README.md").write_text(_readme(hid, paths))
    return paths


def _readme(hid: dict[str, str], paths: dict[str, Path]) -> str:
    rows = {
        "holder": (hid["holder"], "served; PIN 123456"),
        "representative": (hid["representative"], "served; collected by the registered representative"),
        "revoked": (hid["holder"], "refused: card_revoked (card id CARD-REVOKED-DEMO is on the hotlist)"),
        "expired": (hid["holder"], "refused: card_expired (certificate ended yesterday)"),
        "pin_blocked": (hid["partly_spent"], "authenticates, then refused: pin_blocked (try counter 0)"),
        "used_up": (hid["used_up"], "refused: allowance_used_up (card and ledger record 200,000 spent)"),
        "forged": (hid["lansia"], "refused: card_forged (certificate signed by a key that is not the issuer's)"),
        "cloned": (hid["holder"], "refused: card_cloned (holder's certificate copied; chip holds another key)"),
    }
    lines = ["# Field testers' card deck (DEMO issuer, sample city)", "",
             "Every card's PIN is 123456 with 3 tries. Insert one with "
             "`ewarung card insert DIR/<role>.card.json`, pull it with `ewarung card remove`.", "",
             "| file | household | what the counter must do |", "|---|---|---|"]
    for role in DECK_ROLES:
        lines.append(f"| {paths[role].name} | {rows[role][0]} | {rows[role][1]} |")
    return "\n".join(lines) + "\n"
