"""The city's cross-message checks in the consumer's write path: what is counted, what is quarantined.

A message signed by a registered device is stored and acknowledged (the device keeps its sequence
and is not asked to resend evidence of its own fraud), but it only reaches the totals
(central_redemption, central_void, central_event) when its content passed the verify step's
checks (`Accepted.problems`) and these, judged against everything the city already holds:
- a redemption id used by another message (an id collision is flagged, never dropped);
- a card counter already charged for another redemption (clone or replay; `card_chain`);
- a card on the hotlist at the sale's time; unit prices not those of the named ledger version's
  catalog, or a ledger version the city never published (`catalog_history`);
- a message dated back along its device's sequence (`device_clock`);
- a sale for a household not active, or out of its dates, on the city's list at the sale's time
  (`household_history`);
- a void not by the sale's device, of a quarantined sale, outside the city's void window, or not
  for the sale's amount. A void whose sale has not arrived waits in central_void_pending and is
  judged when the sale arrives (or reported as `void_without_sale`).
Each batch is judged with a few set queries (ids, counters, hotlist spans, catalogs), never one
query per message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from pos.clock import parse_iso
from sync.central.card_chain import ChainBatch
from sync.central.catalog_history import PriceBook, listed_at_time
from sync.central.city_policy import city_policy
from sync.central.device_clock import clock_steps_back
from sync.central.household_history import HouseholdHistory
from sync.central.message_store import Accepted, insert_rows, select_in
from sync.central.store import PendingVoid, Quarantined, VoidRecord, central_db

QUARANTINE_COLUMNS = ["msg_id", "device", "seq", "kind", "rule", "reason", "severity", "household", "period",
                      "card_id", "ref", "amount", "created_at"]
VOID_COLUMNS = ["id", "msg_id", "device", "redemption_id", "household", "period", "amount", "reason", "created_at"]
PENDING_COLUMNS = ["id", "msg_id", "device", "seq", "redemption_id", "household", "period", "amount", "reason",
                   "created_at"]


@dataclass
class Judgement:
    """What a batch's write transaction does beyond storing the messages."""

    quarantine: dict[str, tuple] = field(default_factory=dict)  # msg id -> central_quarantine row
    counters: list[tuple] = field(default_factory=list)  # central_card_counter rows
    pending: list[tuple] = field(default_factory=list)  # voids waiting for their sale
    settled: list[tuple] = field(default_factory=list)  # waiting voids now counted (central_void rows)
    done: list[str] = field(default_factory=list)  # waiting void ids judged now

    def uncounted(self) -> set[str]:
        """Message ids stored without their totals row: quarantined, or a void waiting for its sale."""
        return set(self.quarantine) | {row[1] for row in self.pending}


class Sale(NamedTuple):
    """What a void is judged against: the sale's device, total and time (a tuple: one per sale)."""

    device: str
    total: int
    created_at: str


def sale_of(m: Accepted) -> Sale:
    """What a void is judged against, from a redemption counted in the same batch."""
    return Sale(m.device, int(m.envelope["body"]["total"]), m.envelope["created_at"])


class CrossChecks:
    """Judges batches for one consumer; keeps the catalogs it loaded (a release never changes them)."""

    def __init__(self) -> None:
        self.prices = PriceBook()
        self.households = HouseholdHistory()

    def judge(self, new: list[Accepted]) -> Judgement:
        """Decide, for the new messages of a batch, which are quarantined and why (module docstring)."""
        out = Judgement()
        reds = [m for m in new if m.kind == "redemption"]
        voids = [m for m in new if m.kind == "void"]
        for m in new:
            if m.problems:
                quarantine_message(out, m, "content", "; ".join(m.problems)[:2000])
        policy = city_policy() if new else None
        for m, reason in clock_steps_back(new, policy.clock_step_back_seconds if policy else 0):
            quarantine_message(out, m, "created_at", reason)
        if not reds and not voids and not any(m.kind == "event" for m in new):
            return out
        rids = [m.envelope["body"]["redemption_id"] for m in reds]
        void_rids = [m.envelope["body"]["redemption_id"] for m in voids]
        stored = {rid: Sale(dev, total, created) for rid, dev, total, created in select_in(
            "SELECT id, device, total, created_at FROM central_redemption WHERE id IN ({in})", rids + void_rids)}
        quarantined_sales = {ref for (ref,) in select_in(
            "SELECT ref FROM central_quarantine WHERE kind = 'redemption' AND ref IN ({in})", rids + void_rids)}
        chain = ChainBatch(new)
        counted = self._sales(out, reds, stored, quarantined_sales, chain)
        chain.charges(out)
        out.counters = chain.rows
        window = policy.void_window_minutes if voids and policy else None
        if out.quarantine:
            quarantined_sales |= {m.envelope["body"]["redemption_id"] for m in reds if m.envelope["id"] in out.quarantine}
        self._voids(out, voids, stored, counted, quarantined_sales, window)
        self._waiting(out, reds, counted, window)
        return out

    def _sales(self, out: Judgement, reds: list[Accepted], stored: dict[str, Sale], quarantined_sales: set[str],
               chain: ChainBatch) -> dict[str, Accepted]:
        """Judge each redemption in order; return the sales counted from this batch, by redemption id
        (their messages: `sale_of` makes a Sale of the few a void names)."""
        counted: dict[str, Accepted] = {}
        if reds:
            self.prices.refresh()
        spans = chain.hotlist_spans()
        book = self.households.book([m.envelope["body"]["household"] for m in reds
                                     if m.envelope["id"] not in out.quarantine], self.prices.published)
        catalogs: dict[object, tuple[int, dict[str, int]] | None] = {}  # ledger version -> catalog, for this batch
        priced = self.prices.active  # False: the city has published no catalog yet, nothing to price by
        quarantined, seen = out.quarantine, set()
        for m in reds:
            env = m.envelope
            body, mid = env["body"], env["id"]
            rid = body["redemption_id"]
            if mid in quarantined:
                seen.add(rid)
                continue
            problem = None
            if rid in stored or rid in quarantined_sales or rid in seen:
                other = stored.get(rid)
                by = f" (stored from {other.device})" if other else ""
                problem = ("id_collision", f"redemption id {rid} was already used by another message{by}: "
                           "both kept, this one not counted")
            seen.add(rid)
            problem = problem or chain.sale(m)
            card_id = chain.cards[mid][0]
            if problem is None and card_id and card_id in spans:
                reason = listed_at_time(spans[card_id], m.seconds())
                if reason:
                    problem = ("hotlisted", f"card {card_id} was on the hotlist ({reason}) at the sale's time "
                               f"{env['created_at']}")
            problem = (problem or (priced and self._priced(body, catalogs))
                       or book.judged(body["household"], env["created_at"], m.at))
            if problem:
                quarantine_message(out, m, *problem)
            else:
                counted[rid] = m
        return counted

    def _priced(self, body: dict, catalogs: dict) -> tuple[str, str] | None:
        """A line priced otherwise than the catalog of the ledger version the sale names (`catalogs`:
        the versions looked up for this batch so far); only asked once the city has published a catalog."""
        version = body.get("ledger_version")
        found = catalogs.get(version) if type(version) is int else None  # ints only: True and 1.0 are key 1 too
        if found is None:
            found = self.prices.catalog(version)
            if found is not None:  # so `version` is an int: the catalog refuses anything else
                catalogs[version] = found
        if found is None:
            return "ledger_version", f"ledger version {version!r} was never published by the city"
        cv, prices = found
        for ln in body.get("lines", []):
            item, unit = ln.get("item"), ln.get("unit_price")
            price = prices.get(item)  # a catalog price is an int, never None
            if price is None:
                return "price", f"{item} is not in the catalog of ledger v{version} (catalog of v{cv})"
            if unit != price:
                return "price", f"{item} sold at {unit!r} a unit; the catalog of ledger v{version} says {price}"
        return None

    def _voids(self, out: Judgement, voids: list[Accepted], stored: dict[str, Sale], counted: dict[str, Accepted],
               quarantined_sales: set[str], window: int | None) -> None:
        """Judge each void against its sale; one whose sale has not arrived waits for it."""
        if not voids:
            return
        rids = [m.envelope["body"]["redemption_id"] for m in voids]
        voided = {rid for (rid,) in select_in("SELECT redemption_id FROM central_void WHERE redemption_id IN ({in})", rids)}
        for m in voids:
            if m.envelope["id"] in out.quarantine:
                continue
            body = m.envelope["body"]
            rid = body["redemption_id"]
            sale = sale_of(counted[rid]) if rid in counted else stored.get(rid)
            if sale is None and rid in quarantined_sales:
                quarantine_message(out, m, "void", f"void of sale {rid}, which the city quarantined")
            elif sale is None:
                out.pending.append(_void_row(m, pending=True))
            elif rid in voided:
                quarantine_message(out, m, "void", f"sale {rid} was already voided")
            else:
                problem = void_problem(m.device, body, m.envelope["created_at"], sale, window or 0)
                if problem:
                    quarantine_message(out, m, "void", problem)
                else:
                    voided.add(rid)

    def _waiting(self, out: Judgement, reds: list[Accepted], counted: dict[str, Accepted], window: int | None) -> None:
        """Voids that arrived before their sale, judged now that the sale is here."""
        if not reds:
            return
        rows = waiting_voids([m.envelope["body"]["redemption_id"] for m in reds])
        if rows and window is None:
            window = city_policy().void_window_minutes
        voided: set[str] = set()
        for vid, mid, dev, seq, rid, hh, per, amount, reason, created in rows:
            out.done.append(vid)
            sale = sale_of(counted[rid]) if rid in counted else None
            body = {"redemption_id": rid, "amount": amount}
            problem = (f"void of sale {rid}, which the city quarantined" if sale is None
                       else f"sale {rid} was already voided" if rid in voided
                       else void_problem(dev, body, created, sale, window or 0))
            voided.add(rid)
            if problem:
                out.quarantine[mid] = (mid, dev, seq, "void", "void", problem, "critical", hh, per, "", rid, amount,
                                       created)
            else:
                out.settled.append((vid, mid, dev, rid, hh, per, amount, reason, created))


def waiting_voids(rids: list[str]) -> list[tuple]:
    """The waiting voids (central_void_pending rows) of these sales. Few voids ever wait, so while
    they are fewer than the sales they are read whole, with no lookup per sale."""
    columns = "id, msg_id, device, seq, redemption_id, household, period, amount, reason, created_at"
    head = central_db.obj.execute_sql(f"SELECT {columns} FROM central_void_pending LIMIT {len(rids)}").fetchall()
    if len(head) < len(rids):
        wanted = set(rids)
        return [row for row in head if row[4] in wanted]
    return select_in(f"SELECT {columns} FROM central_void_pending WHERE redemption_id IN ({{in}})", rids)


def void_problem(device: str, body: dict, created_at: str, sale: Sale, window_minutes: int) -> str | None:
    """Why a void may not cancel its sale: another device's, another amount, or outside the window."""
    rid = body["redemption_id"]
    if device != sale.device:
        return f"void by {device} of sale {rid} made by {sale.device}: only the selling device may void"
    amount = body.get("amount")
    if amount != sale.total:
        return f"void amount {amount!r} for sale {rid} of {sale.total}"
    try:
        minutes = (parse_iso(created_at) - parse_iso(sale.created_at)).total_seconds() / 60
    except ValueError:
        return f"void time {created_at!r} is not a time"
    if not 0 <= minutes <= window_minutes:
        return f"void {minutes:.0f} min after sale {rid}; the city's void window is {window_minutes} min"
    return None


def _void_row(m: Accepted, pending: bool) -> tuple:
    b, env = m.envelope["body"], m.envelope
    row = (b["void_id"][:255], env["id"], m.device, b["redemption_id"][:255], str(b.get("household", ""))[:255],
           str(b.get("period", ""))[:255], _int(b.get("amount")), str(b.get("reason", ""))[:255], env["created_at"][:255])
    return (*row[:3], m.seq, *row[3:]) if pending else row


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**31 else 0


def quarantine_message(out: Judgement, m: Accepted, rule: str, reason: str, severity: str = "critical") -> None:
    """Record the first reason a message is not counted (later checks are not run for it)."""
    env = m.envelope
    body = env["body"]
    if env["id"] in out.quarantine:
        return
    ref = body.get("redemption_id") if isinstance(body.get("redemption_id"), str) else ""
    amount = body.get("total") if m.kind == "redemption" else body.get("amount")
    out.quarantine[env["id"]] = (env["id"], m.device, m.seq, m.kind, rule, reason, severity,
                                 str(body.get("household", ""))[:255], str(body.get("period", ""))[:255],
                                 str(body.get("card_id", "") or "")[:255], ref[:255], _int(amount), env["created_at"])


def store_judgement(j: Judgement) -> None:
    """Write what `judge` decided, in the batch's transaction."""
    insert_rows(Quarantined, QUARANTINE_COLUMNS, list(j.quarantine.values()))
    from sync.central.store import CardCounter

    insert_rows(CardCounter, ChainBatch.COLUMNS, j.counters)
    insert_rows(PendingVoid, PENDING_COLUMNS, j.pending, ignore_conflicts=True)
    insert_rows(VoidRecord, VOID_COLUMNS, j.settled, ignore_conflicts=True)
    if j.done:
        for i in range(0, len(j.done), 500):
            PendingVoid.delete().where(PendingVoid.id.in_(j.done[i:i + 500])).execute()

