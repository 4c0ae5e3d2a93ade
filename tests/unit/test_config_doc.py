"""docs/configuration.md documents every key of the schema (keeps the reference honest)."""

from __future__ import annotations

from pathlib import Path

from firmware_config.config import Config

DOC = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()


def test_every_key_is_documented():
    missing = []
    for section, field in Config.model_fields.items():
        assert f"## [{section}]" in DOC, f"section [{section}] missing"
        model = field.annotation
        model = next((a for a in getattr(model, "__args__", (model,)) if hasattr(a, "model_fields")), model)
        for key in model.model_fields:
            if f"`{key}`" not in DOC:
                missing.append(f"{section}.{key}")
    assert not missing, f"undocumented keys: {missing}"
