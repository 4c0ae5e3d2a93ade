"""A household's visit, where to start reading: idle -> verifying -> household -> PIN -> basket
-> confirm -> committing -> done (or the error that stops it).

One view per state of pos/session/visit.py, in the order the household meets them; each renders the
session and turns touches into its calls (the limits, PIN tries and refusals are the session's).
"""

from __future__ import annotations

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout

from pos.ui.i18n import _
from pos.ui.screens.base import View, notice_of, rp, scroller
from pos.ui.widgets import (
    DANGER,
    MUTED,
    OK,
    PANEL,
    PRIMARY,
    WARN,
    BigButton,
    KeyPad,
    Text,
    Theme,
    column,
    paint,
    row,
)
from pos.wording import fault_message

CONFIRM_ONE_COLUMN = 4  # more basket lines than this go in two columns, so all stay in view


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
        name = s.collector_name
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
        if err.offers_report:  # the session's rule: the household's data, not a wrong card
            buttons.append(BigButton(_("Report data"), lambda: s.open_flag(err.household), "neutral", name="flag"))
        title = _("Cannot serve") if err.reason else _("Device problem")
        return self.page(title, body, buttons, title_color=DANGER)
