"""Every public function, method and class says why it exists, so a newcomer can read a module top-down.

The check walks the source with ``ast`` (nothing is imported) over the modules ``COVERED`` names.
Widen ``COVERED`` as more of the tree gets its docstrings, until it is the whole of ``pos``,
``hardware``, ``firmware_config``, ``sync`` and ``bench``. Run this file directly to list what is
missing: ``python tests/unit/test_docstrings.py``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The one list to widen. Globs relative to the repository root, applied in order; a "!" line takes
# matching files back out (modules still being reworked elsewhere: delete the line once they are done).
COVERED = (
    "pos/*.py",
    "pos/session/*.py",
    "pos/roots/*.py",
    "pos/cli/*.py",
    "pos/ui/*.py",
    "pos/ui/__init__.py",
    "pos/ui/i18n.py",
    "pos/ui/screens/*.py",
    "pos/ui/boot.py",
    "pos/ui/frame_split.py",
    "pos/ui/widgets.py",
    "hardware/**/*.py",
    "firmware_config/*.py",
    "bench/*.py",
    "sync/**/*.py",
)


def covered_files() -> list[Path]:
    """The files COVERED selects, in path order."""
    files: set[Path] = set()
    for pattern in COVERED:
        if pattern.startswith("!"):
            files -= set(ROOT.glob(pattern[1:]))
        else:
            files |= {p for p in ROOT.glob(pattern) if p.is_file()}
    return sorted(files)


def _documented_methods(body: list[ast.stmt]) -> dict[str, set[str]]:
    """Per class of a module, the methods it documents, so an override can lean on its base's why."""
    return {
        node.name: {
            f.name for f in node.body
            if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef) and ast.get_docstring(f) is not None
        }
        for node in body if isinstance(node, ast.ClassDef)
    }


def _imported_bases(tree: ast.Module, by_module: dict[str, dict[str, set[str]]]) -> dict[str, set[str]]:
    """The classes a module imports by name from another checked module, with the methods each documents."""
    return {
        alias.asname or alias.name: by_module[node.module][alias.name]
        for node in tree.body if isinstance(node, ast.ImportFrom) and node.module in by_module
        for alias in node.names if alias.name in by_module[node.module]
    }


def _undocumented(body: list[ast.stmt], prefix: str, inherited: frozenset[str] = frozenset(),
                  imported: dict[str, set[str]] | None = None) -> Iterator[str]:
    """Public defs in ``body`` (and public methods of public classes, recursively) without a docstring.

    A method that overrides one its base class documents needs none of its own: the base says why
    every view has a ``render``. The base is a class of the same module or one ``imported`` by name
    from another checked module (the screens' ``View`` is in ``base.py``, the views beside it).
    """
    documented = {**(imported or {}), **_documented_methods(body)}
    for node in body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if node.name.startswith("_") or (prefix and node.name == "Meta") or node.name in inherited:
            continue  # private, an ORM's options class (peewee's Meta), or an override of a documented method
        if ast.get_docstring(node) is None:
            yield f"{prefix}{node.name} (line {node.lineno})"
        if isinstance(node, ast.ClassDef):
            bases = frozenset().union(
                *(documented.get(b.id, set()) for b in node.bases if isinstance(b, ast.Name))
            )
            yield from _undocumented(node.body, f"{prefix}{node.name}.", bases, imported)


def missing_docstrings(paths: list[Path], root: Path = ROOT) -> list[str]:
    """One line per public def without a docstring, as ``path: name (line n)``."""
    trees = {path.relative_to(root).as_posix(): ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
             for path in paths}
    by_module = {rel.removesuffix(".py").removesuffix("/__init__").replace("/", "."): _documented_methods(tree.body)
                 for rel, tree in trees.items()}
    out = []
    for rel, tree in trees.items():
        out.extend(f"{rel}: {item}" for item in _undocumented(tree.body, "", imported=_imported_bases(tree, by_module)))
    return out


def test_covered_patterns_match_files():
    stale = [p for p in COVERED if not any(ROOT.glob(p.removeprefix("!")))]
    assert not stale, f"COVERED names paths that are gone: {stale}"


def test_every_public_def_has_a_docstring():
    missing = missing_docstrings(covered_files())
    assert not missing, f"{len(missing)} public defs without a docstring:\n" + "\n".join(missing)


def test_the_check_sees_a_missing_docstring(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('class A:\n    """Why."""\n\n    def f(self):\n        pass\n\n    def _g(self):\n        pass\n\n\n'
                      'def h():\n    """Why."""\n')
    tree = ast.parse(module.read_text())
    assert list(_undocumented(tree.body, "")) == ["A.f (line 4)"]


def test_an_override_of_a_documented_method_needs_no_docstring():
    tree = ast.parse('class V:\n    """Why."""\n\n    def render(self):\n        """Why."""\n\n\n'
                     'class W(V):\n    """Why."""\n\n    def render(self):\n        pass\n\n    def fill(self):\n        pass\n')
    assert list(_undocumented(tree.body, "")) == ["W.fill (line 14)"]


def test_an_override_of_a_method_documented_in_an_imported_base_needs_no_docstring(tmp_path):
    """The base may be in another checked module (pos/ui/screens/base.py's View); a method the base
    does not document is still caught, and so is one whose base comes from an unchecked module."""
    (tmp_path / "ui").mkdir()
    (tmp_path / "ui" / "base.py").write_text('class V:\n    """Why."""\n\n    def render(self):\n        """Why."""\n')
    (tmp_path / "ui" / "views.py").write_text(
        'from ui.base import V\nfrom elsewhere import V as U\n\n\nclass W(V):\n    """Why."""\n\n'
        '    def render(self):\n        pass\n\n    def fill(self):\n        pass\n\n\n'
        'class X(U):\n    """Why."""\n\n    def render(self):\n        pass\n')
    paths = [tmp_path / "ui" / "base.py", tmp_path / "ui" / "views.py"]
    assert missing_docstrings(paths, tmp_path) == ["ui/views.py: W.fill (line 11)", "ui/views.py: X.render (line 18)"]


if __name__ == "__main__":
    for line in missing_docstrings(covered_files()):
        print(line)
