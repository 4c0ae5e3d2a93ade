"""The city's beneficiary list (CSV) -> validated rows, with every bad row reported by line.

Columns (header required, this order not required):
household_id,name,area,plan,status,valid_from,valid_until,representatives
- household_id: unique, non-empty, no spaces (e.g. SSN-6472-0000001)
- plan: a plan code the city runs (`publish-ledger --plans FILE`; BPNT, BPNT-PLUS, LANSIA for the sample city)
- status: active | revoked | suspended
- valid_from / valid_until: YYYY-MM-DD, valid_from <= valid_until (inclusive, WITA dates)
- representatives: empty, or `id|name|relation` entries joined by `;`
No national ID numbers: the list carries only what the counter needs.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sync.central.csv_rows import data_rows, read_header

COLUMNS = ["household_id", "name", "area", "plan", "status", "valid_from", "valid_until", "representatives"]
STATUSES = ("active", "revoked", "suspended")


@dataclass(frozen=True)
class BeneficiaryRow:
    """One checked row of the city's beneficiary list; `line` lets an error name the CSV line."""

    line: int
    household_id: str
    name: str
    area: str
    plan: str
    status: str
    valid_from: str
    valid_until: str
    representatives: tuple[tuple[str, str, str], ...]

    def reps_text(self) -> str:
        """Representatives as the ledger's one text column (id|name|relation;...)."""
        return ";".join("|".join(r) for r in self.representatives)


@dataclass(frozen=True)
class RowError:
    """A bad CSV row, reported with its line so the city can fix its file."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class CsvRejected(ValueError):
    """The whole list is refused when a row is bad: a half-published list would wrongly refuse households."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        shown = "\n".join(f"  {e}" for e in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(
            f"{len(errors)} bad row(s) in the beneficiary list; nothing was published:\n{shown}{more}\n"
            "Fix those rows, or pass --skip-bad-rows to publish the good rows only."
        )


def parse_beneficiaries(path: Path, plans: set[str]) -> tuple[list[BeneficiaryRow], list[RowError]]:
    """Every row, validated. Returns (good rows, errors); header errors are line 1."""
    good: list[BeneficiaryRow] = []
    errors: list[RowError] = []
    try:
        fh = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        reader = csv.reader(fh)
        header, problem = read_header(reader, COLUMNS)
        if header is None:
            return [], [RowError(1, problem)]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            return [], [RowError(1, f"header lacks column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}")]
        index = {c: header.index(c) for c in COLUMNS}
        seen: dict[str, int] = {}
        for line, cells, problem in data_rows(reader, len(header)):
            if cells is None:
                errors.append(RowError(line, problem))
                continue
            f = {c: cells[i] for c, i in index.items()}
            problems = _check(f, plans)
            hid = f["household_id"]
            if hid and hid in seen:
                problems.append(f"household_id {hid} already on line {seen[hid]}")
            reps: list[tuple[str, str, str]] = []
            if f["representatives"]:
                for entry in f["representatives"].split(";"):
                    parts = entry.split("|")
                    if len(parts) != 3 or not parts[0].strip() or not parts[1].strip():
                        problems.append(f"representative {entry!r} must be id|name|relation")
                    else:
                        reps.append((parts[0].strip(), parts[1].strip(), parts[2].strip()))
            if problems:
                errors.append(RowError(line, "; ".join(problems)))
                continue
            seen[hid] = line
            good.append(
                BeneficiaryRow(line, hid, f["name"], f["area"], f["plan"], f["status"],
                               f["valid_from"], f["valid_until"], tuple(reps))
            )
    return good, errors


def _check(f: dict[str, str], plans: set[str]) -> list[str]:
    problems = []
    hid = f["household_id"]
    if not hid:
        problems.append("household_id is empty")
    elif any(ch.isspace() for ch in hid) or len(hid) > 64:
        problems.append(f"household_id {hid!r} has spaces or is longer than 64 characters")
    if not f["name"]:
        problems.append("name is empty")
    if f["plan"] not in plans:
        problems.append(f"plan {f['plan']!r} is not one of {', '.join(sorted(plans))}")
    if f["status"] not in STATUSES:
        problems.append(f"status {f['status']!r} is not one of {', '.join(STATUSES)}")
    dates = []
    for col in ("valid_from", "valid_until"):
        try:
            dates.append(date.fromisoformat(f[col]))
            if len(f[col]) != 10:
                raise ValueError
        except ValueError:
            problems.append(f"{col} {f[col]!r} is not a date YYYY-MM-DD")
    if len(dates) == 2 and dates[0] > dates[1]:
        problems.append(f"valid_from {f['valid_from']} is after valid_until {f['valid_until']}")
    return problems
