"""docs/configuration.md documents every key of the schema (keeps the reference honest)."""

from __future__ import annotations

from pathlib import Path

from firmware_config.config import SECTIONS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()


def test_every_key_is_documented():
    missing = []
    for section, kind in SECTIONS.items():
        assert f"## [{section}]" in DOC, f"section [{section}] missing"
        missing += [f"{section}.{key}" for key in kind.__struct_fields__ if f"`{key}`" not in DOC]
    assert not missing, f"undocumented keys: {missing}"
