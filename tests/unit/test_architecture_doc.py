"""docs/architecture.md names every module, so the page a newcomer starts from cannot fall behind."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pos", "hardware", "sync", "firmware_config")


def unnamed_modules(page: str, root: Path = ROOT) -> list[str]:
    """Modules the page does not name: by file name, or a CLI module `x_cmd.py` by its subcommand `x`."""
    missing = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if path.name == "__init__.py":
                continue
            named = f"`{path.name}`" in page or f"{path.parent.name}/{path.name}" in page
            if path.name.endswith("_cmd.py"):
                named = named or f"`{path.name.removesuffix('_cmd.py')}`" in page
            if not named:
                missing.append(path.relative_to(root).as_posix())
    return missing


def test_the_architecture_page_names_every_module():
    missing = unnamed_modules((ROOT / "docs" / "architecture.md").read_text(encoding="utf-8"))
    assert not missing, f"name these in docs/architecture.md ('Every module'): {missing}"


def test_the_check_sees_an_unnamed_module(tmp_path):
    (tmp_path / "pos" / "cli").mkdir(parents=True)
    for name in ("named.py", "forgotten.py", "cli/shop_cmd.py"):
        (tmp_path / "pos" / name).write_text("")
    for package in PACKAGES[1:]:
        (tmp_path / package).mkdir()
    assert unnamed_modules("`named.py` and `shop`", tmp_path) == ["pos/forgotten.py"]
