"""Reconciliation over everything central has stored: what a city auditor must look at.

Findings: households whose redemptions across devices exceed their allowance or item quotas
(the offline double spend), voids, data problems flagged by cashiers, redemptions for households
not on the list, sequence numbers still missing, messages refused (quarantined), devices long offline, big queues, stale ledgers,
charges that raised a card's record more than it signed. Held messages are grouped per device past a few (`held`).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from peewee import fn

from pos.clock import iso, parse_iso
from pos.period import Period
from sync.central import software
from sync.central.card_chain import chain_findings
from sync.central.city_policy import city_policy
from sync.central.convergence import divergences
from sync.central.held import held_findings
from sync.central.store import (
    CityHousehold,
    CityPlan,
    DeviceState,
    EventRecord,
    LedgerRelease,
    Message,
    RedemptionRecord,
    Rejected,
    SequenceGap,
    VoidRecord,
)

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Finding:
    """One thing the city should look at, with a severity so cron can fail on critical ones."""

    kind: str  # overspend | quota_exceeded | override_cap | void | data_problem | unknown_household | missing_seq | quarantined | offline | big_queue | stale_ledger | rolled_back | old_software | not_converged | a quarantine rule (id_collision, card_clone, ...) | void_without_sale | card_charged_not_sold | charge_for_sale_made | card_counter_gap | card_record_rise
    severity: str
    subject: str  # household or device
    period: str
    devices: str
    amount: int | None
    detail: str


def reconcile(*, now: datetime, period: str | None = None, offline_after: timedelta = timedelta(hours=24),
              queue_threshold: int = 100, stale_versions: int = 1) -> list[Finding]:
    """Compare what devices reported with the city's own rules (allowances, quotas, registry, sequence): the
    city's check on every shop."""
    findings: list[Finding] = []
    plans = {p.code: p for p in CityPlan.select()}
    voided = {r: a for r, a in VoidRecord.select(VoidRecord.redemption_id, VoidRecord.amount).tuples()}
    q = RedemptionRecord.select(RedemptionRecord.household, RedemptionRecord.period, RedemptionRecord.id,
                                RedemptionRecord.device, RedemptionRecord.total, RedemptionRecord.items,
                                RedemptionRecord.mode)
    if period:  # and the month before: a rollover plan carries its unspent allowance
        q = q.where(RedemptionRecord.period.in_([period, str(Period.parse(period).previous())]))
    totals: dict[tuple[str, str], dict] = {}
    overrides: dict[tuple[str, str, str], set[str]] = {}
    for hh, per, rid, dev, total, items, mode in q.tuples().iterator():
        if rid in voided:
            continue
        if mode == "override":
            overrides.setdefault(("device", dev, per), set()).add(rid)
            overrides.setdefault(("household", hh, per), set()).add(rid)
        agg = totals.setdefault((hh, per), {"total": 0, "devices": set(), "items": {}, "count": 0})
        agg["total"] += total
        agg["count"] += 1
        agg["devices"].add(dev)
        for item, qty in json.loads(items).items():
            agg["items"][item] = agg["items"].get(item, 0) + qty
    households = {}
    if totals:
        ids = list({hh for hh, _ in totals})
        for i in range(0, len(ids), 500):
            for h in CityHousehold.select(CityHousehold.id, CityHousehold.plan, CityHousehold.valid_from).where(
                    CityHousehold.id.in_(ids[i:i + 500])):
                households[h.id] = h
    for (hh, per), agg in sorted(totals.items()):
        if period and per != period:
            continue
        devices = ",".join(sorted(agg["devices"]))
        several = len(agg["devices"]) > 1
        if hh not in households:
            findings.append(Finding("unknown_household", "warning", hh, per, devices, agg["total"],
                                    f"{agg['count']} redemption(s) for a household not on the published list"))
            continue
        plan = plans.get(households[hh].plan)
        if plan is None:
            continue
        allowance, carried = allowance_of(plan, households[hh].valid_from, per, totals.get((hh, _previous(per))))
        if agg["total"] > allowance:
            findings.append(Finding(
                "overspend", "critical", hh, per, devices, agg["total"] - allowance,
                f"redeemed Rp {agg['total']:,} of an allowance of Rp {allowance:,}"
                + (f" (Rp {carried:,} carried over from {_previous(per)})" if plan.rollover else "")
                + f" in {agg['count']} sale(s)"
                + (f" on {len(agg['devices'])} devices (offline double spend)" if several else " on one device")))
        for item, max_qty in json.loads(plan.quotas).items():
            got = agg["items"].get(item, 0)
            if got > max_qty:
                findings.append(Finding("quota_exceeded", "critical", hh, per, devices, None,
                                        f"{item}: {got} taken, quota {max_qty}" + (" across devices" if several else "")))
    findings += _override_caps(overrides, period)
    for v in VoidRecord.select().order_by(VoidRecord.created_at):
        if period and v.period != period:
            continue
        findings.append(Finding("void", "info", v.household, v.period, v.device, v.amount,
                                f"sale {v.redemption_id} voided: {v.reason}"))
    for e in EventRecord.select().where(EventRecord.event == "data_problem").order_by(EventRecord.created_at):
        findings.append(Finding("data_problem", "warning", e.household, "", e.device, None,
                                f"cashier flagged '{e.problem}'" + (f": {e.note}" if e.note else "")))
    findings += _missing(period)
    findings += _quarantined()
    findings += [Finding(*f) for f in held_findings(period)]
    findings += chain_findings(period, Finding)
    latest = LedgerRelease.select(fn.MAX(LedgerRelease.version)).where(LedgerRelease.kind != "hotlist").scalar() or 0
    cutoff = now - offline_after
    for s in DeviceState.select().order_by(DeviceState.device):
        seen = parse_iso(s.last_seen) if s.last_seen else None
        if seen is None or seen < cutoff:
            ago = f"last seen {s.last_seen}" if seen else "never seen"
            findings.append(Finding("offline", "warning", s.device, "", s.device, None,
                                    f"{ago} (more than {_hours(offline_after)} ago)"))
        if s.queue_depth >= queue_threshold:
            findings.append(Finding("big_queue", "warning", s.device, "", s.device, None,
                                    f"{s.queue_depth} messages waiting on the device"))
        if latest and s.ledger_version and latest - s.ledger_version >= stale_versions:
            findings.append(Finding("stale_ledger", "warning", s.device, "", s.device, None,
                                    f"ledger v{s.ledger_version}, city is at v{latest}"))
    findings += _software_findings()
    for d in divergences():
        findings.append(Finding("not_converged", "warning", d.device, "", d.device, None, d.reason))
    findings.sort(key=lambda f: (SEVERITY_ORDER[f.severity], f.kind, f.subject, f.period))
    return findings


def allowance_of(plan: CityPlan, valid_from: str, period: str, previous: dict | None) -> tuple[int, int]:
    """(allowance, carried over) of a household in a period, as pos.entitlement.assess computes it on
    the device, but from the city's own records: a rollover plan adds last month's unspent allowance
    when the household was on the list by the 28th of last month."""
    if not plan.rollover:
        return plan.allowance, 0
    prev = Period.parse(period).previous()
    if valid_from > f"{prev}-28":
        return plan.allowance, 0
    carried = max(0, plan.allowance - (previous["total"] if previous else 0))
    return plan.allowance + carried, carried


def _previous(period: str) -> str:
    try:
        return str(Period.parse(period).previous())
    except ValueError:
        return ""


def _override_caps(overrides: dict[tuple[str, str, str], set[str]], period: str | None) -> list[Finding]:
    """Overrides (sales without a card) per device and per household in a period beyond the city's caps."""
    policy = city_policy()
    out = []
    for (what, who, per), rids in sorted(overrides.items()):
        cap = policy.override_cap_household if what == "household" else policy.override_cap_device
        if (period and per != period) or len(rids) <= cap:
            continue
        out.append(Finding("override_cap", "critical", who, per, who if what == "device" else "", None,
                           f"{len(rids)} overrides (sales without a card) for this {what} in {per}; "
                           f"the city's cap is {cap} a period (`ewarung central policy`)"))
    return out


def _missing(period: str | None) -> list[Finding]:
    """Every sequence number never received, counted from the device's highest seq, not from the
    gap rows: the consumer asks for a bounded number at a time and records only those."""
    asked: dict[str, list[int]] = {}
    for g in SequenceGap.select().order_by(SequenceGap.device, SequenceGap.seq):
        asked.setdefault(g.device, []).append(g.seq)
    out = []
    for s in DeviceState.select().where(DeviceState.highest_seq > DeviceState.contiguous_seq).order_by(DeviceState.device):
        stored = Message.select().where((Message.device == s.device) & (Message.seq > s.contiguous_seq)).count()
        missing = s.highest_seq - s.contiguous_seq - stored
        if missing <= 0:
            continue
        seqs = asked.get(s.device, [])
        requested = f"resend requested for seq {_ranges(seqs)}" if seqs else "resend not yet requested"
        out.append(Finding("missing_seq", "critical", s.device, "", s.device, None,
                           f"{missing} message(s) never received between seq {s.contiguous_seq + 1} and "
                           f"{s.highest_seq - 1}; {requested}"))
    return out


def _quarantined() -> list[Finding]:
    """Refused device messages (bad signature, unknown device, malformed), one finding per topic's device."""
    by_device: dict[str, list[Rejected]] = {}
    for r in Rejected.select().order_by(Rejected.id):
        parts = r.topic.split("/")
        by_device.setdefault(parts[3] if len(parts) > 4 else r.topic, []).append(r)
    return [Finding("quarantined", "critical", dev, "", dev, None,
                    f"{len(rows)} message(s) refused and kept in central_rejected; last at {rows[-1].received_at}: "
                    f"{rows[-1].reason[:160]}")
            for dev, rows in sorted(by_device.items())]


def _software_findings() -> list[Finding]:
    """Devices left on an older release than the fleet's newest, and rollbacks (sync.central.software)."""
    labels = dict(DeviceState.select(DeviceState.device, DeviceState.software_version).tuples())
    latest = software.newest(list(labels.values()))
    out = []
    for dev, label in sorted(labels.items()):
        if software.rolled_back_from(label):
            out.append(Finding("rolled_back", "warning", dev, "", dev, None,
                               f"runs {label}: the newer release failed its health check on this device"))
        elif software.left_behind(label, latest):
            out.append(Finding("old_software", "warning", dev, "", dev, None, f"runs {label}, the fleet's newest is {latest}"))
    return out


def _hours(td: timedelta) -> str:
    h = td.total_seconds() / 3600
    return f"{h:g} h"


def _ranges(seqs: list[int]) -> str:
    out, start, prev = [], seqs[0], seqs[0]
    for s in seqs[1:] + [None]:
        if s is not None and s == prev + 1:
            prev = s
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if s is not None:
            start = prev = s
    return ",".join(out)


CSV_FIELDS = ["severity", "kind", "subject", "period", "devices", "amount", "detail"]


def to_csv(findings: list[Finding]) -> str:
    """Findings as CSV for the city's spreadsheet."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for f in findings:
        row = asdict(f)
        w.writerow({k: ("" if row[k] is None else row[k]) for k in CSV_FIELDS})
    return buf.getvalue()


def to_table(findings: list[Finding], generated_at: datetime) -> str:
    """Findings as a text table for a terminal or a cron mail."""
    if not findings:
        return f"Reconciliation at {iso(generated_at)}: nothing to report."
    rows = [["SEVERITY", "KIND", "SUBJECT", "PERIOD", "DEVICES", "AMOUNT", "DETAIL"]]
    for f in findings:
        rows.append([f.severity, f.kind, f.subject, f.period, f.devices,
                     "" if f.amount is None else f"Rp {f.amount:,}", f.detail])
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:6], widths, strict=True)) + "  " + r[6] for r in rows]
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    return f"Reconciliation at {iso(generated_at)}: {summary}\n" + "\n".join(lines)
