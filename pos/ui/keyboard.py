"""An on-screen keyboard for the few free-text fields (a note to the city about a household).

The counter has a touchscreen and no physical keyboard. Kivy's VKeyboard is made for docking
under a TextInput and draws keys from a background image; ours is built from the same big,
named buttons as every other screen, so keys stay >= 9 mm on a 7" 800x480 panel and the UI
tests can tap them by name (`kb-a`, `kb-space`, `kb-erase`, `kb-shift`, `kb-done`).
"""

from __future__ import annotations

from collections.abc import Callable

from kivy.uix.boxlayout import BoxLayout

from pos.ui.widgets import BigButton, Theme

ROWS = ("1234567890", "qwertyuiop", "asdfghjkl-", "zxcvbnm,.")


class TextKeys(BoxLayout):
    """Letters, digits, space, erase, shift (the next letter in capitals) and Done.

    `value` holds the text; `on_change(value)` follows every key, `on_done(value)` the Done key.
    """

    def __init__(self, on_change: Callable[[str], None], on_done: Callable[[str], None], *, value: str = "",
                 max_len: int = 200, done_text: str = "OK", erase_text: str = "Del", space_text: str = "space",
                 **kw) -> None:
        super().__init__(orientation="vertical", spacing=Theme.px(4), **kw)
        self.value = value
        self.max_len = max_len
        self.shift = not value
        self._on_change, self._on_done = on_change, on_done
        self._letters: list[BigButton] = []
        for chars in ROWS:
            line = BoxLayout(spacing=Theme.px(4))
            if chars.startswith("z"):
                line.add_widget(self._key("Aa", self._toggle_shift, "kb-shift", "neutral"))
            for ch in chars:
                b = self._key(ch, lambda c=ch: self._type(c), f"kb-{ch}", "primary")
                if ch.isalpha():
                    self._letters.append(b)
                line.add_widget(b)
            self.add_widget(line)
        last = BoxLayout(spacing=Theme.px(4))
        last.add_widget(self._key(erase_text, self._erase, "kb-erase", "neutral", size_hint_x=0.25))
        last.add_widget(self._key(space_text, lambda: self._type(" "), "kb-space", "primary", size_hint_x=0.5))
        last.add_widget(self._key(done_text, lambda: self._on_done(self.value), "kb-done", "ok", size_hint_x=0.25))
        self.add_widget(last)
        self._show_case()

    @staticmethod
    def _key(text: str, action: Callable[[], None], name: str, kind: str, **kw) -> BigButton:
        b = BigButton(text, action, kind, name=name, role="big", **kw)
        b.size_hint_y = 1
        return b

    def _type(self, ch: str) -> None:
        if len(self.value) >= self.max_len:
            return
        if self.shift and ch.isalpha():
            ch = ch.upper()
            self.shift = False
            self._show_case()
        self.value += ch
        self._on_change(self.value)

    def _erase(self) -> None:
        self.value = self.value[:-1]
        self._on_change(self.value)

    def _toggle_shift(self) -> None:
        self.shift = not self.shift
        self._show_case()

    def _show_case(self) -> None:
        for b in self._letters:
            b.text = b.text.upper() if self.shift else b.text.lower()
