"""gettext for the screens' own labels and buttons: Bahasa Indonesia by default, English on request.

Catalogs: pos/ui/locale/{id,en}/LC_MESSAGES/ewarung.po (msgids are English). What the core says
(refusals, device faults, the session's notices) is not here: the core stores codes and the one
wording catalog, pos.wording, words them. The compiled .mo files are committed;
`compile_catalogs()` rebuilds any .mo older than its .po (run at start, so a fresh clone or an
edited .po works without Babel or GNU gettext installed).
"""

from __future__ import annotations

import ast
import gettext
import struct
from pathlib import Path

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "ewarung"
LANGUAGES = ("id", "en")

_translation: gettext.NullTranslations = gettext.NullTranslations()
_language = "id"


def _parse_po(text: str) -> dict[str, str]:
    """msgid -> msgstr for a simple .po (no plurals, no contexts); fuzzy entries skipped."""
    messages: dict[str, str] = {}
    msgid = msgstr = None
    section = None
    fuzzy = False

    def flush() -> None:
        nonlocal msgid, msgstr, fuzzy
        if msgid is not None and msgstr is not None and not fuzzy and (msgstr or msgid == ""):
            messages[msgid] = msgstr
        msgid = msgstr = None
        fuzzy = False

    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#,") and "fuzzy" in line:
            flush()
            fuzzy = True
        elif line.startswith("#") or not line:
            if msgstr is not None and not line:
                flush()
        elif line.startswith("msgid "):
            if msgstr is not None:
                f = fuzzy
                flush()
                fuzzy = f
            msgid, section = ast.literal_eval(line[6:]), "id"
        elif line.startswith("msgstr "):
            msgstr, section = ast.literal_eval(line[7:]), "str"
        elif line.startswith('"'):
            part = ast.literal_eval(line)
            if section == "id":
                msgid = (msgid or "") + part
            else:
                msgstr = (msgstr or "") + part
    flush()
    return messages


def _write_mo(messages: dict[str, str], path: Path) -> None:
    """GNU .mo format, as CPython's Tools/i18n/msgfmt.py writes it."""
    keys = sorted(messages)
    ids = strs = b""
    offsets = []
    for k in keys:
        kb, vb = k.encode(), messages[k].encode()
        offsets.append((len(ids), len(kb), len(strs), len(vb)))
        ids += kb + b"\0"
        strs += vb + b"\0"
    keystart = 7 * 4 + 16 * len(keys)
    valuestart = keystart + len(ids)
    koffsets: list[int] = []
    voffsets: list[int] = []
    for o1, l1, o2, l2 in offsets:
        koffsets += [l1, o1 + keystart]
        voffsets += [l2, o2 + valuestart]
    output = struct.pack("Iiiiiii", 0x950412DE, 0, len(keys), 7 * 4, 7 * 4 + len(keys) * 8, 0, 0)
    output += struct.pack(f"{len(koffsets)}i", *koffsets) + struct.pack(f"{len(voffsets)}i", *voffsets)
    path.write_bytes(output + ids + strs)


def compile_catalogs(force: bool = False) -> list[Path]:
    """Rebuild stale .mo files, so an edited .po shows on the next start without a build step."""
    written = []
    for po in sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        mo = po.with_suffix(".mo")
        if force or not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            try:
                _write_mo(_parse_po(po.read_text(encoding="utf-8")), mo)
                written.append(mo)
            except OSError:
                pass  # read-only install: the shipped .mo is used
    return written


def set_language(language: str) -> None:
    """Switch the screens' labels; the app switches the session's language beside it."""
    global _translation, _language
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    compile_catalogs()
    _translation = gettext.translation(DOMAIN, LOCALE_DIR, languages=[language], fallback=True)
    _language = language


def language() -> str:
    """The labels' language now, for widgets built outside a screen (the field tester's panel)."""
    return _language


def _(msgid: str, **args) -> str:
    """A label in the current language, its `{fields}` filled in (gettext's `_`, with format)."""
    text = _translation.gettext(msgid)
    return text.format(**args) if args else text
