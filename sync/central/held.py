"""What the city holds back from the totals, for the report and the listing: quarantined messages and
voids still waiting for their sale.

The report gives one row per held message, until one device floods a rule: past `GROUP_AFTER`
messages of one device, one rule and one period it gives a single grouped row (count, amount,
first and last time, a few message ids and the command that lists them all), so that an override
or forged-sale flood cannot bury the report a city officer reads. `ewarung central quarantine list`
prints every row.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from sync.central.store import PendingVoid, Quarantined

GROUP_AFTER = 20  # held messages of one device, rule and period listed one by one; more are grouped
EXAMPLES = 3  # message ids named in a grouped row
WAITING_RULE = "void_without_sale"  # the rule a waiting void is listed under
_WORST = {"critical": 0, "warning": 1, "info": 2}


class Held(NamedTuple):
    """One held message: a quarantined one, or a void waiting for a sale the city never received."""

    rule: str
    severity: str
    device: str
    period: str
    household: str
    amount: int
    created_at: str
    msg_id: str
    detail: str


def held_rows(period: str | None = None, device: str | None = None, rule: str | None = None) -> Iterator[Held]:
    """Every held message (quarantined first, in the order they were quarantined; then waiting voids,
    oldest first), only those of this period, device and rule when given."""
    if rule != WAITING_RULE:
        q = Quarantined.select(Quarantined.rule, Quarantined.severity, Quarantined.device, Quarantined.period,
                               Quarantined.household, Quarantined.amount, Quarantined.created_at,
                               Quarantined.msg_id, Quarantined.kind, Quarantined.seq, Quarantined.reason)
        for column, value in ((Quarantined.period, period), (Quarantined.device, device), (Quarantined.rule, rule)):
            if value is not None:
                q = q.where(column == value)
        for rl, sev, dev, per, hh, amount, created, mid, kind, seq, reason in q.order_by(Quarantined.id).tuples().iterator():
            yield Held(rl, sev, dev, per, hh, amount or 0, created, mid,
                       f"{kind} seq {seq} (message {mid}) quarantined: {reason}")
    if rule not in (None, WAITING_RULE):
        return
    w = PendingVoid.select()
    for column, value in ((PendingVoid.period, period), (PendingVoid.device, device)):
        if value is not None:
            w = w.where(column == value)
    for v in w.order_by(PendingVoid.created_at).iterator():
        yield Held(WAITING_RULE, "critical", v.device, v.period, v.household, v.amount, v.created_at, v.msg_id,
                   f"void {v.id} (seq {v.seq}) of sale {v.redemption_id}, which never reached the city: a void "
                   "of a sale that never was, or the sale's message is missing (see missing_seq)")


@dataclass
class _Group:
    rows: list[Held] = field(default_factory=list)  # kept while the group is small enough to list
    count: int = 0
    amount: int = 0
    severity: str = "info"
    first: str = ""
    last: str = ""
    examples: list[str] = field(default_factory=list)

    def add(self, h: Held) -> None:
        self.count += 1
        self.amount += h.amount
        if _WORST.get(h.severity, 0) < _WORST.get(self.severity, 0):
            self.severity = h.severity
        self.first = min(self.first, h.created_at) if self.first else h.created_at
        self.last = max(self.last, h.created_at)
        if len(self.examples) < EXAMPLES:
            self.examples.append(h.msg_id)
        if self.count <= GROUP_AFTER:
            self.rows.append(h)
        else:
            self.rows = []


def list_command(device: str, rule: str, period: str) -> str:
    """The command that lists every held message of a group (what a grouped report row points to)."""
    return (f"ewarung central quarantine list --device {shlex.quote(device)} --rule {shlex.quote(rule)} "
            f"--period {shlex.quote(period)}")


def held_findings(period: str | None) -> list[tuple]:
    """Report rows (kind, severity, subject, period, devices, amount, detail): each held message, or
    one row for a device's flood of one rule in one period (module docstring). Read in one pass."""
    groups: dict[tuple[str, str, str], _Group] = {}
    for h in held_rows(period):
        groups.setdefault((h.device, h.rule, h.period), _Group()).add(h)
    out = []
    for (dev, rule, per), g in groups.items():
        if g.count <= GROUP_AFTER:
            out += [(h.rule, h.severity, h.household or h.device, h.period, h.device, h.amount or None, h.detail)
                    for h in g.rows]
            continue
        out.append((rule, g.severity, dev, per, dev, g.amount or None,
                    f"{g.count} messages of {dev} held back for {rule} in {per or 'no period'}, Rp {g.amount:,} "
                    f"in all, from {g.first} to {g.last}; e.g. message {', '.join(g.examples)}. "
                    f"All of them: `{list_command(dev, rule, per)}`"))
    return out
