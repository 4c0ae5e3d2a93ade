"""The city's programme: its plans (allowance, rollover, per-item quotas) and the catalog of
eligible items, read from a file the city keeps (`publish-ledger --plans FILE [--catalog FILE]`),
or the sample city's when no file is given.

Formats (docs/central.md, "Plans and catalog"):
- JSON: {"plans": [{"code", "name", "allowance", "rollover", "quotas": {ITEM: qty}}],
         "catalog": [{"code", "name_id", "name_en", "unit", "price"}]}   ("catalog" optional)
  A catalog file in JSON is the same object with only "catalog", or a bare list of items.
- CSV plans: header code,name,allowance,rollover,quotas (quotas: ITEM:qty;ITEM:qty, or empty).
- CSV catalog: header code,name_id,name_en,unit,price.
Money is whole rupiah: 200000, never 200.000 or 200000.0. Every problem is reported with its
file and line (CSV) or path (JSON); nothing is published while any remains.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

from pos.sample_city import CATALOG, PLANS
from sync.central.csv_rows import data_rows, read_header

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
PLAN_FIELDS = ("code", "name", "allowance", "rollover", "quotas")
ITEM_FIELDS = ("code", "name_id", "name_en", "unit", "price")
TRUE, FALSE = ("true", "yes", "ya", "1"), ("false", "no", "tidak", "0", "")


@dataclass(frozen=True)
class Plan:
    """A plan of the programme as the ledger carries it: allowance in rupiah and per-item quotas."""

    code: str
    name: str
    allowance: int
    rollover: bool
    quotas: dict[str, int]


@dataclass(frozen=True)
class Item:
    """A catalog item as the ledger carries it: names in both languages and a price in rupiah."""

    code: str
    name_id: str
    name_en: str
    unit: str
    price: int


@dataclass(frozen=True)
class Programme:
    """The plans and the catalog that go into a snapshot, with where they came from for messages."""

    plans: tuple[Plan, ...]
    catalog: tuple[Item, ...]
    source: str = "the sample city"

    @property
    def codes(self) -> set[str]:
        """The plan codes a beneficiary row may name."""
        return {p.code for p in self.plans}


class ProgrammeRejected(ValueError):
    """Plans or catalog with problems are refused whole: nothing is published from a bad file."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        shown = "\n".join(f"  {e}" for e in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} problem(s) in the plans/catalog; nothing was published:\n{shown}{more}")


def sample_programme() -> Programme:
    """The sample city's programme, used when the city gives no plans or catalog file (demos, tests)."""
    return Programme(tuple(Plan(c, n, a, bool(r), dict(q)) for c, n, a, r, q in PLANS),
                     tuple(Item(*c) for c in CATALOG))


def load_programme(plans_path: Path | None = None, catalog_path: Path | None = None) -> Programme:
    """Plans from `plans_path` (JSON or CSV), the catalog from `catalog_path`, else from the plans
    JSON's "catalog", else the sample city's. Raises ProgrammeRejected naming every problem."""
    default = sample_programme()
    if plans_path is None and catalog_path is None:
        return default
    errors: list[str] = []
    plans: list[Plan] | None = None
    catalog: list[Item] | None = None
    if plans_path is not None:
        plans, catalog = _read(Path(plans_path), "plans", errors)
        if plans is None and not errors:
            errors.append(f"{plans_path}: has no \"plans\" list")
    if catalog_path is not None:
        _, catalog = _read(Path(catalog_path), "catalog", errors)
        if catalog is None and not errors:
            errors.append(f"{catalog_path}: has no \"catalog\" list")
    if errors:
        raise ProgrammeRejected(errors)
    plans = list(default.plans) if plans is None else plans
    catalog = list(default.catalog) if catalog is None else catalog
    where = str(catalog_path or plans_path)
    if not plans:
        errors.append(f"{plans_path}: no plans: a city runs at least one plan")
    if not catalog:
        errors.append(f"{where}: no catalog items: beneficiaries could buy nothing")
    items = {i.code for i in catalog}
    for plan in plans:
        for item in plan.quotas:
            if item not in items:
                errors.append(f"{plans_path}: plan {plan.code}: quota for {item}, which is not in the catalog")
    if errors:
        raise ProgrammeRejected(errors)
    source = ", ".join(str(p) for p in (plans_path, catalog_path) if p is not None)
    return Programme(tuple(plans), tuple(catalog), source)


def _read(path: Path, want: str, errors: list[str]) -> tuple[list[Plan] | None, list[Item] | None]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        errors.append(f"cannot read {path}: {exc.strerror}")
        return None, None
    except UnicodeDecodeError as exc:
        errors.append(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})")
        return None, None
    if path.suffix.lower() == ".json":
        return _read_json(path, text, want, errors)
    if path.suffix.lower() == ".csv":
        rows = _read_csv(path, text, PLAN_FIELDS if want == "plans" else ITEM_FIELDS, errors)
        if rows is None:
            return None, None
        if want == "plans":
            return _plans(path, rows, errors), None
        return None, _items(path, rows, errors)
    errors.append(f"{path}: name it .json or .csv so the format is known")
    return None, None


def _read_json(path: Path, text: str, want: str, errors: list[str]):
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        errors.append(f"{path} line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}")
        return None, None
    if want == "catalog" and isinstance(doc, list):
        doc = {"catalog": doc}
    if not isinstance(doc, dict):
        errors.append(f"{path}: the top level must be an object with \"plans\" and/or \"catalog\"")
        return None, None
    unknown = sorted(set(doc) - {"plans", "catalog"})
    if unknown:
        errors.append(f"{path}: unknown key(s) {', '.join(unknown)}; expected \"plans\" and \"catalog\"")
    out: dict[str, list | None] = {"plans": None, "catalog": None}
    for key, fields, build in (("plans", PLAN_FIELDS, _plans), ("catalog", ITEM_FIELDS, _items)):
        if key not in doc:
            continue
        entries = doc[key]
        if not isinstance(entries, list):
            errors.append(f"{path}: {key} must be a list")
            continue
        rows = []
        for i, entry in enumerate(entries):
            where = f"{key}[{i}]"
            if not isinstance(entry, dict):
                errors.append(f"{path}: {where} must be an object with {', '.join(fields)}")
                continue
            extra = sorted(set(entry) - set(fields))
            if extra:
                errors.append(f"{path}: {where}: unknown field(s) {', '.join(extra)}; expected {', '.join(fields)}")
                continue
            rows.append((where, entry))
        out[key] = build(path, rows, errors)
    return out["plans"], out["catalog"]


def _read_csv(path: Path, text: str, fields: tuple[str, ...], errors: list[str]):
    reader = csv.reader(text.splitlines())
    header, problem = read_header(reader, fields)
    if header is None:
        errors.append(f"{path} line 1: {problem}")
        return None
    optional = {"quotas", "name_en"}
    missing = [f for f in fields if f not in header and f not in optional]
    unknown = [h for h in header if h not in fields]
    if missing or unknown:
        errors.append(f"{path} line 1: header {'lacks ' + ', '.join(missing) if missing else ''}"
                      f"{'; ' if missing and unknown else ''}{'has unknown ' + ', '.join(unknown) if unknown else ''}"
                      f"; expected {','.join(fields)}")
        return None
    rows = []
    for line, cells, problem in data_rows(reader, len(header)):
        if cells is None:
            errors.append(f"{path} line {line}: {problem}")
        else:
            rows.append((f"line {line}", dict(zip(header, cells, strict=True))))
    return rows


def _where(path: Path, where: str) -> str:
    return f"{path} {where}" if where.startswith("line") else f"{path}: {where}"


def _whole(value, field: str, problems: list[str], *, minimum: int, rupiah: bool = True) -> int:
    if isinstance(value, str) and re.fullmatch(r"\d+", value.strip()):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        hint = " of rupiah (write 200000, not 200.000 or 200000.0)" if rupiah else ""
        problems.append(f"{field} {value!r} is not a whole number{hint}")
        return 0
    if value < minimum:
        problems.append(f"{field} {value} must be at least {minimum}")
    return value


def _text(entry: dict, field: str, problems: list[str], *, required: bool = True) -> str:
    value = entry.get(field, "")
    if not isinstance(value, str):
        problems.append(f"{field} must be text")
        return ""
    if required and not value.strip():
        problems.append(f"{field} is empty")
    return value.strip()


def _code(entry: dict, problems: list[str], seen: dict[str, str], where: str) -> str:
    code = _text(entry, "code", problems)
    if code and not CODE.match(code):
        problems.append(f"code {code!r} must be 1-32 letters, digits, '-' or '_'")
    elif code in seen:
        problems.append(f"code {code} already at {seen[code]}")
    elif code:
        seen[code] = where
    return code


def _build(path: Path, rows: list[tuple[str, dict]], errors: list[str], make) -> list:
    """`make(entry, problems, code)` for each row with a valid, unique code; rows with problems
    become one error line each (file and line, or file and entry)."""
    out, seen = [], {}
    for where, e in rows:
        problems: list[str] = []
        code = _code(e, problems, seen, where)
        made = make(e, problems, code)
        if problems:
            errors.append(f"{_where(path, where)}: " + "; ".join(problems))
        else:
            out.append(made)
    return out


def _plan(e: dict, problems: list[str], code: str) -> Plan:
    name = _text(e, "name", problems)
    allowance = _whole(e.get("allowance"), "allowance", problems, minimum=1)
    rollover = e.get("rollover", False)
    if isinstance(rollover, str):
        low = rollover.strip().lower()
        if low not in TRUE + FALSE:
            problems.append(f"rollover {rollover!r} must be yes or no")
        rollover = low in TRUE
    elif not isinstance(rollover, bool):
        problems.append(f"rollover {rollover!r} must be true or false")
    return Plan(code, name, allowance, bool(rollover), _quotas(e.get("quotas") or {}, problems))


def _item(e: dict, problems: list[str], code: str) -> Item:
    name_id = _text(e, "name_id", problems)
    name_en = _text(e, "name_en", problems, required=False) or name_id
    unit = _text(e, "unit", problems)
    return Item(code, name_id, name_en, unit, _whole(e.get("price"), "price", problems, minimum=1))


def _plans(path: Path, rows: list[tuple[str, dict]], errors: list[str]) -> list[Plan]:
    return _build(path, rows, errors, _plan)


def _items(path: Path, rows: list[tuple[str, dict]], errors: list[str]) -> list[Item]:
    return _build(path, rows, errors, _item)


def _quotas(value, problems: list[str]) -> dict[str, int]:
    if isinstance(value, str):
        pairs = []
        for part in filter(None, (p.strip() for p in value.split(";"))):
            item, sep, qty = part.partition(":")
            if not sep or not item.strip():
                problems.append(f"quota {part!r} must be ITEM:qty")
                continue
            pairs.append((item.strip(), qty.strip()))
    elif isinstance(value, dict):
        pairs = list(value.items())
    else:
        problems.append("quotas must be an object {ITEM: qty} (JSON) or ITEM:qty;ITEM:qty (CSV)")
        return {}
    out: dict[str, int] = {}
    for item, qty in pairs:
        if item in out:
            problems.append(f"quota for {item} given twice")
        out[item] = _whole(qty, f"quota {item}", problems, minimum=1, rupiah=False)
    return out
