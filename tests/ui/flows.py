"""Whole counter flows, driven through the real widgets (see tests/ui/driver.py).

Kivy is imported lazily so the pytest process can list the flows without starting Kivy.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

DEBUG = bool(os.environ.get("DRIVER_DEBUG"))


class Driver:
    def __init__(self, app, parts, gate, out: Path, suffix: str) -> None:
        self.app, self.parts, self.gate, self.out, self.suffix = app, parts, gate, out, suffix
        self._gen = None
        self._frames = 0
        self._nowait = False
        self._waited = 0
        self.shots: list[str] = []

    # -- scheduling: each `yield` waits for the worker's results and two drawn frames --------

    def start(self, gen) -> None:
        from kivy.clock import Clock

        self._gen = gen
        Clock.schedule_interval(self._tick, 0)

    def _tick(self, _dt):
        if self.app.runner.pending and not self._nowait:
            self._frames = 0
            self._waited += 1
            if self._waited % 120 == 0:
                print(f"driver: waiting for {self.app.runner.pending} jobs on {self.app.screen_name}", file=sys.__stderr__)
            return
        self._waited = 0
        self._frames += 1
        if self._frames < 3:
            return
        self._frames = 0
        try:
            self._nowait = next(self._gen) == "nowait"
        except StopIteration:
            return False

    # -- what the screen shows -----------------------------------------------------------------

    def widgets(self):
        stack = [self.app.root]
        while stack:
            w = stack.pop()
            yield w
            stack.extend(w.children)

    def find(self, name: str):
        found = [w for w in self.widgets() if getattr(w, "name", None) == name]
        if not found:
            raise AssertionError(f"no widget named {name!r} on screen {self.app.screen_name}; "
                                 f"names: {sorted(n for w in self.widgets() if (n := getattr(w, 'name', '')))}")
        return found[0]

    def texts(self) -> str:
        from kivy.uix.label import Label

        return "\n".join(w.text for w in self.widgets() if isinstance(w, Label) and w.text)

    def see(self, *fragments: str) -> None:
        shown = self.texts()
        for f in fragments:
            assert f in shown, f"{f!r} not on screen {self.app.screen_name}:\n{shown}"

    def not_see(self, fragment: str) -> None:
        assert fragment not in self.texts(), f"{fragment!r} unexpectedly on screen {self.app.screen_name}"

    def on(self, screen: str) -> None:
        assert self.app.screen_name == screen, f"expected screen {screen}, got {self.app.screen_name}: {self.texts()[:400]}"

    def fits(self, *names: str) -> None:
        """Each widget lies inside the window and its text inside the widget (nothing cut off)."""
        from kivy.core.window import Window

        for name in names:
            w = self.find(name)
            (x0, y0), (x1, y1) = w.to_window(w.x, w.y), w.to_window(w.right, w.top)
            assert min(x0, y0) >= 0 and x1 <= Window.width and y1 <= Window.height, \
                f"{name!r} at {x0:.0f},{y0:.0f}-{x1:.0f},{y1:.0f} is outside the {Window.width}x{Window.height} window"
            tw, th = w.texture_size
            assert tw <= w.width and th <= w.height, f"{name!r}: text {tw}x{th} overflows its {w.width}x{w.height} box"

    # -- actions --------------------------------------------------------------------------------

    def tap(self, name: str, wait: bool = True):
        from kivy.tests.common import UnitTestTouch
        from kivy.uix.scrollview import ScrollView

        w = self.find(name)
        assert not w.disabled, f"button {name!r} is disabled"
        sv, hops = w.parent, 0
        while sv is not None and not isinstance(sv, ScrollView) and hops < 40:
            sv, hops = sv.parent, hops + 1
        if not isinstance(sv, ScrollView):
            sv = None
        if sv is not None:  # scroll it into view first, as a cashier would
            sv.scroll_to(w, padding=10, animate=False)
            yield "nowait"
            yield "nowait"
        x, y = w.to_window(w.center_x, w.center_y)
        if DEBUG:
            print(f"driver: tap {name} at {x:.0f},{y:.0f} on {self.app.screen_name}", file=sys.__stderr__, flush=True)
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        touch.touch_up()
        yield None if wait else "nowait"

    def taps(self, *names: str):
        for n in names:
            yield from self.tap(n)

    def type_pin(self, prefix: str, pin: str, ok: bool = True):
        for d in pin:
            yield from self.tap(f"{prefix}-{d}")
        if ok:
            yield from self.tap(f"{prefix}-ok")

    def wait(self):
        yield

    def shot(self, name: str, wait: bool = True):
        yield None if wait else "nowait"
        path = self.out / f"{name}{self.suffix}.png"
        self.app.screenshot(path)
        self.shots.append(path.name)
        yield None if wait else "nowait"

    def recover(self):
        """After a failed flow: pull the card and get back to idle."""
        s = self.app.session
        self.gate.event.set()
        self.parts.printer.fault = ""
        if not self.parts.reader.connected:
            self.parts.reader.plug()
        self.parts.reader.pull()
        yield
        for action in ("cancel", "acknowledge", "finish", "close_technician"):
            if s.state.value in ("idle", "signed_out"):
                break
            getattr(s, action)()
            yield


def deck_index(parts, label_start: str) -> str:
    for i, c in enumerate(parts.deck):
        if c.label.startswith(label_start):
            return f"deck-{i}"
    raise AssertionError(label_start)


# -- flows --------------------------------------------------------------------------------------


def flow_sign_in(d: Driver):
    d.on("signin")
    d.see("Masuk kasir", "Rina Kasir")
    yield from d.shot("01-signin")
    from pos.ui.widgets import KINDS

    screen = d.app.content.children[0]
    buttons = {w.name: w for w in screen.walk() if getattr(w, "name", "")}
    yield from d.tap("cashier-kasir1")
    yield from d.tap("shift-siang")
    assert d.app.content.children[0] is screen, "picking a name or a shift rebuilt the sign-in screen"
    assert [tuple(buttons[n].background_color) for n in ("cashier-kasir1", "cashier-kasir2", "shift-siang", "shift-pagi")] \
        == [KINDS["ok"], KINDS["neutral"], KINDS["ok"], KINDS["neutral"]]
    del screen, buttons
    yield from d.type_pin("signin", "0000")
    d.on("signin")
    d.see("PIN kasir salah")
    yield from d.type_pin("signin", "0000")  # the same notice again: the screen stays, the pad starts empty
    d.on("signin")
    d.see("PIN kasir salah")
    d.not_see("*")
    yield from d.tap("cashier-kasir1")
    yield from d.tap("shift-pagi")
    import gc
    import weakref

    # the view held its pad, and the pad every key: once the screen is gone, so must they be
    left_behind = weakref.ref(next(w for w in d.app.root.walk() if getattr(w, "name", "") == "signin-5"))
    events = _record_collects_and_trims(d.app)
    yield from d.type_pin("signin", "1234")
    d.on("idle")
    d.see("Masukkan kartu SSN", "Rina Kasir")
    gc.collect()
    assert left_behind() is None, "the sign-in screen is still alive behind the idle screen (View.release)"
    _no_view_off_screen_holds_widgets(d.app)
    for _ in range(20):  # the replaced screen's collection runs 0.05 s after the change; then a frame; then the trim
        if _trimmed_after_frame(events):
            break
        yield
    events.stop()
    assert _trimmed_after_frame(events), f"no trim after the frame that follows the last collection: {events}"
    yield from d.shot("02-idle")


def _no_view_off_screen_holds_widgets(app) -> None:
    from pos.ui.screens.base import _holds_widgets

    for view in set(app.views.values()) - {app.view}:
        held = [attr for attr, value in vars(view).items() if _holds_widgets(value)]
        assert not held, f"{type(view).__name__} is off screen but holds widgets in {held}"


class _Events(list):
    stop = None


def _record_collects_and_trims(app) -> _Events:
    """What the app does to give a replaced screen's memory back: its collection (`_collect`), each
    malloc trim, and each frame flipped to the display, in order."""
    from kivy.core.window import Window

    import pos.ui.app as app_module

    events = _Events()
    real_collect, real_trim = app._collect, app_module.trim_freed_memory

    def collect():
        events.append("collect")
        real_collect()

    def flip(*_a):
        events.append("flip")

    app._collect = collect
    app_module.trim_freed_memory = lambda: (events.append("trim"), real_trim())
    Window.bind(on_flip=flip)

    def stop():
        app._collect = real_collect
        app_module.trim_freed_memory = real_trim
        Window.unbind(on_flip=flip)

    events.stop = stop
    return events


def _trimmed_after_frame(events: list[str]) -> bool:
    """The GL driver's share of a replaced screen is freed at the frame after the collection: a trim
    must follow that frame, not only the collection itself."""
    if "collect" not in events:
        return False
    after = events[len(events) - 1 - events[::-1].index("collect"):]
    return "flip" in after and "trim" in after[after.index("flip"):]


def flow_holder_sale(d: Driver):
    d.gate.event.clear()
    yield from d.tap(deck_index(d.parts, "Pemegang"), wait=False)
    yield "nowait"
    d.on("verifying")
    d.see("Memeriksa kartu")
    yield from d.shot("03-verifying", wait=False)
    d.gate.event.set()
    yield
    d.on("household")
    d.see("Sisa bantuan", "Rp 200.000", "Siapa yang mengambil")
    assert d.find("collector-holder").kind != "ok", "green means picked (sign-in): the holder's button is not"
    yield from d.shot("04-household")
    yield from d.tap("collector-holder")
    d.on("pin")
    d.see("Sisa percobaan: 3")
    yield from d.type_pin("pin", "12", ok=False)
    yield from d.shot("05-pin")
    yield from d.type_pin("pin", "34")
    d.on("basket")
    yield from d.taps("plus-BERAS5", "plus-TELUR10", "plus-TELUR10", "minus-TELUR10")
    d.see("Keranjang: Rp 99.500", "Sisa setelah: Rp 100.500")
    yield from d.shot("06-basket")
    yield from d.tap("to-confirm")
    d.on("confirm")
    d.see("1 x Beras medium 5 kg", "Rp 99.500", "tidak dapat ditukar")
    yield from d.shot("07-confirm")
    yield from d.tap("confirm")
    d.on("done")
    d.see("Rp 100.500", "Ambil kartu Anda")
    assert len(d.parts.printer.printed) == 1, d.parts.printer.printed
    d.see("TIDAK DAPAT")  # the receipt in the field tester's panel
    yield from d.shot("08-done")
    yield from _read_whole_receipt(d)
    yield from d.tap("deck-pull")
    d.on("idle")


def _read_whole_receipt(d: Driver):
    """A touch on the panel's paper shows the whole receipt at the window's height; a touch closes it."""
    from kivy.tests.common import UnitTestTouch

    panel = d.app.demo_panel
    touch = UnitTestTouch(*panel.paper.to_window(panel.paper.center_x, panel.paper.center_y))
    touch.touch_down()
    touch.touch_up()
    yield
    full = panel.full
    assert full is not None, "touching the receipt did not open it"
    sheet = full.children[0]
    lines = panel.receipt.text.count("\n") + 1
    assert sheet.height >= 0.9 * d.app.size[1] and sheet.children[0].height <= sheet.height * 1.35, \
        f"the receipt ({lines} lines) is not readable in one look"
    yield from d.shot("08b-receipt-full")
    touch = UnitTestTouch(*full.center)
    touch.touch_down()
    touch.touch_up()
    yield
    assert panel.full is None, "a touch did not close the receipt"


def flow_wrong_pin(d: Driver):
    yield from d.tap(deck_index(d.parts, "Pemegang"))
    yield from d.tap("collector-holder")
    yield from d.type_pin("pin", "9999")
    d.on("pin")
    d.see("PIN salah", "Sisa percobaan: 2")
    yield from d.shot("09-pin-wrong")
    yield from d.type_pin("pin", "1234")
    d.on("basket")
    yield from d.tap("deck-pull")
    d.on("idle")
    d.see("Kartu dicabut")


def flow_representative(d: Driver):
    yield from d.tap(deck_index(d.parts, "Dengan wakil"))
    d.on("household")
    d.see("Wakil:")
    rep = [w for w in d.widgets() if getattr(w, "name", "").startswith("collector-") and w.name != "collector-holder"]
    assert rep, "no representative button"
    name = rep[0].text.split(": ", 1)[1].rsplit(" (", 1)[0]  # "Wakil: <name> (<relation>)"
    yield from d.tap(rep[0].name)
    yield from d.type_pin("pin", "1234")
    yield from d.tap("plus-MINYAK1")
    yield from d.tap("to-confirm")
    d.see(f"Diambil oleh: {name}")  # the representative, not the card holder
    yield from d.tap("confirm")
    d.on("done")
    yield from d.tap("deck-pull")


def flow_quota_and_pull(d: Driver):
    yield from d.tap(deck_index(d.parts, "Jatah"))
    yield from d.tap("collector-holder")
    yield from d.type_pin("pin", "1234")
    yield from d.taps("plus-BERAS5", "plus-BERAS5")
    d.see("sisa jatah 0")
    assert d.find("plus-BERAS5").disabled, "the + of a used-up quota must be disabled"
    yield from d.shot("10-basket-quota")
    yield from d.tap("deck-pull")
    d.on("idle")
    d.see("Kartu dicabut", "keranjang dikosongkan")
    yield from d.shot("11-idle-card-pulled")
    assert d.app.session.basket == {}


def flow_refusals(d: Driver):
    for label, shot, text in (("Bantuan habis", "12-error-used-up", "sudah habis"),
                              ("Kartu palsu", "13-error-forged", "Kartu tidak sah"),
                              ("Kartu diblokir", "14-error-hotlist", "diblokir"),
                              ("Keluarga dicabut", "15-error-household-revoked", "tidak lagi terdaftar")):
        yield from d.tap(deck_index(d.parts, label))
        d.on("error")
        d.see(text, "Tidak bisa dilayani")
        names = {getattr(w, "name", "") for w in d.widgets()}
        if label in ("Kartu palsu", "Kartu diblokir"):  # reported automatically: no form to fill in
            assert "flag" not in names, f"{label}: a report form the city does not need"
            d.see("Dinas sudah diberi tahu otomatis")
        yield from d.shot(shot)
        yield from d.tap("acknowledge")
        d.on("idle")
        yield from d.tap("deck-pull")


def flow_printer_fault(d: Driver):
    from tests.ui.touch_checks import fits

    yield from d.tap("printer-paper_out")
    d.app.poll_status()  # the app's 3 s poll, now: the idle printer is asked too
    yield
    while d.app.printer_runner.pending:
        yield
    d.see("Printer: Kertas habis")  # before any sale tried to print
    yield from d.tap(deck_index(d.parts, "Pemegang"))
    yield from d.tap("collector-holder")
    yield from d.type_pin("pin", "1234")
    yield from d.tap("plus-GULA1")
    yield from d.tap("to-confirm")
    yield from d.tap("confirm")
    d.on("done")
    d.see("Struk tidak tercetak", "Kertas printer habis", "Printer: Kertas habis")
    fits(d, "done, paper out")  # "Printer: Kertas habis" on one line
    yield from d.shot("16-done-printer-fault")
    n = len(d.parts.printer.printed)
    yield from d.tap("printer-ok")
    yield from d.tap("reprint")
    assert len(d.parts.printer.printed) == n + 1
    d.see("Struk tercetak")
    yield from d.tap("deck-pull")
    d.on("idle")


def flow_history_void(d: Driver):
    yield from d.tap("history")
    d.on("history")
    first = d.app.session.history[-1].receipt_no  # the first sale of this flow's day
    d.see("Riwayat penjualan", f"#{first}")
    yield from d.shot("17-history")
    yield from d.tap(f"reprint-{first}")
    assert d.parts.printer.printed[-1][1].copy
    d.see("Struk tercetak")
    yield from d.tap(f"void-{first}")
    d.not_see("Struk tercetak")  # the list's notice does not follow onto the form
    yield from d.tap("reason-buyer_cancelled")
    yield from d.tap("supervisor-spv1")
    yield from d.type_pin("spv", "0000")  # a wrong supervisor PIN: the form stays as it was
    d.see("PIN penyelia salah", f"Batalkan penjualan struk no. {first}")
    d.not_see("PIN kasir")
    assert d.find("reason-buyer_cancelled").kind == "ok" and d.find("supervisor-spv1").kind == "ok"
    yield from d.type_pin("spv", "9999", ok=False)
    yield from d.shot("18-void")
    yield from d.tap("spv-ok")
    d.on("history")
    d.see("DIBATALKAN", f"Struk no. {first} dibatalkan", "Dinas memutuskan penggantiannya")
    slip = d.parts.printer.printed[-1][1]
    assert slip.kind == "void" and slip.void_reason_text == "Penerima batal"
    d.see("Penerima batal", "Penyelia")  # the slip in the field tester's panel
    yield from d.shot("18b-voided")
    yield from d.tap("back")
    d.on("idle")


def flow_end_of_day(d: Driver):
    yield from d.tap("end-of-day")
    d.on("end_of_day")
    d.see("Tutup hari", "Penjualan", "Penjualan dibatalkan")
    unsent = d.find("queue-all").text
    assert f": {unsent}" in d.app.status_bar.labels["queue"].text, "the status bar counts another thing"
    yield from d.shot("19-end-of-day")
    before = len(d.parts.printer.reports)
    yield from d.tap("print-report")
    d.see("Laporan tutup hari sudah dicetak.", "LAPORAN TUTUP HARI")  # on screen, and in the tester's panel
    assert len(d.parts.printer.reports) == before + 1
    from tests.ui.touch_checks import fits

    fits(d, "end of day, printed")  # the per-cashier lines are not cut off by the notice
    yield from d.tap("back")


def flow_flag(d: Driver):
    from pos.db import OutboxMessage
    from pos.signing import b64url_decode

    before = OutboxMessage.select().where(OutboxMessage.kind == "event").count()
    yield from d.tap("flag")
    d.on("flag")
    yield from d.type_pin("flag", "3", ok=False)
    yield from d.tap("problem-moved")
    d.see("SSN-6472-0000003")
    yield from d.shot("20-flag")
    yield from d.tap("write-note")
    d.see("Catatan untuk Dinas")
    for key in ("kb-p", "kb-i", "kb-n", "kb-d", "kb-a", "kb-h", "kb-space", "kb-r", "kb-t", "kb-space", "kb-3",
                "kb-x", "kb-erase"):
        yield from d.tap(key)
    d.see("Pindah rt 3 |")
    yield from d.shot("20b-flag-note")
    yield from d.tap("kb-done")
    d.see("Catatan: Pindah rt 3")
    yield from d.tap("flag-ok")
    d.on("idle")
    d.see("Dilaporkan ke Dinas")
    events = OutboxMessage.select().where(OutboxMessage.kind == "event").order_by(OutboxMessage.seq)
    assert events.count() == before + 1
    token = bytes(events[-1].payload).decode()
    assert json.loads(b64url_decode(token.split(".")[1]))["body"]["note"] == "Pindah rt 3"


def flow_override(d: Driver):
    yield from d.tap("override")
    d.on("override")
    yield from d.type_pin("hh", "1", ok=False)
    yield from d.tap("override-card_damaged")
    yield from d.shot("21-override")
    yield from d.tap("hh-ok")
    yield from d.tap("supervisor-spv1")
    yield from d.type_pin("spv", "9999")
    d.on("household")
    d.see("TANPA KARTU")
    yield from d.shot("22-override-household")
    yield from d.tap("collector-holder")
    d.on("basket")
    yield from d.tap("plus-TAHU")
    yield from d.tap("to-confirm")
    yield from d.tap("confirm")
    d.on("done")
    yield from d.tap("finish")
    d.on("idle")


def flow_reader_unplugged(d: Driver):
    yield from d.tap("deck-reader")
    d.on("error")
    d.see("Pembaca kartu tidak terhubung", "Pembaca: TIDAK ADA")
    yield from d.shot("23-error-reader")
    yield from d.tap("deck-reader")
    d.on("idle")


def flow_card_not_answering(d: Driver):
    """The field tester's "Kartu macet" button hangs the card on the household screen; the next card
    command (the PIN check) fails as the reader's watchdog makes it fail."""
    d.fits("deck-pull", "deck-stuck", "deck-reader")
    d.see("Kartu macet")
    yield from d.tap("deck-stuck")  # no card yet: the panel says so, nothing else happens
    d.on("idle")
    d.see("Tidak ada kartu di pembaca: masukkan kartu dulu, lalu tekan Kartu macet.")
    yield from d.tap(deck_index(d.parts, "Pemegang"))
    d.on("household")
    yield from d.tap("deck-stuck")
    d.on("household")  # no card command is running: the screen waits for the cashier
    d.see("Kartu tidak menjawab lagi sampai dicabut")
    d.not_see("Tidak ada kartu di pembaca")
    yield from d.tap("collector-holder")
    d.on("pin")
    yield from d.type_pin("pin", "1234")
    d.on("error")
    d.see("Gangguan perangkat", "Kartu berhenti menjawab", "tidak ada yang terjual", "Cabut kartu, lalu masukkan kembali",
          "Tanpa kartu (izin penyelia), alasan Kartu rusak", "card_not_answering")
    d.not_see("Kartu tidak terbaca")
    yield from d.shot("27-error-card-not-answering")
    yield from d.tap("acknowledge")
    d.on("idle")
    d.see("Cabut kartu dari pembaca")
    yield from d.tap("deck-pull")
    yield from d.tap(deck_index(d.parts, "Pemegang"))  # inserted again, it answers
    d.on("household")
    yield from d.tap("deck-pull")
    d.on("idle")


def flow_card_stuck_at_confirm(d: Driver):
    """The card stops answering after the buyer confirmed (the field tester's "Kartu macet" on the
    confirm screen): the card's SPEND and its read-back both fail, so nothing is sold, no receipt
    prints, and the cashier is told not to hand over the goods (issue 16: the card signs first)."""
    yield from d.tap(deck_index(d.parts, "Pemegang"))
    d.on("household")
    yield from d.tap("collector-holder")
    d.on("pin")
    yield from d.type_pin("pin", "1234")
    d.on("basket")
    yield from d.tap("plus-TAHU")
    yield from d.tap("to-confirm")
    d.on("confirm")
    printed = len(d.parts.printer.printed)
    yield from d.tap("deck-stuck")
    yield from d.tap("confirm")
    d.on("error")
    d.see("tidak ada yang terjual", "Jangan serahkan barang")
    assert len(d.parts.printer.printed) == printed, "no receipt for a sale the card did not sign"
    yield from d.shot("29-error-card-stuck-at-confirm")
    yield from d.tap("acknowledge")
    d.on("idle")
    yield from d.tap("deck-pull")
    d.on("idle")


def flow_technician_language(d: Driver):
    yield from d.tap("technician")
    d.on("technician")
    yield from d.tap("test-reader")
    yield from d.tap("test-printer")
    d.see("EW-DEMO-0001", "Tes printer")
    yield from d.shot("24-technician")
    yield from d.tap("language")
    d.see("Technician", "Test printer")
    yield from d.tap("back")
    d.on("idle")
    d.see("Insert the SSN card")
    yield from d.shot("25-idle-english")
    yield from d.tap("technician")
    yield from d.tap("language")
    yield from d.tap("back")
    d.see("Masukkan kartu SSN")


def flow_ledger_progress(d: Driver):
    from pos import settings
    from pos.status import LEDGER_PROGRESS

    app = d.app
    app.runner.submit(lambda: settings.put(LEDGER_PROGRESS, json.dumps({"received": 40, "total": 100})),
                      lambda _r, _e: app.poll_status())
    yield
    yield
    d.see("Memuat data 40%")
    assert app.status_bar.progress.value == 40
    yield from d.shot("26-ledger-loading")
    app.runner.submit(lambda: settings.put(LEDGER_PROGRESS, "{}"), lambda _r, _e: app.poll_status())
    yield
    yield
    d.not_see("Memuat data")
    assert app.status_bar.progress is None  # the bar exists only while a snapshot loads


def flow_frame_split(d: Driver):
    """Under Xvfb the GL is llvmpipe: every button and text ends with a split point, and drawing
    passes them (pos/ui/frame_split.py); a GPU's renderer string turns the split off."""
    from kivy.graphics import Callback

    from pos.ui.frame_split import FrameSplit
    from pos.ui.widgets import BigButton, Text

    assert FrameSplit.enabled
    assert FrameSplit.software(b"llvmpipe (LLVM 15.0.6, 256 bits)") and FrameSplit.software(b"softpipe")
    assert not FrameSplit.software(b"V3D 4.2") and not FrameSplit.software(b"Mesa Intel(R) UHD Graphics 620")
    widgets = [w for w in d.app.root.walk() if isinstance(w, BigButton | Text)]
    assert widgets and all(any(isinstance(i, Callback) for i in w.canvas.after.children) for w in widgets)
    before = FrameSplit.passed
    d.app.root.canvas.ask_update()
    yield
    assert FrameSplit.passed >= before + len(widgets)


def flow_sign_out(d: Driver):
    yield from d.tap("sign-out")
    d.on("signin")
    _no_view_off_screen_holds_widgets(d.app)  # every screen has been on display by now


def flow_big_screen(d: Driver):
    d.on("signin")
    yield from d.shot("01-signin")
    yield from d.tap("cashier-kasir2")
    yield from d.type_pin("signin", "2345")
    d.on("idle")
    yield from d.shot("02-idle")
    yield from d.tap(deck_index(d.parts, "Jatah"))
    yield from d.shot("04-household")
    yield from d.tap("collector-holder")
    yield from d.type_pin("pin", "1234")
    yield from d.taps("plus-BERAS5", "plus-AYAM1")
    d.see("Keranjang: Rp 111.500")
    d.fits("deck-pull", "deck-stuck", "deck-reader")
    yield from d.shot("06-basket")
    yield from d.tap("deck-pull")
    d.on("idle")


FLOWS_800 = [
    ("sign_in", flow_sign_in), ("holder_sale", flow_holder_sale), ("wrong_pin", flow_wrong_pin),
    ("representative", flow_representative), ("quota_and_pull", flow_quota_and_pull), ("refusals", flow_refusals),
    ("printer_fault", flow_printer_fault), ("history_void", flow_history_void), ("end_of_day", flow_end_of_day),
    ("flag", flow_flag), ("override", flow_override), ("reader_unplugged", flow_reader_unplugged),
    ("card_not_answering", flow_card_not_answering), ("card_stuck_at_confirm", flow_card_stuck_at_confirm),
    ("technician_language", flow_technician_language), ("ledger_progress", flow_ledger_progress),
    ("frame_split", flow_frame_split),
    ("touch_checks_id", lambda d: flow_touch_checks(d, "id", "Jatah", ("kasir1", "1234"))),
    ("touch_checks_en", lambda d: flow_touch_checks(d, "en", "Dengan wakil", ("kasir1", "1234"))),
    ("sign_out", flow_sign_out),
]
FLOWS_1024 = [
    ("big_screen", flow_big_screen),
    ("touch_checks_id", lambda d: flow_touch_checks(d, "id", "Jatah", ("kasir2", "2345"))),
    ("touch_checks_en", lambda d: flow_touch_checks(d, "en", "Dengan wakil", ("kasir2", "2345"))),
]


def flow_touch_checks(d: Driver, language: str, card: str, cashier: tuple[str, str]):
    """Issue 21's layout and notice checks, touched through X (tests/ui/touch_checks.py)."""
    from tests.ui.touch_checks import flow_touch_checks as checks

    yield from checks(d, language, card, cashier)


def flows_for(size: str, which: str = "all"):
    flows = FLOWS_800 if size == "800x480" else FLOWS_1024
    if which != "all":
        wanted = set(which.split(","))
        flows = [f for f in flows if f[0] in wanted]
    return flows
