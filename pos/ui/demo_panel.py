"""The field tester's panel beside the counter screen in demo mode: the virtual card deck
(insert, pull, a card that stops answering), the reader cable, the printer's state, and the
receipts the demo printer printed.

The deck buttons drive `parts.deck_control`: a PcscDeck (virtual card processes on pcscd + vpcd;
it does its process work on its own thread and returns at once) or the in-process FakeReader.
A line under the title says which, and why the demo fell back to the in-process deck."""

from __future__ import annotations

from kivy.clock import Clock
from kivy.uix.gridlayout import GridLayout
from kivy.uix.label import Label
from kivy.uix.modalview import ModalView
from kivy.uix.scrollview import ScrollView
from kivy.uix.widget import Widget

from hardware.card.deck import NO_CARD_NOTE, deck_note, fallback_note
from pos.end_of_day import EndOfDayReport
from pos.receipt_text import render_text, report_text
from pos.ui.boot import demo_panel_width
from pos.ui.i18n import _
from pos.ui.widgets import BigButton, Text, Theme, column, paint, row

PANEL_BG = (0.16, 0.18, 0.22, 1)


class DemoPanel(GridLayout):
    """The field tester's hands on the devices, beside the counter screen, so a whole visit with
    its faults can be played without hardware."""

    def __init__(self, app, **kw):
        super().__init__(cols=1, size_hint_x=None, width=demo_panel_width(app.size[1]), spacing=Theme.px(3),
                         padding=Theme.px(5), **kw)
        paint(self, PANEL_BG)
        self.app = app
        self._card_note = False  # the note is about the card in the reader: it goes when the card does
        printer = app.parts.printer
        self.deck = deck_control = app.parts.deck_control or app.parts.reader
        self.add_widget(Text(_("Field tester panel (DEMO)"), "body", color=(1, 0.85, 0.3, 1), bold=True,
                             size_hint_y=None))
        # a fixed box (four lines: the longest deck note), there even when empty: a note coming or
        # going moves no button
        self.note = Label(text="", font_size=Theme.px(11), color=(1, 1, 1, 1), halign="left", valign="top",
                          size_hint_y=None, height=Theme.px(11) * 1.25 * 4, max_lines=4)
        self.note.name = "deck-note"
        self.note.bind(width=lambda w, v: setattr(w, "text_size", (v, w.height)))
        self.add_widget(self.note)
        if app.parts.deck_fallback is not None:
            self.show_note(fallback_note(app.parts.deck_fallback, _), warning=True)
        elif hasattr(deck_control, "reader_name"):
            self.show_note(_("Cards go through pcscd + vpcd ({reader}).", reader=deck_control.reader_name))
        if hasattr(deck_control, "on_note"):
            deck_control.on_note(
                lambda note: Clock.schedule_once(lambda _dt: self.show_note(deck_note(note, _), warning=True), 0))
        if hasattr(deck_control, "close"):
            app.bind(on_stop=lambda *_a: deck_control.close())
        self.add_widget(Text(_("Virtual SSN cards (PIN 1234):"), "small", color=(1, 1, 1, 1), size_hint_y=None))
        deck = GridLayout(cols=2, spacing=Theme.px(3), size_hint_y=None, row_default_height=Theme.px(40),
                          row_force_default=True)
        deck.bind(minimum_height=deck.setter("height"))
        for i, card in enumerate(app.parts.deck):
            deck.add_widget(BigButton(card.label, lambda c=card: deck_control.insert(c), "primary", name=f"deck-{i}",
                                      role="small", height=Theme.px(40)))
        self.add_widget(deck)
        self.add_widget(row(*[BigButton(label, action, kind, name=name, role="small", height=Theme.px(40))
                              for label, action, kind, name in (
                                  (_("Pull card"), self._pull, "danger", "deck-pull"),
                                  (_("Card stops answering"), self._stop_answering, "warn", "deck-stuck"),
                                  (_("Reader cable"), self._toggle_reader, "neutral", "deck-reader"))],
                            height=Theme.px(40), spacing=3))
        self.add_widget(row(*[BigButton(_(label), lambda f=fault: self._printer(f), "neutral", name=f"printer-{fault or 'ok'}",
                                        role="small", height=Theme.px(40))
                              for fault, label in (("", "Printer OK"), ("paper_out", "paper_out"), ("offline", "offline"))],
                            height=Theme.px(40)))
        self.receipt = Label(text=_("(no receipt printed yet)"), font_name="RobotoMono-Regular",
                             font_size=Theme.px(11.5), color=(0.05, 0.05, 0.05, 1), halign="left", valign="top",
                             size_hint_y=None)
        self.receipt.bind(texture_size=lambda w, s: setattr(w, "height", s[1]),
                          width=lambda w, v: setattr(w, "text_size", (v, None)))
        self.paper = paper = column(padding=4)
        paint(paper, (1, 1, 0.97, 1))
        paper.add_widget(self.receipt)  # scrolls once there is a receipt to scroll (_show)
        paper.add_widget(Widget())  # keeps the placeholder line at the top of the paper
        paper.size_hint_y = 1  # what the rows above leave: never past the window's bottom edge
        self.add_widget(paper)
        paper.bind(on_touch_up=self._touched_paper)
        self.full: ModalView | None = None
        if hasattr(printer, "on_print"):
            printer.on_print(lambda receipt: Clock.schedule_once(lambda _dt: self._show(receipt), 0))

    def _touched_paper(self, paper, touch) -> bool:
        """A touch on the paper shows the whole printout at the window's height: the box beside the
        deck shows a few lines, too few to read a receipt by scrolling."""
        if not paper.collide_point(*touch.pos) or touch.is_mouse_scrolling or "\n" not in self.receipt.text:
            return False
        self.full = view = ModalView(size_hint=(None, 1), width=self.width * 1.15, background_color=(0, 0, 0, 0.4))
        view.name = "receipt-full"
        text = Label(text=self.receipt.text, font_name="RobotoMono-Regular", font_size=Theme.px(12),
                     color=(0.05, 0.05, 0.05, 1), halign="left", valign="top", size_hint_y=None)
        text.bind(texture_size=lambda w, s: setattr(w, "height", s[1]),
                  width=lambda w, v: setattr(w, "text_size", (v, None)))
        sheet = ScrollView(do_scroll_x=False, scroll_wheel_distance=Theme.px(60))
        paint(sheet, (1, 1, 0.97, 1))
        sheet.add_widget(text)
        view.add_widget(sheet)
        view.bind(on_touch_up=lambda v, t: not t.is_mouse_scrolling and v.dismiss(animation=False))  # a tap closes it
        view.bind(on_dismiss=lambda *_a: setattr(self, "full", None))
        view.open(animation=False)
        return True

    def show_note(self, text: str, warning: bool = False) -> None:
        """One line under the title: which deck runs, or what went wrong with it and how to fix it."""
        self.note.text = text
        self.note.color = (1, 0.6, 0.4, 1) if warning else (0.7, 0.95, 0.75, 1)

    def _pull(self):
        """Pull the card; a note about the card that was in goes with it (a note about the deck stays)."""
        if self._card_note:
            self.note.text, self._card_note = "", False
        self.deck.pull()

    def _toggle_reader(self):
        reader = self.deck
        if reader.connected:
            reader.unplug()
        else:
            reader.plug()

    def _stop_answering(self):
        """The inserted card hangs, so the counter shows its card-not-answering screen at the card's next
        command. The in-process deck answers at once; a PcscDeck notes it on its worker if no card is in."""
        self._card_note = True
        if self.deck.stop_answering() is False:
            self.show_note(_(NO_CARD_NOTE), warning=True)
        else:  # the screen changes only at the card's next command: say so, or the button looks dead
            self.show_note(_("The card answers nothing more until it is pulled out. The counter shows it at the "
                             "card's next command (e.g. the PIN check; through pcscd after the reader's 5 s wait)."))

    def _printer(self, fault: str):
        self.app.parts.printer.fault = fault

    def _show(self, receipt):
        if not isinstance(self.receipt.parent, ScrollView):
            # made at the first receipt, not at start-up: an idle ScrollView costs ~0.35 MB (bench_ui, A/B)
            self.paper.clear_widgets()
            # a wheel click moves a few lines, not one: a receipt is read in a few clicks
            scroller = ScrollView(do_scroll_x=False, scroll_wheel_distance=Theme.px(60))
            scroller.add_widget(self.receipt)
            self.paper.add_widget(scroller)
        if isinstance(receipt, EndOfDayReport):
            self.receipt.text = "\n".join(report_text(receipt, self.app.session.language, 32))
        else:
            self.receipt.text = "\n".join(render_text(receipt, 32))
