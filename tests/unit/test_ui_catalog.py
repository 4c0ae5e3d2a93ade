"""Every screen text has a Bahasa Indonesia translation, and the catalogs compile (no Kivy needed)."""

from __future__ import annotations

import ast
from pathlib import Path

from hardware.card import deck as demo_deck
from hardware.card import pcscd
from pos.redemption import DATA_PROBLEMS
from pos.session import OVERRIDE_REASONS, SHIFTS
from pos.ui import i18n

ROOT = Path(__file__).resolve().parents[2]


def _msgids() -> set[str]:
    ids: set[str] = set()
    worded_elsewhere = [ROOT / "pos" / "session.py", ROOT / "pos" / "roots" / "counter.py",
                        ROOT / "hardware" / "card" / "pcscd.py", ROOT / "hardware" / "card" / "deck.py"]
    for path in [*sorted((ROOT / "pos" / "ui").glob("*.py")), *worded_elsewhere]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not node.args or not isinstance(node.args[0], ast.Constant):
                continue
            fn = node.func
            name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else ""
            if name in ("_", "_say", "_refuse_touch", "translate") and isinstance(node.args[0].value, str):
                ids.add(node.args[0].value)
            if name == "DeckUnavailable":  # why and fix: message ids the demo panel translates
                ids.update(a.value for a in node.args[:2] if isinstance(a, ast.Constant) and isinstance(a.value, str))
    ids.update(DATA_PROBLEMS, OVERRIDE_REASONS, (s.capitalize() for s in SHIFTS))
    ids.update((demo_deck.FALLBACK_NOTE, pcscd.BOOTSTRAP_FIX, pcscd.VPCD_FIX,
                demo_deck.NO_CARD_NOTE, demo_deck.NOT_CONNECTED_NOTE, demo_deck.PCSCD_NOT_OURS_NOTE,
                demo_deck.DECK_PROBLEM_NOTE, demo_deck.DECK_ERROR_NOTE))
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


def test_demo_deck_fallback_note_is_indonesian_by_default_and_english_on_request():
    """Why the demo card deck fell back to the in-process deck, as the field tester's panel says it."""
    why = pcscd.DeckUnavailable("pcscd is not installed", pcscd.BOOTSTRAP_FIX)
    port = pcscd.DeckUnavailable("pcscd is not running and port {port} (vpcd's) is used by another program",
                                        "stop that program (`sudo ss -ltnp 'sport = :{port}'` names it)", port=35963)
    assert port.why == "pcscd is not running and port 35963 (vpcd's) is used by another program"  # the log's English
    i18n.set_language("id")
    assert i18n.language() == "id"
    assert demo_deck.fallback_note(why, i18n._) == (
        "Kartu virtual: di dalam aplikasi, TIDAK lewat pcscd + vpcd: pcscd belum terpasang. Perbaikan: jalankan "
        "`sudo ./scripts/bootstrap.sh` (memasang pcscd dan vsmartcard-vpcd), lalu mulai demo lagi.")
    assert "port 35963 (milik vpcd) dipakai program lain" in demo_deck.fallback_note(port, i18n._)
    assert "lihat log" in demo_deck.fallback_note(OSError("No space left on device"), i18n._)
    stopped = pcscd.DeckUnavailable("the virtual card process stopped (exit {code})", "see {log}", code=2,
                                           log="/tmp/virtual-card.log")
    assert demo_deck.deck_note(stopped, i18n._) == (
        "Kartu virtual: proses kartu virtual berhenti (keluar 2). Perbaikan: lihat /tmp/virtual-card.log.")
    assert demo_deck.deck_note(OSError("No space left on device"), i18n._) == (
        "Kartu virtual: OSError: No space left on device. Lihat log.")
    assert demo_deck.deck_note(demo_deck.NO_CARD_NOTE, i18n._).startswith("Tidak ada kartu")
    i18n.set_language("en")
    assert demo_deck.deck_note(stopped, i18n._) == demo_deck.deck_note(stopped) == (
        "Card deck: the virtual card process stopped (exit 2). Fix: see /tmp/virtual-card.log.")
    assert demo_deck.fallback_note(why, i18n._) == demo_deck.fallback_note(why) == (
        "Card deck: in-process, NOT through pcscd + vpcd: pcscd is not installed. Fix: run "
        "`sudo ./scripts/bootstrap.sh` (installs pcscd and vsmartcard-vpcd), then start the demo again.")
    i18n.set_language("id")
