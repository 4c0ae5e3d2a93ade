"""The counter screens: thin views over pos.session.CounterSession.

Each view renders the session's state and turns touches into session method calls; no business
rule lives here (limits, PIN tries, refusals all come from the session). What a view keeps for
itself is only what is being typed (digits, the chosen cashier or reason) before it is submitted.
"""

from __future__ import annotations

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.scrollview import ScrollView
from kivy.uix.widget import Widget

from pos.clock import parse_iso
from pos.money import format_rupiah
from pos.period import WITA
from pos.redemption import DATA_PROBLEMS
from pos.refusals import Reason
from pos.session import OVERRIDE_REASONS, SHIFTS, State
from pos.ui.i18n import _
from pos.ui.keyboard import TextKeys
from pos.ui.widgets import (
    DANGER,
    MUTED,
    OK,
    PANEL,
    PRIMARY,
    WARN,
    BigButton,
    KeyPad,
    Notice,
    Text,
    Theme,
    column,
    paint,
    row,
)
from pos.wording import FAULTS, REFUSALS, fault_message, say

HOUSEHOLD_PREFIX = "SSN-6472-"
TECHNICAL_CODES = REFUSALS.keys() | FAULTS.keys()  # shown small after the words, for the technician
CONFIRM_ONE_COLUMN = 4  # more basket lines than this go in two columns, so all stay in view
NOTE_MAX = 200  # the city keeps up to 500 characters; a cashier types far less


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


class SignInView(View):
    """Who is at the counter, and for which shift: every sale names its cashier."""

    name = "signin"

    def enter(self) -> None:
        self.cashier = ""
        self.shift = "pagi"
        self.pin = ""

    def shows(self) -> tuple:
        # not the PIN typed so far (the pad and its dots change in place: _typed, _ok), nor who and
        # which shift are picked (their buttons change colour in place: fill)
        s = self.session
        return tuple(self.app.cashier_list), s.language, notice_of(s)

    def fill(self) -> None:
        for cid, button in self._cashier_buttons.items():
            button.set_kind("ok" if cid == self.cashier else "neutral")
        for sh, button in self._shift_buttons.items():
            button.set_kind("ok" if sh == self.shift else "neutral")

    def render(self):
        s = self.session
        left = column(spacing=6)
        left.add_widget(Text(_("Who is at the counter?"), "body", color=MUTED))
        at_counter = [(cid, name) for cid, name, role in self.app.cashier_list if role != "technician"]
        self._cashier_buttons = {cid: BigButton(name, lambda c=cid: self._pick(c), name=f"cashier-{cid}")
                                 for cid, name in at_counter}
        for button in self._cashier_buttons.values():
            left.add_widget(button)
        self._shift_buttons = {sh: BigButton(_(sh.capitalize()), lambda x=sh: self._shift(x), name=f"shift-{sh}")
                               for sh in SHIFTS}
        left.add_widget(row(Text(_("Shift"), "body", color=MUTED, size_hint_y=1), *self._shift_buttons.values()))
        self.fill()
        right = column(spacing=6)
        self.dots = Text(self._dots(), "huge", halign="center", bold=True)
        right.add_widget(Text(_("Cashier PIN"), "body", color=MUTED, halign="center"))
        right.add_widget(self.dots)
        self.pad = KeyPad(self._typed, self._ok, ok_text=_("Sign in"), erase_text=_("Erase"), prefix="signin")
        right.add_widget(self.pad)
        body = BoxLayout(spacing=Theme.px(12))
        body.add_widget(scroller(left) if len(at_counter) > 3 else left)  # 3 fit on 800x480; more scroll
        body.add_widget(right)
        buttons = [BigButton(_("Technician"), s.open_technician, "neutral", name="technician"),
                   BigButton("English" if s.language == "id" else "Bahasa Indonesia", self.app.toggle_language,
                             "neutral", name="language")]
        # its notices are one short line: the column of names and shifts keeps the room
        return self.page(_("Cashier sign-in"), body, buttons, notice_lines=1)

    def _dots(self) -> str:
        return "* " * len(self.pin) if self.pin else "-"

    def _pick(self, cid: str) -> None:
        self.cashier = cid
        self.app.refresh()

    def _shift(self, sh: str) -> None:
        self.shift = sh
        self.app.refresh()

    def _typed(self, value: str) -> None:
        self.pin = value
        self.dots.text = self._dots()

    def _ok(self, value: str) -> None:
        if not self.cashier:
            self.session.tell("pick_name")
            self.app.refresh()
            return
        self.pad.clear()  # the screen may stay as it is (a wrong PIN again): start the next try empty
        self.session.sign_in(self.cashier, value, self.shift)


class IdleView(View):
    """Waiting for a card; the staff flows start from here."""

    name = "idle"

    def shows(self) -> tuple:
        s = self.session
        return s.cashier_name, s.shift, s.language, notice_of(s)

    def render(self):
        s = self.session
        body = column(spacing=10)
        card = column(padding=16, spacing=8, size_hint_y=1)
        paint(card, PANEL)
        card.add_widget(Text(_("Insert the SSN card"), "huge", color=PRIMARY, bold=True, halign="center"))
        card.add_widget(Text(_("Put the card into the reader, chip first and facing up."), "big", halign="center"))
        card.add_widget(Text(_("Cashier: {name} - shift {shift}", name=s.cashier_name, shift=_(s.shift.capitalize())),
                             "body", color=MUTED, halign="center"))
        body.add_widget(card)
        buttons = [
            BigButton(_("History"), s.open_history, "primary", name="history"),
            BigButton(_("No card"), s.open_override, "warn", name="override"),
            BigButton(_("Report data"), lambda: s.open_flag(""), "neutral", name="flag"),
            BigButton(_("End of day"), s.open_end_of_day, "neutral", name="end-of-day"),
            BigButton(_("Technician"), s.open_technician, "neutral", name="technician"),
            BigButton(_("Sign out"), s.sign_out, "danger", name="sign-out"),
        ]
        return self.page(_("Ready"), body, buttons)


class VerifyingView(View):
    """The card is being checked: the holder must not pull it out now."""

    name = "verifying"

    def render(self):
        body = column(spacing=12)
        body.add_widget(Text(_("Checking the card..."), "huge", color=PRIMARY, bold=True, halign="center"))
        body.add_widget(Text(_("Do not pull the card out."), "big", halign="center"))
        return self.page(_("Please wait"), body)


class HouseholdView(View):
    """Who the card belongs to and what is left this month, and who collects."""

    name = "household"

    def render(self):
        s = self.session
        ent = s.entitlement
        h = ent.household
        left = column(spacing=4)
        left.add_widget(Text(h.name, "title", bold=True))
        left.add_widget(Text(f"{h.id}  -  {h.area}", "small", color=MUTED))
        left.add_widget(Text(_("Period {period}  -  plan {plan}", period=str(ent.period), plan=ent.plan.code), "small"))
        if s.mode == "override":
            left.add_widget(Text(_("WITHOUT CARD - supervisor override ({reason})",
                                   reason=_(s.override_reason)), "body", color=WARN, bold=True))
        for label, value, color in ((_("Allowance"), rp(ent.allowance), None), (_("Already spent"), rp(ent.spent), None),
                                    (_("Remaining"), rp(ent.remaining), OK)):
            left.add_widget(row(Text(label, "big", size_hint_x=0.5),
                                Text(value, "big" if color is None else "title", bold=True,
                                     color=color or (0, 0, 0, 1), halign="right", size_hint_x=0.5),
                                height=Theme.px(44)))
        right = column(spacing=6)
        right.add_widget(Text(_("Who collects the food?"), "big", bold=True))
        right.add_widget(BigButton(_("The card holder: {name}", name=h.name), lambda: s.choose_collector("holder"),
                                   "primary", name="collector-holder"))
        for rep in h.representatives:
            right.add_widget(BigButton(_("Representative: {name} ({relation})", name=rep.name, relation=rep.relation),
                                       lambda r=rep.id: s.choose_collector("representative", r), "primary",
                                       name=f"collector-{rep.id}"))
        if not h.representatives:
            right.add_widget(Text(_("No registered representative."), "body", color=MUTED))
        body = BoxLayout(spacing=Theme.px(12))
        body.add_widget(left)
        body.add_widget(right)
        buttons = [BigButton(_("Cancel"), s.cancel, "danger", name="cancel"),
                   BigButton(_("Report data"), lambda: s.open_flag(h.id), "neutral", name="flag")]
        return self.page(_("Household"), body, buttons)


class PinView(View):
    """The holder types the card's PIN; the card, not the device, checks it."""

    name = "pin"

    def enter(self) -> None:
        self.pin = ""

    def render(self):
        s = self.session
        left = column(spacing=8)
        left.add_widget(Text(_("The holder types the card PIN"), "big", bold=True))
        left.add_widget(Text(_("Cover the keypad with your hand."), "body", color=MUTED))
        self.dots = Text(self._dots(), "huge", halign="center", bold=True)
        left.add_widget(self.dots)
        if s.pin_tries_left is not None:
            left.add_widget(Text(_("Tries left: {n}", n=s.pin_tries_left), "big",
                                 color=DANGER if s.pin_tries_left <= 1 else (0, 0, 0, 1), bold=True))
        if s.busy:
            left.add_widget(Text(_("Checking the PIN..."), "big", color=PRIMARY))
        pad = KeyPad(self._typed, self._ok, ok_text=_("OK"), erase_text=_("Erase"), prefix="pin")
        body = BoxLayout(spacing=Theme.px(12))
        body.add_widget(left)
        body.add_widget(pad)
        return self.page(_("Card PIN"), body, [BigButton(_("Cancel"), s.cancel, "danger", name="cancel")])

    def _dots(self) -> str:
        return "* " * len(self.pin) if self.pin else "-"

    def _typed(self, value: str) -> None:
        self.pin = value
        self.dots.text = self._dots()

    def _ok(self, value: str) -> None:
        self.pin = ""
        self.session.submit_pin(value)


class BasketView(View):
    """The basket is the screen touched most (every + and -): it is built once per visit and its
    tiles, totals and buttons change in place, instead of every widget rebuilt on each touch (slow on
    a Pi, and the garbage of the old tree; bench/results has the figures)."""

    name = "basket"

    def render(self):
        s = self.session
        self._head = [Text("", "body", bold=True), Text("", "body", bold=True, color=PRIMARY),
                      Text("", "body", bold=True, color=OK)]
        head = row(*self._head, height=Theme.px(30))
        # tiles at least ~300 scaled px wide, so the longest food name stays on one line
        cols = max(3, int(self.app.size[0] // Theme.px(300)))
        grid = GridLayout(cols=cols, spacing=Theme.px(6), row_default_height=Theme.px(132), row_force_default=True)
        self._tiles = {}
        for code, entry in s.catalog.items():
            grid.add_widget(self._tile(code, entry))
        body = column(spacing=4)
        body.add_widget(head)
        body.add_widget(scroller(grid))
        self._continue = BigButton("", s.to_confirm, "ok", name="to-confirm")
        buttons = [BigButton(_("Cancel"), s.cancel, "danger", name="cancel"), self._continue]
        self.fill()
        return self.page(_("Choose the food"), body, buttons)

    def shows(self) -> tuple:
        s = self.session
        return tuple(s.catalog), s.language, notice_of(s)

    def fill(self) -> None:
        s = self.session
        total, remaining = s.basket_total, s.remaining
        for label, text in zip(self._head, (_("Remaining: {amount}", amount=rp(remaining)),
                                            _("Basket: {amount}", amount=rp(total)),
                                            _("Left after: {amount}", amount=rp(remaining - total))), strict=True):
            label.text = text
        for code, (bg, info, minus, qty, plus) in self._tiles.items():
            n = s.basket.get(code, 0)
            bg.rgba = (0.82, 0.92, 0.84, 1) if n else PANEL
            quota = s.quota_left(code)
            info.text = rp(s.catalog[code].price) + (" - " + _("quota left {n}", n=quota) if quota is not None else "")
            qty.text = str(n)
            minus.disabled = n == 0
            plus.disabled = not s.can_add(code)
        self._continue.text = _("Continue ({amount})", amount=rp(total))
        self._continue.disabled = not s.basket

    def _tile(self, code, entry):
        s = self.session
        tile = column(padding=4, spacing=2)
        paint(tile, PANEL)
        tile.add_widget(Text(entry.name(s.language), "body", bold=True))
        info = Text("", "small", color=MUTED)
        tile.add_widget(info)
        minus = BigButton("-", lambda: s.remove(code), "neutral", name=f"minus-{code}", role="huge")
        qty = Text("", "huge", bold=True, halign="center")
        plus = BigButton("+", lambda: s.add(code), "primary", name=f"plus-{code}", role="huge")
        tile.add_widget(row(minus, qty, plus))
        self._tiles[code] = (tile._bg[0], info, minus, qty, plus)
        return tile


class ConfirmView(View):
    """The buyer checks the basket before anything is written."""

    name = "confirm"

    def render(self):
        s = self.session
        # every line of the largest basket the allowance permits must be in view at once: two
        # columns of short rows; past what fits, a line says how many more lie below
        cols = 2 if len(s.basket) > CONFIRM_ONE_COLUMN else 1
        lines = GridLayout(cols=cols, spacing=(Theme.px(14), Theme.px(1)), row_default_height=Theme.px(27),
                           row_force_default=True)
        role = "small" if cols == 2 else "big"
        for code, qty in s.basket.items():
            entry = s.catalog[code]
            lines.add_widget(row(Text(f"{qty} x {entry.name(s.language)}", role, size_hint_x=0.7),
                                 Text(rp(entry.price * qty), role, bold=True, halign="right", size_hint_x=0.3),
                                 height=Theme.px(27), spacing=2))
        who = s.collector
        name = s.entitlement.household.name if who.kind == "holder" else next(
            (r.name for r in s.entitlement.household.representatives if r.id == who.representative_id), "")
        body = column(spacing=4)
        view = scroller(lines)
        view.name = "basket-lines"
        body.add_widget(view)
        more = Text("", "small", color=PRIMARY, bold=True)
        more.name = "more-below"
        def say_more(*_a):
            hidden = len(s.basket) - cols * int((view.height + Theme.px(1)) // Theme.px(28))
            more.text = _("{n} more lines below: scroll down", n=hidden) if hidden > 0 else ""

        view.bind(height=say_more)
        body.add_widget(more)
        body.add_widget(row(Text(_("Total"), "title", bold=True), Text(rp(s.basket_total), "title", bold=True, halign="right"),
                            Text(_("Remaining after"), "body", halign="right"),
                            Text(rp(s.remaining - s.basket_total), "big", bold=True, color=OK, halign="right"),
                            height=Theme.px(44)))
        body.add_widget(Text(_("Collected by: {name}", name=name) + "  -  " +
                             _("Food only. This aid cannot be exchanged for cash."), "small", color=MUTED))
        buttons = [BigButton(_("Back"), s.back, "neutral", name="back"),
                   BigButton(_("Yes, save"), s.confirm, "ok", name="confirm", disabled=s.busy)]
        # its notices are one line ("not possible now"): the room goes to the basket's lines
        return self.page(_("Check the basket with the buyer"), body, buttons, notice_lines=1)


class CommittingView(View):
    """The sale is being saved and printed: the card must stay in."""

    name = "committing"

    def render(self):
        body = column()
        body.add_widget(Text(_("Saving and printing..."), "huge", color=PRIMARY, bold=True, halign="center"))
        body.add_widget(Text(_("Do not pull the card out."), "big", halign="center"))
        return self.page(_("Please wait"), body)


class DoneView(View):
    """The sale is saved: what is left, and whether the receipt printed."""

    name = "done"

    def render(self):
        s = self.session
        sale = s.sale
        body = column(spacing=4 if sale.print_fault else 8)  # the printer's advice needs the room
        body.add_widget(Text(_("Remaining allowance this month"), "big", halign="center"))
        body.add_widget(Text(rp(sale.remaining_after), "huge", bold=True, color=OK, halign="center"))
        body.add_widget(Text(_("Receipt no. {no}  -  total {amount}", no=sale.receipt_no, amount=rp(sale.total)),
                             "body", halign="center"))
        if sale.print_fault:
            body.add_widget(Text(_("The receipt did not print. The sale IS saved.") + " " +
                                 fault_message(sale.print_fault, s.language), "body", color=DANGER, bold=True,
                                 halign="center"))
        else:
            body.add_widget(Text(_("Give the receipt and the food."), "big", halign="center"))
        body.add_widget(Text(_("Take your card."), "big" if sale.print_fault else "huge", color=PRIMARY, bold=True,
                             halign="center"))
        buttons = [BigButton(_("Reprint"), s.reprint, "warn" if sale.print_fault else "neutral", name="reprint",
                             disabled=s.busy),
                   BigButton(_("Finish"), s.finish, "ok", name="finish")]
        return self.page(_("Done"), body, buttons, title_color=OK)


class ErrorView(View):
    """Why the counter cannot serve, and what to do next."""

    name = "error"

    def render(self):
        s = self.session
        err = s.error
        body = column(spacing=10)
        body.add_widget(Text(err.message(s.language), "title", bold=True))
        code = err.reason.value if err.reason else err.fault
        body.add_widget(Text(_("Code for the technician: {code}", code=code), "small", color=MUTED))
        buttons = [BigButton(_("Understood"), s.acknowledge, "primary", name="acknowledge")]
        # a wrong card is reported to the city by itself; the data about a household, by the cashier
        if err.reason in (Reason.HOUSEHOLD_UNKNOWN, Reason.HOUSEHOLD_REVOKED, Reason.HOUSEHOLD_EXPIRED):
            buttons.append(BigButton(_("Report data"), lambda: s.open_flag(err.household), "neutral", name="flag"))
        title = _("Cannot serve") if err.reason else _("Device problem")
        return self.page(title, body, buttons, title_color=DANGER)


class _SupervisorPad:
    """Supervisor choice + PIN pad, shared by void and override."""

    def supervisor_box(self, on_ok, ok_text: str):
        box = column(spacing=4)
        sups = [(cid, name) for cid, name, role in self.app.cashier_list if role == "supervisor"]
        box.add_widget(row(*[BigButton(name, lambda c=cid: self._pick_sup(c), "ok" if cid == self.sup else "neutral",
                                       name=f"supervisor-{cid}", role="body") for cid, name in sups]))
        self.sup_dots = Text(_("Supervisor PIN: {dots}", dots="* " * len(self.sup_pin) or "-"), "big", bold=True)
        box.add_widget(self.sup_dots)
        box.add_widget(KeyPad(self._sup_typed, on_ok, ok_text=ok_text, erase_text=_("Erase"), prefix="spv"))
        return box

    def _pick_sup(self, cid):
        self.sup = cid
        self.app.refresh()

    def _sup_typed(self, value):
        self.sup_pin = value
        self.sup_dots.text = _("Supervisor PIN: {dots}", dots="* " * len(value) or "-")


class HistoryView(View, _SupervisorPad):
    """The latest sales: reprint one, or void one with a supervisor."""

    name = "history"

    def enter(self) -> None:
        self.selected = ""
        self.reason = ""
        self.sup = ""
        self.sup_pin = ""

    def render(self):
        s = self.session
        if self.selected and self.selected == s.last_voided:  # done: back to the list, which shows it voided
            self.selected = ""
        if self.selected:
            return self._void_panel()
        rows = column(spacing=4)
        if not s.history:
            rows.add_widget(Text(_("No sales yet."), "big", color=MUTED))
        for r in s.history:
            at = parse_iso(r.created_at).astimezone(WITA).strftime("%d/%m %H:%M")
            label = f"#{r.receipt_no}  {at}  {r.collector_name}  {rp(r.total)}"
            if r.voided:
                label += "  [" + _("VOIDED") + "]"
            if r.mode == "override":
                label += "  [" + _("no card") + "]"
            rows.add_widget(row(Text(label, "body", color=MUTED if r.voided else (0, 0, 0, 1)),
                                BigButton(_("Reprint"), lambda rid=r.redemption_id: s.reprint(rid), "neutral",
                                          name=f"reprint-{r.receipt_no}", size_hint_x=0.24, role="body"),
                                BigButton(_("Void"), lambda rid=r.redemption_id: self._select(rid), "danger",
                                          name=f"void-{r.receipt_no}", size_hint_x=0.3, role="body",
                                          disabled=r.voided)))
        return self.page(_("Sales history"), scroller(rows), [BigButton(_("Back"), s.cancel, "neutral", name="back")])

    def _select(self, rid):
        self.selected, self.reason, self.sup, self.sup_pin = rid, "", "", ""
        self.session.tell("")  # a notice about the list does not belong on the form
        self.app.refresh()

    def _void_panel(self):
        s = self.session
        row_ = next((r for r in s.history if r.redemption_id == self.selected), None)
        left = column(spacing=4)
        title = _("Void sale #{no} ({amount})?", no=row_.receipt_no, amount=rp(row_.total)) if row_ else _("Void a sale")
        left.add_widget(Text(_("Reason"), "body", color=MUTED))
        for code in ("wrong_items", "wrong_quantity", "buyer_cancelled", "cashier_mistake"):
            left.add_widget(BigButton(say(f"void.{code}", s.language), lambda c=code: self._reason(c),
                                      "ok" if code == self.reason else "neutral", name=f"reason-{code}", role="body"))
        body = BoxLayout(spacing=Theme.px(10))
        body.add_widget(left)
        body.add_widget(self.supervisor_box(self._submit, _("OK")))  # the title asks the question
        return self.page(title, body, [BigButton(_("Back"), self._unselect, "neutral", name="back")])

    def _reason(self, code):
        self.reason = code
        self.app.refresh()

    def _unselect(self):
        self.selected = ""
        self.session.tell("")
        self.app.refresh()

    def _submit(self, pin):
        if not self.reason:
            self.session.tell("void_needs_reason")
            self.app.refresh()
            return
        self.sup_pin = ""  # the form stays until the void is done (render): a wrong PIN is typed again
        self.session.void(self.selected, self.reason, self.sup, pin)


class EndOfDayView(View):
    """Today's count, to check and print before closing."""

    name = "end_of_day"

    def render(self):
        s = self.session
        rep = s.day_report
        body = column(spacing=2)
        if rep is None:
            body.add_widget(Text(_("Counting..."), "big"))
        else:
            for label, value in ((_("Sales"), str(rep.sales_count)),
                                 (_("Total given"), rp(rep.sales_total)),
                                 (_("Voided sales"), f"{rep.void_count} ({rp(rep.void_total)})"),
                                 (_("Without card (override)"), str(rep.overrides)),
                                 (_("Still to send to the city"), str(rep.queued_for_city)),
                                 (_("All messages not yet sent (status bar)"),
                                  str(self.app.status.queued) if self.app.status else "?")):
                figure = Text(value, "body", bold=True, halign="right", size_hint_x=0.25)
                body.add_widget(row(Text(label, "body", size_hint_x=0.75), figure, height=Theme.px(31)))
            figure.name = "queue-all"  # the last: the same count as the status bar's
            self._queue_all = figure
            for c in rep.cashiers:
                body.add_widget(Text(_("Cashier {id}: {n} sales, {amount}", id=c.name, n=c.count, amount=rp(c.total)),
                                     "body"))
        buttons = [BigButton(_("Back"), s.cancel, "neutral", name="back"),
                   BigButton(_("Print"), s.print_end_of_day, "primary", name="print-report",
                             disabled=rep is None or s.busy),
                   BigButton(_("Sign out"), s.sign_out, "danger", name="sign-out")]
        title = _("End of day") + (f"  {rep.day.strftime('%d-%m-%Y')}" if rep else "")
        return self.page(title, scroller(body), buttons)


    def status_read(self, status) -> None:
        """The unsent count follows the status bar's."""
        figure = getattr(self, "_queue_all", None)
        if figure is not None:
            figure.text = str(status.queued)


class FlagView(View):
    """Tell the city its data is wrong about a household."""

    name = "flag"

    def enter(self) -> None:
        hid = getattr(self.session, "flag_household", "")
        self.digits = hid[len(HOUSEHOLD_PREFIX):] if hid.startswith(HOUSEHOLD_PREFIX) else ""
        self.problem = ""
        self.note = ""
        self.writing = False

    def render(self):
        s = self.session
        if self.writing:
            return self._note_page()
        left = column(spacing=4)
        self.hid_label = Text(_("Household: {id}", id=HOUSEHOLD_PREFIX + (self.digits.zfill(7) if self.digits else "...")), "big", bold=True)
        left.add_widget(self.hid_label)
        left.add_widget(Text(_("What is wrong?"), "body", color=MUTED))
        grid = GridLayout(cols=2, spacing=Theme.px(4), size_hint_y=None, row_default_height=Theme.touch(),
                          row_force_default=True, height=Theme.touch() * 3 + Theme.px(8))
        for p in DATA_PROBLEMS:
            grid.add_widget(BigButton(_(p), lambda x=p: self._problem(x), "ok" if p == self.problem else "neutral",
                                      name=f"problem-{p}", role="body"))
        left.add_widget(grid)
        if self.note:
            left.add_widget(Text(_("Note: {note}", note=self.note), "body", shorten=True, max_lines=1))
        pad = KeyPad(self._typed, self._send, max_len=7, ok_text=_("Send"), erase_text=_("Erase"), prefix="flag")
        pad.value = self.digits
        body = BoxLayout(spacing=Theme.px(10))
        body.add_widget(left)
        body.add_widget(pad)
        return self.page(_("Report a data problem to the city"), body,
                         [BigButton(_("Cancel"), s.cancel, "neutral", name="cancel"),
                          BigButton(_("Write a note"), self._write, "primary", name="write-note")])

    def _note_page(self):
        self.note_label = Text(self._shown(self.note), "big", bold=True)
        keys = TextKeys(self._noted, self._note_done, value=self.note, max_len=NOTE_MAX, done_text=_("Done"),
                        erase_text=_("Erase"), space_text=_("space"))
        body = column(self.note_label, keys, spacing=4)
        return self.page(_("A note for the city (optional)"), body, notice="")

    @staticmethod
    def _shown(note: str) -> str:
        return (note or _("Type what the city should know, e.g. the new address.")) + " |"

    def _write(self):
        self.writing = True
        self.app.refresh()

    def _noted(self, value):
        self.note = value
        self.note_label.text = self._shown(value)

    def _note_done(self, value):
        self.note = value.strip()
        self.writing = False
        self.app.refresh()

    def _typed(self, value):
        self.digits = value
        self.hid_label.text = _("Household: {id}", id=HOUSEHOLD_PREFIX + (value.zfill(7) if value else "..."))

    def _problem(self, p):
        self.problem = p
        self.app.refresh()

    def _send(self, value):
        hid = HOUSEHOLD_PREFIX + value.zfill(7) if value else ""
        self.session.flag_problem(hid, self.problem, self.note)


class OverrideView(View, _SupervisorPad):
    """Serve without a card, with a supervisor's approval."""

    name = "override"

    def enter(self) -> None:
        self.digits = ""
        self.reason = ""
        self.step = 1
        self.sup = ""
        self.sup_pin = ""

    def render(self):
        s = self.session
        if self.step == 2:
            body = BoxLayout(spacing=Theme.px(10))
            left = column(spacing=4)
            left.add_widget(Text(_("Household: {id}", id=HOUSEHOLD_PREFIX + self.digits.zfill(7)), "big", bold=True))
            left.add_widget(Text(_("Reason: {reason}", reason=_(self.reason)), "big"))
            left.add_widget(Text(_("A supervisor approves. It is journaled and limited each month."), "body",
                                 color=MUTED))
            body.add_widget(left)
            body.add_widget(self.supervisor_box(self._submit, _("Approve")))
            return self.page(_("Serve without a card"), body,
                             [BigButton(_("Back"), self._back, "neutral", name="back")])
        left = column(spacing=4)
        self.hid_label = Text(_("Household: {id}", id=HOUSEHOLD_PREFIX + (self.digits.zfill(7) if self.digits else "...")), "big", bold=True)
        left.add_widget(self.hid_label)
        left.add_widget(Text(_("Why is there no card?"), "body", color=MUTED))
        for r in OVERRIDE_REASONS:
            left.add_widget(BigButton(_(r), lambda x=r: self._reason(x), "ok" if r == self.reason else "neutral",
                                      name=f"override-{r}", role="body"))
        pad = KeyPad(self._typed, self._next, max_len=7, ok_text=_("Next"), erase_text=_("Erase"), prefix="hh")
        pad.value = self.digits
        body = BoxLayout(spacing=Theme.px(10))
        body.add_widget(left)
        body.add_widget(pad)
        return self.page(_("Serve without a card"), body, [BigButton(_("Cancel"), s.cancel, "neutral", name="cancel")])

    def _typed(self, value):
        self.digits = value
        self.hid_label.text = _("Household: {id}", id=HOUSEHOLD_PREFIX + (value.zfill(7) if value else "..."))

    def _reason(self, r):
        self.reason = r
        self.app.refresh()

    def _next(self, value):
        if not value or not self.reason:
            self.session.tell("type_household_and_reason")
            self.app.refresh()
            return
        self.step = 2
        self.app.refresh()

    def _back(self):
        self.step = 1
        self.app.refresh()

    def _submit(self, pin):
        self.session.start_override(HOUSEHOLD_PREFIX + self.digits.zfill(7), self.reason, self.sup, pin)


class TechnicianView(View):
    """Device facts and reader and printer tests, for the technician on site."""

    name = "technician"

    def render(self):
        s = self.session
        info = self.app.device_info()
        body = column(spacing=2)
        for label, value in info:
            body.add_widget(row(Text(label, "body", color=MUTED, size_hint_x=0.4),
                                Text(value, "body", bold=True, size_hint_x=0.6, shorten=True), height=Theme.px(30)))
        for key, value in getattr(s, "tech_results", {}).items():
            result = ", ".join(_(part) for part in value)
            body.add_widget(Text(_("Test {what}: {result}", what=_(key), result=result), "body", color=PRIMARY, bold=True))
        buttons = [BigButton(_("Test reader"), s.test_reader, "primary", name="test-reader"),
                   BigButton(_("Test printer"), s.test_printer, "primary", name="test-printer"),
                   BigButton("English" if s.language == "id" else "Bahasa Indonesia", self.app.toggle_language,
                             "neutral", name="language"),
                   BigButton(_("Back"), s.close_technician, "neutral", name="back")]
        return self.page(_("Technician"), scroller(body), buttons)


VIEWS = [SignInView, IdleView, VerifyingView, HouseholdView, PinView, BasketView, ConfirmView, CommittingView,
         DoneView, ErrorView, HistoryView, EndOfDayView, FlagView, OverrideView, TechnicianView]
STATE_VIEW = {State(v.name if v.name != "signin" else "signed_out"): v for v in VIEWS}
