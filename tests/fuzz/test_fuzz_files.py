"""The city's beneficiary CSV and the device configuration, fuzzed.

CSV: any bytes, and rows shaped like the real columns with hostile cells. parse_beneficiaries
returns (good rows, errors by line) or raises ValueError for an unreadable file; every good row
satisfies the documented rules. Config: TOML over the real sections and keys with any values;
only ConfigError, and a Config that parses also gives the data directory, identity and policy the
appliance reads right after loading it.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from firmware_config.config import SECTIONS as CONFIG_SECTIONS
from firmware_config.config import ConfigError, parse_config
from sync.central.beneficiaries import COLUMNS, STATUSES, parse_beneficiaries
from tests.fuzz.profiles import FUZZ

PLANS = {"BPNT", "BPNT-PLUS", "LANSIA"}
CELL = st.one_of(st.text(max_size=30), st.sampled_from(
    ["SSN-6472-0000001", "BPNT", "LANSIA", "active", "revoked", "2026-01-01", "2026-12-31", "2026-02-30",
     "20260101", "r1|Siti|istri", "r1|Siti|istri;r2|Budi|anak", "|x|", '"', "\r\n", "\x00", "﻿", ",,"]))


def _csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\r\n') else text


@st.composite
def csv_text(draw) -> bytes:
    header = draw(st.one_of(st.just(COLUMNS), st.permutations(COLUMNS),
                            st.lists(st.sampled_from([*COLUMNS, "nik", ""]), max_size=10)))
    rows = draw(st.lists(st.lists(CELL, min_size=max(0, len(header) - 1), max_size=len(header) + 1), max_size=8))
    text = "\n".join(",".join(_csv_cell(c) for c in r) for r in [list(header), *rows])
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    return text.encode(encoding, errors="replace")


@FUZZ
@given(st.one_of(csv_text(), st.binary(max_size=600)))
def test_beneficiary_csv_only_row_errors(tmp_path_factory, data):
    path = tmp_path_factory.getbasetemp() / "fuzz-beneficiaries.csv"
    path.write_bytes(data)
    try:
        good, errors = parse_beneficiaries(path, PLANS)
    except ValueError as exc:  # the documented refusal for an unreadable file
        assert "cannot read" in str(exc)
        return
    assert all(e.line >= 1 and e.message for e in errors)
    ids = [r.household_id for r in good]
    assert len(ids) == len(set(ids))
    for r in good:
        assert r.household_id and not re.search(r"\s", r.household_id) and len(r.household_id) <= 64
        assert r.name and r.plan in PLANS and r.status in STATUSES
        assert date.fromisoformat(r.valid_from) <= date.fromisoformat(r.valid_until)
        assert all(rep[0] and rep[1] for rep in r.representatives)


SECTIONS = {name: list(kind.__struct_fields__) for name, kind in CONFIG_SECTIONS.items()}
VALUES = st.recursive(
    st.one_of(st.integers(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.booleans(),
              st.text(max_size=30), st.sampled_from(["~nobody-such-user/x", "~", "/dev/null", "a\x00b", "0x04b8", "pcsc",
                                                     "usb", "network", "fake", "refuse", "id", "en", "58", "80"])),
    lambda c: st.lists(c, max_size=3), max_leaves=5)


PATH_KEYS = {k for keys in SECTIONS.values() for k in keys if k.endswith(("_dir", "_key", "_keys", "_file", "path"))}
PATHS = st.one_of(st.sampled_from(["~", "~/x", "~root/x", "~nobody-such-user/x", "~~", "/", ".", "keys/a.pem"]),
                  st.text(alphabet="~/.ab", max_size=12)).map(lambda p: [p] if p.endswith("a") else p)


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v) if v == v and abs(v) != float("inf") else "inf"
    if isinstance(v, str):
        return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in v) + '"'
    return "[" + ", ".join(_toml(x) for x in v) + "]"


@st.composite
def config_text(draw) -> str:
    out = []
    for section in draw(st.lists(st.sampled_from([*SECTIONS, "other"]), unique=True, max_size=4)):
        keys = draw(st.lists(st.sampled_from(SECTIONS.get(section, ["x"])), unique=True, max_size=3))
        kv = {k: draw(st.one_of(PATHS, VALUES) if k in PATH_KEYS else VALUES) for k in keys}
        out.append(f"[{section}]\n" + "\n".join(f"{k} = {_toml(v)}" for k, v in kv.items()))
    return "\n".join(out)


@FUZZ
@given(st.one_of(config_text(), st.text(max_size=300)))
def test_config_only_config_error_and_usable_when_parsed(text):
    try:
        config = parse_config(text, "fuzz.toml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml")
        return
    tomllib.loads(text)  # it parsed, so it was TOML
    config.identity()
    config.to_policy()
    for p in (config.data_dir, config.database_path, config.key_path(config.keys.device_key)):
        assert str(p)
