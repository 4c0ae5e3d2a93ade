"""The layers hold (docs/architecture.md): the core imports no adapter, UI or root; nothing but the
CLI imports a composition root.

core: pos/ minus pos/ui, pos/cli and pos/roots; adapters: hardware/, sync/, firmware_config/;
UI: pos/ui; composition roots: pos/roots (one per process), called by the CLI, pos/cli.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = ("kivy", "smartcard", "escpos", "paho")
ADAPTERS = ("hardware", "sync", "firmware_config")
ROOTS = ("pos.roots",)
CORE_MAY_NOT_IMPORT = (*LIBRARIES, *ADAPTERS, "pos.ui", "pos.cli", *ROOTS)
OUTSIDE_THE_CORE = ("ui", "cli", "roots")


def imported(path: Path) -> Iterable[str]:
    """Every module `path` imports, at any depth (a function-level import counts as much)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


def offenders(paths: Iterable[Path], forbidden: tuple[str, ...]) -> list[str]:
    """`file: imports module` for each import of a forbidden package or module."""
    found = []
    for path in paths:
        for name in imported(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: imports {name}")
    return sorted(set(found))


def core_modules(top: Path = ROOT) -> list[Path]:
    """The domain core's files: everything under pos/ but the UI, the CLI and the roots."""
    return [p for p in sorted((top / "pos").rglob("*.py"))
            if p.relative_to(top / "pos").parts[0] not in OUTSIDE_THE_CORE]


def adapter_and_ui_modules(top: Path = ROOT) -> list[Path]:
    """Files of the adapters and the UI: they are built by a root, so they may not reach for one."""
    return [p for d in (*ADAPTERS, "pos/ui") for p in sorted((top / d).rglob("*.py"))]


def test_domain_core_imports_no_adapter_library_ui_or_root():
    assert core_modules(), "no core modules found: the layout changed, change this test with it"
    bad = offenders(core_modules(), CORE_MAY_NOT_IMPORT)
    assert not bad, "\n".join(bad)


def test_no_adapter_or_ui_module_imports_a_composition_root():
    bad = offenders(adapter_and_ui_modules(), (*ROOTS, "pos.cli"))
    assert not bad, "\n".join(bad)


def adapter_modules(top: Path = ROOT) -> list[Path]:
    """Files of the adapters alone: they serve the core and never reach out to the screens."""
    return [p for d in ADAPTERS for p in sorted((top / d).rglob("*.py"))]


def test_no_adapter_imports_the_ui():
    bad = offenders(adapter_modules(), ("pos.ui", "kivy"))
    assert not bad, "\n".join(bad)


def test_the_roots_are_one_package_with_one_module_per_process():
    roots = {p.stem for p in (ROOT / "pos" / "roots").glob("*.py")}
    assert {"counter", "sync", "central", "cli"} <= roots, roots


def test_a_planted_violation_is_caught(tmp_path):
    """The checks above would fail on these: a core module reaching for an adapter, its library and
    a root; an adapter and a UI module importing a root (inside a function too)."""
    for rel, text in {
        "pos/visit.py": "from hardware.card.fake import FakeReader\nimport paho.mqtt.client\n",
        "pos/ledger_view.py": "def f():\n    from pos import roots\n",
        "hardware/card/reader.py": "from pos.roots.counter import build_counter\n",
        "sync/panel.py": "def show():\n    from pos.ui.widgets import Text\n",
        "pos/ui/screen.py": "def build():\n    import pos.roots.counter\n",
        "pos/ui/fine.py": "from hardware.card.deck import deck_note\n",
        "pos/roots/counter.py": "from pos.ui.app import CounterApp\n",
    }.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    core = offenders(core_modules(tmp_path), CORE_MAY_NOT_IMPORT)
    assert [line.rsplit("/", 1)[-1] for line in core] == [
        "ledger_view.py: imports pos.roots", "visit.py: imports hardware.card.fake",
        "visit.py: imports hardware.card.fake.FakeReader", "visit.py: imports paho.mqtt.client"]
    outer = offenders(adapter_and_ui_modules(tmp_path), (*ROOTS, "pos.cli"))
    assert [line.rsplit("/", 1)[-1] for line in outer] == [
        "reader.py: imports pos.roots.counter", "reader.py: imports pos.roots.counter.build_counter",
        "screen.py: imports pos.roots.counter"]
    assert [line.rsplit("/", 1)[-1] for line in offenders(adapter_modules(tmp_path), ("pos.ui", "kivy"))] == [
        "panel.py: imports pos.ui.widgets", "panel.py: imports pos.ui.widgets.Text"]
