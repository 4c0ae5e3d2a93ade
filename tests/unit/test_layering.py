"""The domain core stays pure: no kivy, pyscard, escpos or paho; no outer layer imports."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("kivy", "smartcard", "escpos", "paho", "hardware", "sync", "firmware_config", "pos.ui", "pos.cli", "pos.appliance")
OUTER = {"ui", "cli"}


def test_domain_core_imports_nothing_outer():
    offenders = []
    for path in sorted((ROOT / "pos").rglob("*.py")):
        rel = path.relative_to(ROOT / "pos")
        if rel.parts[0] in OUTER or rel.name == "appliance.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
                    offenders.append(f"pos/{rel}: imports {name}")
    assert not offenders, "\n".join(offenders)
