"""The staff's own screens: sign-in, the sales history (reprint, void), end of day, a data
problem for the city, serving without a card, and the technician's page.

Sign-in is here, not with the visit: it says which cashier and shift the sales are for, before
any household comes (pos/session/sign_in.py, a staff flow like the others). Void and override
share the supervisor's choice and PIN pad (`_SupervisorPad`).
"""

from __future__ import annotations

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout

from pos.clock import parse_iso
from pos.household_ids import HOUSEHOLD_DIGITS
from pos.period import WITA
from pos.redemption import DATA_PROBLEM_NOTE_MAX, DATA_PROBLEMS
from pos.session import DEFAULT_SHIFT, OVERRIDE_REASONS, SHIFTS, VOID_REASONS
from pos.staff_roles import APPROVERS, AT_COUNTER
from pos.ui.i18n import _
from pos.ui.keyboard import TextKeys
from pos.ui.screens.base import View, notice_of, rp, scroller
from pos.ui.widgets import (
    MUTED,
    PRIMARY,
    BigButton,
    KeyPad,
    Text,
    Theme,
    column,
    row,
)
from pos.wording import say

NOTE_MAX = min(200, DATA_PROBLEM_NOTE_MAX)  # what the note page lets a cashier type; never past the city's


def household_label(session, digits: str) -> str:
    """The household line over the keypad: the whole id as the core writes it, "..." until typed."""
    return _("Household: {id}", id=session.household_id(digits) or session.household_prefix + "...")


class SignInView(View):
    """Who is at the counter, and for which shift: every sale names its cashier."""

    name = "signin"

    def enter(self) -> None:
        self.cashier = ""
        self.shift = DEFAULT_SHIFT
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
        at_counter = [(cid, name) for cid, name, role in self.app.cashier_list if role in AT_COUNTER]
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


class _SupervisorPad:
    """Supervisor choice + PIN pad, shared by void and override."""

    def supervisor_box(self, on_ok, ok_text: str):
        box = column(spacing=4)
        sups = [(cid, name) for cid, name, role in self.app.cashier_list if role in APPROVERS]
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


class _HouseholdPad:
    """A household's number typed on a keypad, its whole id shown above as it grows; shared by the
    data report and the card-less sale (both keep what is typed in `self.digits`)."""

    def household_line(self):
        """The line over the keypad that shows the id being typed."""
        self.hid_label = Text(household_label(self.session, self.digits), "big", bold=True)
        return self.hid_label

    def household_pad(self, on_ok, ok_text: str, prefix: str):
        """The number keypad, holding what was typed so far."""
        pad = KeyPad(self._typed, on_ok, max_len=HOUSEHOLD_DIGITS, ok_text=ok_text, erase_text=_("Erase"), prefix=prefix)
        pad.value = self.digits
        return pad

    def _typed(self, value):
        self.digits = value
        self.hid_label.text = household_label(self.session, value)


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
        for code in VOID_REASONS:
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


class FlagView(View, _HouseholdPad):
    """Tell the city its data is wrong about a household."""

    name = "flag"

    def enter(self) -> None:
        self.digits = self.session.household_number(self.session.flag_household)
        self.problem = ""
        self.note = ""
        self.writing = False

    def render(self):
        s = self.session
        if self.writing:
            return self._note_page()
        left = column(spacing=4)
        left.add_widget(self.household_line())
        left.add_widget(Text(_("What is wrong?"), "body", color=MUTED))
        grid = GridLayout(cols=2, spacing=Theme.px(4), size_hint_y=None, row_default_height=Theme.touch(),
                          row_force_default=True, height=Theme.touch() * 3 + Theme.px(8))
        for p in DATA_PROBLEMS:
            grid.add_widget(BigButton(_(p), lambda x=p: self._problem(x), "ok" if p == self.problem else "neutral",
                                      name=f"problem-{p}", role="body"))
        left.add_widget(grid)
        if self.note:
            left.add_widget(Text(_("Note: {note}", note=self.note), "body", shorten=True, max_lines=1))
        pad = self.household_pad(self._send, _("Send"), "flag")
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

    def _problem(self, p):
        self.problem = p
        self.app.refresh()

    def _send(self, value):
        self.session.flag_problem(self.session.household_id(value), self.problem, self.note)


class OverrideView(View, _SupervisorPad, _HouseholdPad):
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
            left.add_widget(Text(household_label(self.session, self.digits), "big", bold=True))
            left.add_widget(Text(_("Reason: {reason}", reason=_(self.reason)), "big"))
            left.add_widget(Text(_("A supervisor approves. It is journaled and limited each month."), "body",
                                 color=MUTED))
            body.add_widget(left)
            body.add_widget(self.supervisor_box(self._submit, _("Approve")))
            return self.page(_("Serve without a card"), body,
                             [BigButton(_("Back"), self._back, "neutral", name="back")])
        left = column(spacing=4)
        left.add_widget(self.household_line())
        left.add_widget(Text(_("Why is there no card?"), "body", color=MUTED))
        for r in OVERRIDE_REASONS:
            left.add_widget(BigButton(_(r), lambda x=r: self._reason(x), "ok" if r == self.reason else "neutral",
                                      name=f"override-{r}", role="body"))
        pad = self.household_pad(self._next, _("Next"), "hh")
        body = BoxLayout(spacing=Theme.px(10))
        body.add_widget(left)
        body.add_widget(pad)
        return self.page(_("Serve without a card"), body, [BigButton(_("Cancel"), s.cancel, "neutral", name="cancel")])

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
        self.session.start_override(self.session.household_id(self.digits), self.reason, self.sup, pin)


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
        for key, value in s.tech_results.items():
            result = ", ".join(_(part) for part in value)
            body.add_widget(Text(_("Test {what}: {result}", what=_(key), result=result), "body", color=PRIMARY, bold=True))
        buttons = [BigButton(_("Test reader"), s.test_reader, "primary", name="test-reader"),
                   BigButton(_("Test printer"), s.test_printer, "primary", name="test-printer"),
                   BigButton("English" if s.language == "id" else "Bahasa Indonesia", self.app.toggle_language,
                             "neutral", name="language"),
                   BigButton(_("Back"), s.close_technician, "neutral", name="back")]
        return self.page(_("Technician"), scroller(body), buttons)
