"""Building blocks for the counter screens: big, high-contrast, touch-sized (>= 9 mm).

Sizes scale with the window height (`Theme.s` = height / 480): on a 7" 800x480 panel
(about 5.2 px per mm) the smallest touch target, 56 * s px, is about 10.7 mm.
"""

from __future__ import annotations

from collections.abc import Callable

from kivy.graphics import Color, Rectangle
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.gridlayout import GridLayout
from kivy.uix.label import Label

from pos.ui.frame_split import FrameSplit

BG = (0.97, 0.97, 0.95, 1)
TEXT = (0.06, 0.06, 0.08, 1)
MUTED = (0.30, 0.30, 0.34, 1)
PRIMARY = (0.04, 0.33, 0.62, 1)
OK = (0.05, 0.45, 0.18, 1)
DANGER = (0.72, 0.08, 0.08, 1)
WARN = (0.80, 0.45, 0.0, 1)
NEUTRAL = (0.38, 0.40, 0.45, 1)
BAR = (0.10, 0.13, 0.18, 1)
WHITE = (1, 1, 1, 1)
PANEL = (0.90, 0.92, 0.95, 1)

KINDS = {"primary": PRIMARY, "ok": OK, "danger": DANGER, "neutral": NEUTRAL, "warn": WARN}


class Theme:
    """Sizes that scale with the window height, so one layout fits both supported panels."""

    s: float = 1.0

    @classmethod
    def set_height(cls, height: int) -> None:
        """Scale everything for this window height (never below 0.8, so touch targets stay usable)."""
        cls.s = max(0.8, height / 480)

    @classmethod
    def px(cls, value: float) -> float:
        """A length given for the 480-pixel-high layout, scaled to this window."""
        return value * cls.s

    @classmethod
    def font(cls, role: str = "body") -> float:
        """The font size for a text role, scaled; a few roles keep the
        number of distinct sizes (each costs memory) small."""
        return {"small": 17, "body": 21, "big": 27, "title": 30, "huge": 42, "button": 22}[role] * cls.s

    @classmethod
    def touch(cls) -> float:
        """The smallest touch target's height, about 10 mm on the 7-inch panel."""
        return 56 * cls.s


def paint(widget, rgba) -> None:
    """Give a layout a solid background."""
    with widget.canvas.before:
        color = Color(*rgba)
        rect = Rectangle(pos=widget.pos, size=widget.size)
    widget._bg = (color, rect)
    widget.bind(pos=lambda w, v: setattr(rect, "pos", v), size=lambda w, v: setattr(rect, "size", v))


class Text(Label):
    """A wrapping label whose height follows its text."""

    def __init__(self, text: str = "", role: str = "body", color=TEXT, bold: bool = False, halign: str = "left", **kw):
        kw.setdefault("size_hint_y", None)
        super().__init__(text=text, font_size=Theme.font(role), color=color, bold=bold, halign=halign,
                         valign="middle", markup=True, **kw)
        self.bind(width=self._wrap, texture_size=self._fit)
        FrameSplit.add_to(self.canvas.after)

    def _wrap(self, _w, width) -> None:
        self.text_size = (width, None)

    def _fit(self, _w, size) -> None:
        self.height = size[1] + Theme.px(4)


class BigButton(Button):
    """A flat, coloured, touch-sized button; `name` lets tests and docs refer to it."""

    def __init__(self, text: str, on_press: Callable[[], None] | None = None, kind: str = "primary",
                 name: str = "", role: str = "button", disabled: bool = False, **kw):
        kw.setdefault("size_hint_y", None)
        kw.setdefault("height", Theme.touch())
        super().__init__(text=text, font_size=Theme.font(role), background_normal="", background_down="",
                         background_color=KINDS.get(kind, PRIMARY), color=WHITE, bold=True, halign="center",
                         valign="middle", disabled=disabled, **kw)
        self.name = name
        self.kind = kind
        FrameSplit.add_to(self.canvas.after)
        self.bind(size=lambda w, v: setattr(w, "text_size", (v[0] - Theme.px(8), None)))
        if on_press is not None:
            self.bind(on_release=lambda *_: on_press())

    def set_kind(self, kind: str) -> None:
        """Recolour in place (a pick among buttons), instead of building the screen again."""
        self.kind = kind
        self._paint()

    def on_disabled(self, _w, _value) -> None:
        """Kivy calls this when `disabled` changes: a flat
        grey instead of Kivy's themed disabled image."""
        self.background_disabled_normal = ""
        self.disabled_color = (1, 1, 1, 0.85)
        self._paint()

    def _paint(self) -> None:
        self.background_color = (0.70, 0.71, 0.74, 1) if self.disabled else KINDS.get(getattr(self, "kind", "primary"), PRIMARY)


class Notice(Label):
    """The notice line under every screen: a box of fixed height, there even when empty, so nothing
    on the screen moves under the cashier's finger when a message comes or goes. Successes are
    green, problems red; a technical code rides small after the words, for the technician."""

    LINES = 2

    def __init__(self, text: str = "", success: bool = False, code: str = "", lines: int = LINES, **kw):
        height = Theme.font("body") * 1.25 * lines
        shown = text + (f"  [size={int(Theme.font('small') * 0.8)}]({code})[/size]" if text and code else "")
        super().__init__(text=shown, font_size=Theme.font("body"), color=OK if success else DANGER, bold=True,
                         halign="left", valign="middle", markup=True, size_hint_y=None, height=height, **kw)
        self.name = "notice"
        self.success = success
        # wrapped to the width only: a text too long for the box shows as taller than it (the UI
        # checks measure it), never silently cut
        self.bind(width=lambda w, v: setattr(w, "text_size", (v, None)))
        FrameSplit.add_to(self.canvas.after)


def row(*widgets, height: float | None = None, spacing: float = 8) -> BoxLayout:
    """A fixed-height horizontal box, touch-high unless told, spaced in scaled pixels."""
    box = BoxLayout(orientation="horizontal", size_hint_y=None, height=height or Theme.touch(),
                    spacing=Theme.px(spacing))
    for w in widgets:
        box.add_widget(w)
    return box


def column(*widgets, spacing: float = 6, padding: float = 0, **kw) -> BoxLayout:
    """A vertical box with scaled spacing and padding."""
    box = BoxLayout(orientation="vertical", spacing=Theme.px(spacing), padding=Theme.px(padding), **kw)
    for w in widgets:
        box.add_widget(w)
    return box


class KeyPad(GridLayout):
    """Digits 1-9, erase, 0, OK. `value` holds what was typed (shown masked or plain by the owner)."""

    def __init__(self, on_change: Callable[[str], None], on_ok: Callable[[str], None], max_len: int = 8,
                 ok_text: str = "OK", erase_text: str = "Del", prefix: str = "key", **kw):
        super().__init__(cols=3, spacing=Theme.px(6), **kw)
        self.value = ""
        self.max_len = max_len
        self._on_change, self._on_ok = on_change, on_ok
        for key in ["1", "2", "3", "4", "5", "6", "7", "8", "9", "<", "0", "ok"]:
            if key == "<":
                b = BigButton(erase_text, self._erase, "neutral", name=f"{prefix}-erase", role="big")
            elif key == "ok":
                b = BigButton(ok_text, lambda: self._on_ok(self.value), "ok", name=f"{prefix}-ok", role="button")
            else:
                b = BigButton(key, lambda k=key: self._digit(k), "primary", name=f"{prefix}-{key}", role="big")
            b.size_hint_y = 1
            self.add_widget(b)

    def _digit(self, d: str) -> None:
        if len(self.value) < self.max_len:
            self.value += d
            self._on_change(self.value)

    def _erase(self) -> None:
        self.value = self.value[:-1]
        self._on_change(self.value)

    def clear(self) -> None:
        """Empty what was typed (after a wrong PIN) and tell the owner, so its display follows."""
        self.value = ""
        self._on_change(self.value)
