"""What one device message fails on its own: the card's evidence and the sale's arithmetic.

A registered device's signature proves only that the device sent the message; a shop owner with
root on the device can sign anything. So the city believes a card sale only when the card signed
it (issuer chain, then the card's signature over the transaction rebuilt from the message:
docs/mqtt-contract.md, "Card evidence"), and only sales whose numbers add up. A failure is a
problem, not a rejection: the message is stored and acknowledged, but quarantined and never
counted. Runs in the verify worker processes (sync/central/verify.py), so it is pure and cheap:
one card signature per sale, each certificate's issuer signature once per process.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import ec

from hardware.card.certificate import key_id
from hardware.card.evidence import (
    CertificateCache,
    CertifiedCard,
    EvidenceError,
    card_signed,
    verify,
)
from hardware.card.transaction import record_digest_of, signed_message
from pos.card_proof import (
    HEX32,
    MAX_U32,
    PROOF_OPS,
    body_lines,
    charge_evidence,
    lines_digest,
    redemption_evidence,
    unb64url,
)
from pos.period import WITA
from pos.signing import load_public_key, public_pem

CHARGED_NOT_SOLD = "card_charged_not_sold"
PERIOD = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")  # ASCII digits, nothing before or after
UNCHECKED = "the content could not be checked"
MAX_PROBLEMS = 12  # enough to say what is wrong; a hostile message must not fill the quarantine table
PREPARE_TO_COMMIT = timedelta(minutes=5)
"""How long before its created_at a sale's period may have been fixed: the counter takes the period
when it prepares the sale (pos.redemption: Period.of(now)) and stamps created_at when it commits,
after the card signed; a sale begun at 23:59:59 on the last day of a month is booked in that month.
Longer than any card exchange, far shorter than the month an attacker would book into."""


def demo_issuer_keys() -> dict[str, ec.EllipticCurvePublicKey]:
    """The DEMO issuer's key by key id: the default of tests and of a city that passed no
    --issuer-key (its root says so loudly)."""
    from hardware.card.fake import demo_issuer_keys as demo

    return demo()


def issuer_pems(keys: dict[str, ec.EllipticCurvePublicKey]) -> tuple[str, ...]:
    """The issuer keys as PEM texts, sorted: cheap to send to a worker process and comparable."""
    return tuple(sorted(public_pem(k).decode("ascii") for k in keys.values()))


def issuer_keys_from_pems(pems: tuple[str, ...]) -> dict[str, ec.EllipticCurvePublicKey]:
    """The issuer keys by the key id a certificate names (docs/card-protocol.md: first 8 bytes of
    SHA-256 of the uncompressed point); ValueError for a PEM that is not a P-256 public key."""
    keys = [load_public_key(pem.encode("ascii")) for pem in pems]
    return {key_id(k): k for k in keys}


def _short(value: object) -> str:
    """A value as a reason may quote it: scalars shortened, anything else by its type (a hostile
    message may nest deeply)."""
    if not isinstance(value, (str, int, float, bool, type(None))):
        return f"a JSON {'object' if isinstance(value, dict) else 'array' if isinstance(value, list) else 'value'}"
    text = repr(value)
    return text if len(text) <= 48 else text[:45] + "..."


def sale_date(created_at: object) -> date | None:
    """The day the sale was made on a wall clock in Samarinda (certificates are valid per day)."""
    return _day(sale_moment(created_at))


def _day(moment: datetime | None) -> date | None:
    try:
        return moment.astimezone(WITA).date() if moment is not None else None
    except OverflowError:  # year 9999 past midnight UTC
        return None


def sale_moment(created_at: object) -> datetime | None:
    """The message's created_at as an aware time (None: not an ISO 8601 time with a zone)."""
    if not isinstance(created_at, str):
        return None
    try:
        moment = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
        return moment if moment.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def _month(moment: datetime) -> str:
    return _month_name(moment.astimezone(WITA))


_MONTH_NAMES: dict[int, str] = {}  # year * 12 + month: "YYYY-MM"


def _month_name(local: datetime) -> str:
    """The month ("YYYY-MM") of a time already in WITA, kept (a worker sees a few months, each many times)."""
    key = local.year * 12 + local.month
    name = _MONTH_NAMES.get(key)
    if name is None:
        if len(_MONTH_NAMES) > 1_000:  # hostile created_at years
            _MONTH_NAMES.clear()
        name = _MONTH_NAMES[key] = f"{local.year:04d}-{local.month:02d}"
    return name


def period_problems(period: object, created_at: object, moment: datetime | None) -> list[str]:
    """A sale is booked in the month (WITA) it was made: the counter never writes another period,
    and a card signs any period not before its own record, so a sale booked into last month (an
    allowance that lapsed unused) or into 2099-12 would carry a genuine proof. The month of
    created_at, or of created_at less PREPARE_TO_COMMIT (a sale begun just before midnight).
    `moment`: created_at as sale_moment parsed it (None: not a time)."""
    if not isinstance(period, str) or not PERIOD.fullmatch(period) or moment is None:
        return []  # said by arithmetic_problems / card_matches_body
    month = _month(moment)
    if period == month:
        return []  # the usual case: no second conversion
    try:
        if period == _month(moment - PREPARE_TO_COMMIT):
            return []
    except OverflowError:
        pass
    return [f"period {period} is not the month of the sale's created_at {created_at} "
            f"({month} in Asia/Makassar): a sale is booked in the month it was made"]


def charge_period_problems(period: object, created_at: object, moment: datetime | None) -> list[str]:
    """A card charged with nothing sold is reported at once or at the card's next insertion, so the
    event is made at or after the charge: the charge's period may be before the event's month (a
    card back after months), never after it (a charge booked into a month not begun). `moment`:
    created_at as sale_moment parsed it (None: not a time)."""
    if not isinstance(period, str) or not PERIOD.fullmatch(period):
        return [f"{CHARGED_NOT_SOLD}: period {_short(period)} is not an exact YYYY-MM month"]
    if moment is None:
        return [f"{CHARGED_NOT_SOLD}: created_at is not an ISO 8601 time with a zone"]
    if period > _month(moment):
        return [f"{CHARGED_NOT_SOLD}: the charge's period {period} is after the month of the event's "
                f"created_at {created_at} ({_month(moment)} in Asia/Makassar): a charge is reported after it was made"]
    return []


def arithmetic_problems(body: dict, lines: list[tuple[str, int, int]] | None = None) -> list[str]:
    """The sale's numbers: lines typed, qty >= 1, unit_price >= 0, amount = qty x unit_price,
    total = the sum of the lines and positive, period an exact YYYY-MM month. `lines`: the body's
    lines already parsed by body_lines (else parsed here)."""
    problems = []
    period, total = body.get("period"), body.get("total")
    if not isinstance(period, str) or not PERIOD.fullmatch(period):
        problems.append(f"period {_short(period)} is not an exact YYYY-MM month")
    if isinstance(total, int) and total <= 0:
        problems.append(f"total {total} is not positive: a sale takes something")
    if lines is None:
        try:
            lines = body_lines(body)
        except ValueError as exc:
            return [*problems, str(exc)]
    lines_sum = 0
    for raw, (item, qty, price) in zip(body["lines"], lines, strict=True):
        if qty < 1:
            problems.append(f"line {_short(item)}: quantity {qty} is below 1")
        if price < 0:
            problems.append(f"line {_short(item)}: unit price {price} is negative")
        amount = raw.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount != qty * price:
            problems.append(f"line {_short(item)}: amount {_short(amount)} is not {qty} x {price}")
        lines_sum += qty * price
    if total != lines_sum:
        problems.append(f"total {_short(total)} is not the sum of its lines ({lines_sum})")
    return problems


def card_matches_body(card: CertifiedCard, body: dict, on: date | None) -> list[str]:
    """The certified card is the one the body names (card id, household) and was valid that day."""
    info, problems = card.info, []
    if body.get("card_id") != info.card_id:
        problems.append(f"card_id {_short(body.get('card_id'))} is not the certificate's card {info.card_id}")
    if body.get("household") != info.household_id:
        problems.append(f"household {_short(body.get('household'))} is not the card's household {info.household_id}")
    if on is None:
        problems.append("created_at is not an ISO 8601 time with a zone: the certificate cannot be dated")
    elif not info.valid_from <= on <= info.valid_until:
        problems.append(f"card {info.card_id}'s certificate is valid {info.valid_from}..{info.valid_until}, "
                        f"not on the sale's date {on}")
    return problems


class EvidenceChecks:
    """The per-message checks, with the issuer keys the city trusts and a certificate cache (one
    per worker process: a card sells many times, its issuer signature is checked once)."""

    def __init__(self, issuer_keys: dict[str, ec.EllipticCurvePublicKey]) -> None:
        self.certs = CertificateCache(issuer_keys)

    def problems(self, device_id: str, leaf: str, env: dict, moment: datetime | None) -> tuple[str, ...]:
        """The reasons to quarantine this verified message (empty: nothing wrong on its own);
        `moment` is its created_at as sale_moment parsed it (None: not a time). The usual card sale
        is judged in few steps (`plain_card_sale`), anything else by `detailed_problems`."""
        body = env["body"]
        if leaf == "redemption":
            plain = self.plain_card_sale(device_id, body, moment)
            if plain is not None:
                return tuple(plain)
        return self.detailed_problems(device_id, leaf, env, moment)

    def detailed_problems(self, device_id: str, leaf: str, env: dict, moment: datetime | None) -> tuple[str, ...]:
        """`problems` judged check by check, every problem worded (at most MAX_PROBLEMS)."""
        body = env["body"]
        try:
            if leaf == "redemption":
                found = self.detailed_redemption(device_id, body, env.get("created_at"), moment)
            elif leaf == "event" and body.get("event") == CHARGED_NOT_SOLD:
                found = self.charge(device_id, body, env.get("created_at"), moment)
            else:
                return ()
        except Exception as exc:  # noqa: BLE001 - a bug here must quarantine one message, not stall every batch
            return (f"{UNCHECKED}: {type(exc).__name__}: {str(exc)[:200]} (a bug in the city's checks: report it)",)
        if len(found) > MAX_PROBLEMS:
            found = [*found[:MAX_PROBLEMS - 1], f"and {len(found) - MAX_PROBLEMS + 1} more problems"]
        return tuple(found)

    def plain_card_sale(self, device_id: str, body: dict, moment: datetime | None) -> list[str] | None:
        """The verdict on a card sale exactly as an honest counter sends it, in few steps (every card
        sale pays for this on the city's hot path): [] when every check of `detailed_redemption`
        passes, or the card evidence's one reason when all else passed but the card's certificate
        or signature does not verify (as `detailed_redemption` says it). None the moment anything
        else is not as expected, for `detailed_redemption` to judge and word: it stays the one
        source of every other problem's text. The encodings are the ones the card's evidence is
        checked with (lines_digest, record_digest_of, signed_message)."""
        ready = self.plain_sale_ready(device_id, body, moment)
        return signed_verdict(ready) if type(ready) is tuple else ready

    def plain_sale_ready(self, device_id: str, body: dict,
                         moment: datetime | None) -> tuple[CertifiedCard, bytes, bytes] | list[str] | None:
        """`plain_card_sale` up to the card's signature, so a batch can verify its signatures one
        after another: (card, signature, signed bytes) for `signed_verdict` when every other check
        passed, or the verdict already reached (the certificate's reason, or None)."""
        try:  # a missing key raises KeyError, a value of another type TypeError: the detailed checks judge
            if body["mode"] != "card" or moment is None:
                return None
            card, lines, total, period = body["card"], body["lines"], body["total"], body["period"]
            if (type(card) is not dict or type(lines) is not list or not lines or type(total) is not int
                    or not 0 < total <= MAX_U32 or type(period) is not str):
                return None
            proof, rid, certificate = card["proof"], body["redemption_id"], card["certificate"]
            if type(proof) is not dict or type(rid) is not str or type(certificate) is not str:
                return None
            sold, lines_sum = [], 0
            for ln in lines:
                if type(ln) is not dict:
                    return None
                item, qty, price, amount = ln["item"], ln["qty"], ln["unit_price"], ln["amount"]
                if (type(item) is not str or type(qty) is not int or type(price) is not int
                        or type(amount) is not int or qty < 1 or price < 0 or amount != qty * price):
                    return None
                sold.append((item, qty, price))
                lines_sum += amount
            op, counter, period_total, challenge = proof["op"], proof["counter"], proof["period_total"], proof["challenge"]
            if (lines_sum != total or type(op) is not int or op not in PROOF_OPS or type(counter) is not int
                    or not 0 <= counter <= MAX_U32 or body["card_counter"] != counter
                    or type(period_total) is not int or not total <= period_total <= MAX_U32
                    or type(challenge) is not str or not HEX32.fullmatch(challenge)):
                return None
            local = moment.astimezone(WITA)
            if period != _month_name(local):  # an exact YYYY-MM too
                return None
            signature = unb64url(proof["signature"], "signature")
            message = signed_message(op, bytes.fromhex(challenge), record_digest_of(
                device_id, rid, period, total, period_total, lines_digest(sold), counter))
            certified = self.certs.by_text.get(certificate)
            if certified is None:
                raw = unb64url(certificate, "certificate")
                try:
                    certified = self.certs.certified(raw, certificate)
                except EvidenceError as exc:
                    return [str(exc)]
            info = certified.info
            if (body["card_id"] != info.card_id or body["household"] != info.household_id
                    or not info.valid_from <= local.date() <= info.valid_until):
                return None
            return certified, signature, message
        except Exception:  # noqa: BLE001 - whatever this path did not expect, the detailed checks judge
            return None

    def detailed_redemption(self, device_id: str, body: dict, created_at: object,
                            moment: datetime | None) -> list[str]:
        """A sale judged check by check, every problem worded: the arithmetic, the mode, and for a
        card sale the card's proof of exactly it. The lines are parsed once, for the arithmetic and
        the card's lines digest alike."""
        try:
            lines = body_lines(body)
        except ValueError:
            lines = None  # arithmetic_problems says what is wrong with them
        problems = arithmetic_problems(body, lines)
        problems += period_problems(body.get("period"), created_at, moment)
        mode, card = body.get("mode"), body.get("card", ...)
        if card is ...:
            problems.append("no card field: ewarung.redemption/2 carries the card's proof (or null for an override)")
        elif mode == "override":
            if card is not None:
                problems.append("an override carries card evidence: an override is a sale without the card")
            reason = body.get("override_reason")
            if not isinstance(reason, str) or not reason.strip():
                problems.append("an override without an override_reason")
        elif mode == "card":
            if card is None:
                problems.append("a card sale without the card's proof (card is null)")
            else:
                problems += self._card_sale(device_id, body, moment, lines)
        else:
            problems.append(f"mode {_short(mode)} is neither card nor override")
        return problems

    def _card_sale(self, device_id: str, body: dict, moment: datetime | None,
                   lines: list[tuple[str, int, int]] | None) -> list[str]:
        try:
            ev = redemption_evidence(device_id, body, lines)
            card = verify(ev, self.certs)
        except EvidenceError as exc:
            return [str(exc)]
        except ValueError as exc:
            return [f"card evidence is malformed: {exc}"]
        problems = card_matches_body(card, body, _day(moment))
        if body.get("card_counter") != ev.counter:
            problems.append(f"card_counter {_short(body.get('card_counter'))} is not the proof's counter {ev.counter}")
        if ev.transaction.period_total < ev.transaction.amount:
            problems.append(f"the card's period total {ev.transaction.period_total} is below this sale's "
                            f"{ev.transaction.amount}")
        return problems

    def charge(self, device_id: str, body: dict, created_at: object, moment: datetime | None) -> list[str]:
        """A card charged with nothing sold: the card signed the transaction the event states, for
        this device, and the event's own fields say the same (the city credits the household by them)."""
        try:
            ev = charge_evidence(body)
        except ValueError as exc:
            return [f"{CHARGED_NOT_SOLD}: card evidence is malformed: {exc}"]
        tx = ev.transaction
        if tx.device_id != device_id:
            return [f"{CHARGED_NOT_SOLD}: the charge was made by device {_short(tx.device_id)}, not by {device_id}"]
        if not tx.redemption_id:
            return [f"{CHARGED_NOT_SOLD}: the card's record names no redemption (not a sale's charge)"]
        try:
            card = verify(ev, self.certs)
        except EvidenceError as exc:
            return [f"{CHARGED_NOT_SOLD}: {exc}"]
        problems = []
        for name, want in (("household", card.info.household_id), ("card_id", card.info.card_id),
                           ("redemption_id", tx.redemption_id), ("amount", tx.amount), ("period", tx.period)):
            if body.get(name) != want or isinstance(body.get(name), bool):
                problems.append(f"{CHARGED_NOT_SOLD}: {name} {_short(body.get(name))} is not the card's {want}")
        return problems + charge_period_problems(tx.period, created_at, moment)


def signed_verdict(ready: tuple[CertifiedCard, bytes, bytes]) -> list[str] | None:
    """A plain card sale's verdict from the card's signature (`EvidenceChecks.plain_sale_ready`):
    [] when the card signed exactly the sale, [the reason] when not, None for anything unexpected
    (the detailed checks then judge the sale, and say it)."""
    try:
        card_signed(*ready)
    except EvidenceError as exc:
        return [str(exc)]
    except Exception:  # noqa: BLE001
        return None
    return []
