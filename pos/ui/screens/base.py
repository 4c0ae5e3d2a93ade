"""What every counter screen shares: the `View` base (draw, keep, refill, release) and the page frame.

The views themselves are in `visit.py` (a household's visit, where to start reading) and
`staff.py` (the cashier's and supervisor's own flows); they are thin views over
pos.session.CounterSession: each renders the session's state and turns touches into session method
calls; no business rule lives here (limits, PIN tries, refusals all come from the session). What a
view keeps for itself is only what is being typed (digits, the chosen cashier or reason) before it
is submitted.
"""

from __future__ import annotations

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.scrollview import ScrollView
from kivy.uix.widget import Widget

from pos.money import format_rupiah
from pos.ui.widgets import PRIMARY, Notice, Text, Theme, column, row
from pos.wording import FAULTS, REFUSALS

TECHNICAL_CODES = REFUSALS.keys() | FAULTS.keys()  # shown small after the words, for the technician


def rp(amount: int) -> str:
    """Rupiah as the cashier reads it (Rp 72.500)."""
    return format_rupiah(int(amount))


def notice_of(session) -> str:
    """The session's notice in the screen's words (the core keeps only its code and arguments)."""
    return session.notice_text()


def scroller(inner: GridLayout | BoxLayout) -> ScrollView:
    """Let a list longer than the screen scroll (800x480 panels show little)."""
    inner.size_hint_y = None
    inner.bind(minimum_height=inner.setter("height"))
    sv = ScrollView(do_scroll_x=False, bar_width=Theme.px(10), scroll_type=["bars", "content"])
    sv.add_widget(inner)
    return sv


def _pin_to_top(widget) -> None:
    """Vertical boxes whose children all have fixed heights get a spacer at the end, so the
    content sits at the top instead of sinking to the bottom."""
    for child in list(widget.children):
        _pin_to_top(child)
    if (isinstance(widget, BoxLayout) and widget.orientation == "vertical" and widget.size_hint_y is not None
            and widget.children and all(c.size_hint_y is None for c in widget.children)):
        widget.add_widget(Widget())


def _holds_widgets(value: object) -> bool:
    if isinstance(value, Widget):
        return True
    if isinstance(value, dict):
        value = list(value.values())
    return isinstance(value, list | tuple) and any(isinstance(v, Widget) for v in value)


class View:
    """One screen. `render()` returns a fresh widget tree for the current session state."""

    name = ""

    def __init__(self, app) -> None:
        self.app = app
        self._built_for: tuple | None = None

    @property
    def session(self):
        """The counter session this screen renders (the app's, one for all screens)."""
        return self.app.session

    def enter(self) -> None:
        """Called when the session moves into this view's state (reset what is being typed)."""

    def shows(self) -> tuple | None:
        """What the screen's widgets are built for: while it is unchanged they are kept and `fill`
        brings them up to date; None: render afresh on every change."""
        return None

    def fill(self) -> None:
        """Bring the kept widgets up to date with what changes in place (nothing, by default)."""

    def status_read(self, status) -> None:
        """The app read the device's status (the status bar's figures): a screen that shows one of
        them too follows it, so the two never disagree (nothing, by default)."""

    def render(self):
        """A fresh widget tree for the session's state; every screen has its own."""
        raise NotImplementedError

    def draw(self):
        """The screen's widgets, remembering what they were built for."""
        widget = self.render()
        self._built_for = self.shows()
        return widget

    def release(self) -> None:
        """The screen left the display: let its widgets go; the next visit draws it afresh.

        Every attribute that holds a widget (or a list, tuple or dict of them) is dropped: a view
        kept for the next visit must not keep its whole old screen (widgets, text textures) alive
        behind the one on display. Found by looking, not by a list of names a new attribute could miss."""
        self._built_for = None
        for attr, value in list(vars(self).items()):
            if _holds_widgets(value):
                setattr(self, attr, None)

    def update(self) -> bool:
        """Bring the screen on display up to date in place; False: it must be drawn afresh."""
        shows = self.shows()
        if shows is None or shows != self._built_for:
            return False
        self.fill()
        return True

    def page(self, title: str, body, buttons: list | None = None, title_color=PRIMARY, notice: str | None = None,
             notice_lines: int = Notice.LINES):
        """Every screen's frame: title, body, the session's notice, the buttons; so all look alike."""
        root = column(padding=8, spacing=6)
        root.add_widget(Text(title, "title", color=title_color, bold=True))
        _pin_to_top(body)
        root.add_widget(body)
        s = self.session
        note = notice_of(s) if notice is None else notice
        code = str(s.notice_args.get("detail", ""))[:80] or (s.notice if s.notice in TECHNICAL_CODES else "")
        root.add_widget(Notice(note, success=bool(note) and s.notice_is_success, lines=notice_lines,
                               code=code if note else ""))
        if buttons:
            root.add_widget(row(*buttons))
        return root
