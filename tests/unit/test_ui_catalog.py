"""Every text has Bahasa Indonesia and English: the core's codes in the one wording catalog
(pos.wording), the screens' own labels in their gettext catalog; and the catalogs compile (no Kivy needed)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hardware.card import deck as demo_deck
from hardware.card import pcscd
from pos import wording
from pos.ports import PrinterFaultKind
from pos.redemption import DATA_PROBLEMS, OVERRIDE_REASONS
from pos.refusals import Reason, Refusal
from pos.session import SHIFTS, VOID_REASONS, Action
from pos.ui import i18n

ROOT = Path(__file__).resolve().parents[2]


UI = sorted((ROOT / "pos" / "ui").rglob("*.py"))  # the screens package too
WORDED_FOR_UI = [ROOT / "pos" / "roots" / "counter.py", ROOT / "hardware" / "card" / "pcscd.py",
                 ROOT / "hardware" / "card" / "deck.py"]  # message ids the screens and panel translate
SESSION = sorted((ROOT / "pos" / "session").glob("*.py"))


def _strings(paths, names: tuple[str, ...], first: int = 1, keyword: str = "") -> set[str]:
    """The string constants passed to calls of `names` in these files: the first `first`
    positional arguments, or the `keyword` argument."""
    found: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            fn = node.func
            name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else ""
            if name not in names:
                continue
            args = [k.value for k in node.keywords if k.arg == keyword] if keyword else node.args[:first]
            found.update(a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return found


def _msgids() -> set[str]:
    ids = _strings(UI + WORDED_FOR_UI, ("_", "translate"))
    ids |= _strings(UI + WORDED_FOR_UI, ("DeckUnavailable",), first=2)  # why and fix: message ids the demo panel translates
    ids.update(DATA_PROBLEMS, OVERRIDE_REASONS, (s.capitalize() for s in SHIFTS))
    ids.update((demo_deck.FALLBACK_NOTE, pcscd.BOOTSTRAP_FIX, pcscd.VPCD_FIX,
                demo_deck.NO_CARD_NOTE, demo_deck.NOT_CONNECTED_NOTE, demo_deck.PCSCD_NOT_OURS_NOTE,
                demo_deck.DECK_PROBLEM_NOTE, demo_deck.DECK_ERROR_NOTE))
    ids.update(("paper_out", "offline"))
    return ids


def test_every_code_is_worded_in_both_languages_with_the_same_fields():
    for code, pair in wording.WORDING.items():
        assert len(pair) == 2 and all(text.strip() for text in pair), code
        indonesian, english = pair
        assert wording.placeholders(indonesian) == wording.placeholders(english), code


def test_every_code_the_core_stores_has_its_wording():
    codes = {r.value for r in Reason} | set(PrinterFaultKind.__args__) | {a.wording for a in Action}
    codes |= _strings(SESSION + UI, ("tell", "_abandon_with", "_show_fault")) - {""}  # notices, faults
    codes |= _strings(SESSION, ("ErrorInfo",), keyword="fault")
    codes |= {f"void.{code}" for code in VOID_REASONS}  # the void screen's buttons and the slip
    missing = sorted(codes - wording.WORDING.keys())
    assert not missing, f"add these to pos/wording.py: {missing}"


def test_wording_is_indonesian_by_default_english_on_request_and_fills_in_codes():
    assert wording.say("paper_out").startswith("Kertas printer habis")
    assert wording.say("paper_out", "en").startswith("The printer is out of paper")
    assert wording.say("not_possible_now", "id", action=Action.ADD.wording) == "Menambah barang tidak bisa dilakukan sekarang."
    assert wording.say("sale_voided", "en", no=2, amount="Rp 99.500").startswith("Receipt no. 2 is voided.")
    assert wording.say("no_such_code") == "no_such_code"  # like gettext: shown, never a crash
    assert wording.fault_message("jammed") == wording.say("error")
    assert Refusal(Reason.PIN_WRONG).message("en") == wording.say("pin_wrong", "en")


@pytest.mark.parametrize("language", ["id", "en"])
def test_a_printer_fault_is_worded_once_for_screen_and_cli(language):
    from pos.printing import PrintOutcome

    outcome = PrintOutcome("job", "failed", "paper_out", sent=True, language=language)
    screen = wording.fault_message("paper_out", language)
    assert outcome.message.startswith(screen)
    assert wording.say("sale_saved", language) in outcome.message
    assert wording.say("partly_printed", language) in outcome.message


def test_the_screens_catalog_does_not_word_what_the_core_words():
    po = i18n._parse_po((i18n.LOCALE_DIR / "id" / "LC_MESSAGES" / "ewarung.po").read_text(encoding="utf-8"))
    english = {pair[1] for code, pair in wording.WORDING.items() if not code.startswith("receipt.")}
    assert not sorted(english & po.keys())


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


def test_what_the_cashier_reads_has_no_technical_words():
    """Issue 21: the cashier is not technical; codes ride small beside the words (screens), never in them."""
    jargon = ("tanda tangan", "penerbit", "ledger", "jurnal", "signature", "issuer", "journal")
    from pos import wording

    for table in (wording.REFUSALS, wording.NOTICES):
        for code, pair in table.items():
            for text in pair:
                assert not any(word in text.lower() for word in jargon), (code, text)
