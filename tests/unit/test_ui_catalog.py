"""Every screen text has a Bahasa Indonesia translation, and the catalogs compile (no Kivy needed)."""

from __future__ import annotations

import ast
from pathlib import Path

from pos.redemption import DATA_PROBLEMS
from pos.session import OVERRIDE_REASONS, SHIFTS
from pos.ui import i18n

ROOT = Path(__file__).resolve().parents[2]


def _msgids() -> set[str]:
    ids: set[str] = set()
    for path in [*sorted((ROOT / "pos" / "ui").glob("*.py")), ROOT / "pos" / "session.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not node.args or not isinstance(node.args[0], ast.Constant):
                continue
            fn = node.func
            name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else ""
            if name in ("_", "_say", "_refuse_touch") and isinstance(node.args[0].value, str):
                ids.add(node.args[0].value)
    ids.update(DATA_PROBLEMS, OVERRIDE_REASONS, (s.capitalize() for s in SHIFTS))
    ids.update(("wrong_items", "wrong_quantity", "buyer_cancelled", "cashier_mistake", "paper_out", "offline"))
    return ids


def test_every_screen_text_is_translated_to_indonesian():
    i18n.compile_catalogs(force=False)
    po = i18n._parse_po((i18n.LOCALE_DIR / "id" / "LC_MESSAGES" / "ewarung.po").read_text(encoding="utf-8"))
    missing = sorted(m for m in _msgids() if m not in po)
    assert not missing, f"add these to pos/ui/locale/id/LC_MESSAGES/ewarung.po: {missing}"


def test_catalogs_switch_language_and_format():
    i18n.set_language("id")
    assert i18n._("Insert the SSN card") == "Masukkan kartu SSN"
    assert i18n._("Tries left: {n}", n=2) == "Sisa percobaan: 2"
    i18n.set_language("en")
    assert i18n._("Insert the SSN card") == "Insert the SSN card"
    assert i18n._("card_damaged") == "Card damaged"
    i18n.set_language("id")


def test_mo_roundtrip(tmp_path):
    import gettext

    mo = tmp_path / "x.mo"
    i18n._write_mo({"": "Content-Type: text/plain; charset=UTF-8\n", "a": "b", "ü": "é"}, mo)
    with mo.open("rb") as f:
        t = gettext.GNUTranslations(f)
    assert t.gettext("a") == "b" and t.gettext("ü") == "é" and t.gettext("zz") == "zz"
