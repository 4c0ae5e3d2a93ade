"""docs/mqtt-contract.md and docs/schemas/ stay in step with the code that sends and accepts messages."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from pos.messages import device_topic, ledger_topic
from sync.ledger_format import TABLES
from sync.ledger_intake import LedgerRefused

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "mqtt-contract.md").read_text()
SCHEMAS = ROOT / "docs" / "schemas"


def test_every_topic_and_schema_is_documented():
    for leaf in ("redemption", "void", "event", "status", "heartbeat", "request", "ack", "resend"):
        assert f"`{device_topic('{device}', leaf)}`" in DOC
        assert (SCHEMAS / f"{leaf}.json").exists()
    for leaf in ("snapshot", "delta", "hotlist"):
        assert f"`{ledger_topic('{city}', leaf)}`" in DOC
    for path in SCHEMAS.glob("*.json"):
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))
        assert f"schemas/{path.name}" in DOC or path.stem == "jws-header" and "jws-header" in DOC


def test_ledger_tables_and_columns_match_the_doc():
    for wire, (_table, columns, _key) in TABLES.items():
        line = next((ln for ln in DOC.splitlines() if ln.startswith(f"| `{wire}` |")), None)
        assert line, f"table {wire} missing from the contract"
        positions = [line.find(c) for c in columns]
        assert all(p > 0 for p in positions) and positions == sorted(positions), f"{wire} columns out of order in doc"


def test_refusal_codes_documented_and_in_event_schema():
    import inspect

    import sync.ledger_intake as intake

    codes = set()
    src = inspect.getsource(intake)
    for part in src.split('LedgerRefused("')[1:]:
        codes.add(part.split('"')[0])
    event = json.loads((SCHEMAS / "event.json").read_text())
    allowed = set(event["properties"]["body"]["properties"]["code"]["enum"])
    assert codes <= allowed, codes - allowed
    for code in codes:
        assert f"`{code}`" in DOC
    assert LedgerRefused("x", "y").code == "x"
