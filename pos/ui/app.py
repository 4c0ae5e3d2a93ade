"""The counter app: a Kivy window over the counter session, with a status bar always in view.

Card events arrive on the reader's thread and are marshalled to the UI thread with
Clock.schedule_once; card, printer and database work runs on the session's worker thread
(pos.session.ThreadRunner) and its results come back the same way. Import this module only
after pos.ui.boot.configure_kivy().
"""

from __future__ import annotations

import gc
import shutil
import time
from pathlib import Path

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.progressbar import ProgressBar

from pos import __version__
from pos.db import Cashier
from pos.period import WITA
from pos.printing import fault_of
from pos.session import CounterSession, State, ThreadRunner
from pos.status import StatusSnapshot, read_status
from pos.ui import i18n
from pos.ui.boot import trim_freed_memory
from pos.ui.i18n import _
from pos.ui.screens import STATE_VIEW
from pos.ui.widgets import BAR, BG, WHITE, Text, Theme, paint

STATUS_EVERY_S = 3.0
IDLE_STATES = (State.IDLE, State.SIGNED_OUT)  # no print can be under way: the printer may be asked


class CountingRunner:
    """ThreadRunner plus a count of jobs whose results are not delivered yet (tests wait on it)."""

    def __init__(self) -> None:
        self.pending = 0
        self._inner = ThreadRunner(lambda fn: Clock.schedule_once(lambda _dt: fn(), 0))

    def submit(self, work, done) -> None:
        """Run `work` on the worker, `done(result, exc)` on the UI thread, counted until delivered."""
        self.pending += 1

        def finished(result, exc):
            self.pending -= 1
            done(result, exc)

        self._inner.submit(work, finished)

    def shutdown(self) -> None:
        """Stop the worker when the app stops."""
        self._inner.shutdown()


class StatusBar(BoxLayout):
    """Network, queue, ledger age, reader, printer and cashier, always in view: the cashier sees a
    fault before a sale runs into it."""

    def __init__(self, **kw):
        super().__init__(orientation="vertical", size_hint_y=None, height=Theme.px(40), **kw)
        paint(self, BAR)
        self.line = BoxLayout(spacing=Theme.px(10), padding=(Theme.px(8), 0))
        self.labels = {}
        for key in ("net", "queue", "ledger", "reader", "printer", "who", "time"):
            # one line always, as wide as its words (the name takes what is left): a wrapped word fell
            # out of the bar, and a fixed share cut "Kertas habis"
            lbl = Text("", "small", color=WHITE, bold=True, size_hint_x=1 if key == "who" else None, size_hint_y=1)
            lbl.unbind(width=lbl._wrap)
            lbl.bind(texture_size=lambda w, s: setattr(w, "width", s[0]))
            self.labels[key] = lbl
            self.line.add_widget(lbl)
        self.add_widget(self.line)
        # Made only while a snapshot loads: an idle bar still draws (from Kivy's theme atlas, loaded
        # for it alone): about 1.3 MB of peak RSS at start-up (bench_ui).
        self.progress: ProgressBar | None = None

    def show(self, session: CounterSession, status: StatusSnapshot | None, clock_text: str = "") -> None:
        """Redraw the bar from the session and the last status poll."""
        lb = self.labels
        if status is not None:
            lb["net"].text = _("Online") if status.online else _("Offline")
            lb["net"].color = (0.55, 0.95, 0.6, 1) if status.online else (1, 0.75, 0.3, 1)
            lb["queue"].text = _("Queue: {n}", n=status.queued)
            if status.ledger_version is None:
                lb["ledger"].text, lb["ledger"].color = _("Data: none"), (1, 0.45, 0.45, 1)
            else:
                hours = status.ledger_age_hours or 0
                age = _("{n} h", n=int(hours)) if hours < 48 else _("{n} days", n=int(hours // 24))
                lb["ledger"].text = _("Data v{v}: {age}", v=status.ledger_version, age=age)
                lb["ledger"].color = (1, 0.75, 0.3, 1) if status.ledger_warning else WHITE
            if status.progress:
                received, total = status.progress
                if self.progress is None:
                    self.progress = ProgressBar(max=1, value=0, size_hint_y=None, height=Theme.px(8))
                    self.add_widget(self.progress)
                self.progress.max, self.progress.value = total, received
                lb["ledger"].text = _("Loading data {p}%", p=received * 100 // total)
            elif self.progress is not None:
                self.remove_widget(self.progress)
                self.progress = None
        lb["reader"].text = _("Reader: OK") if session.reader_ok else _("Reader: NONE")
        lb["reader"].color = WHITE if session.reader_ok else (1, 0.45, 0.45, 1)
        pf = session.printer_fault
        lb["printer"].text = _("Printer: OK") if not pf else _("Printer: {fault}", fault=_(pf))
        lb["printer"].color = WHITE if not pf else (1, 0.45, 0.45, 1)
        lb["who"].text = session.cashier_name or _("Signed out")
        lb["time"].text = clock_text
        self.height = Theme.px(40) + (self.progress.height if self.progress else 0)


class CounterApp(App):
    """The window: a view per session state, the status bar, the demo panel; the session it is
    given (pos.roots.counter builds it) holds every rule."""

    title = "E-Warung POS"

    def __init__(self, parts, session: CounterSession, runner: CountingRunner, *, size: tuple[int, int],
                 headless_shot: Path | None = None, on_ready=None, exit_after: float | None = None, **kw):
        super().__init__(**kw)
        self.parts = parts
        self.session = session
        self.runner = runner
        self.exit_after = exit_after
        self.size = size
        self.language = session.language
        self.headless_shot = headless_shot
        self.on_ready = on_ready
        self.status: StatusSnapshot | None = None
        self.cashier_list: list[tuple[str, str, str]] = []
        self.view = None
        self._state = None
        self.started_at = time.perf_counter()
        self.idle_shown_at: float | None = None
        self._trim_armed = False

    # -- build -------------------------------------------------------------------------------

    def build(self):
        """Kivy's start-up hook: the views, the bar, the demo panel, card events onto the UI thread."""
        gc.collect()
        gc.freeze()  # modules, config, appliance: alive as long as the app; later collections skip them
        # one collection shortly after a burst of screen changes, off the touch-to-frame path
        self._collect_replaced_screens = Clock.create_trigger(lambda _dt: self._collect(), 0.05)
        i18n.set_language(self.language)
        Theme.set_height(self.size[1])
        Window.clearcolor = BG
        self.printer_runner = CountingRunner()  # the idle printer poll: never ahead of a card's work
        self.session.listen(lambda _s: self.refresh())
        self.parts.reader.subscribe(lambda ev: Clock.schedule_once(lambda _dt: self.session.card_event(ev), 0))
        self.views = {state: cls(self) for state, cls in STATE_VIEW.items()}
        root = BoxLayout(orientation="horizontal")
        main = BoxLayout(orientation="vertical", size_hint_x=None, width=self.size[0])
        self.status_bar = StatusBar()
        self.content = BoxLayout()
        main.add_widget(self.status_bar)
        main.add_widget(self.content)
        root.add_widget(main)
        if self.parts.demo:
            from pos.ui.demo_panel import DemoPanel

            self.demo_panel = DemoPanel(self)
            root.add_widget(self.demo_panel)
        self.runner.submit(self._load_cashiers, self._cashiers_loaded)
        Clock.schedule_interval(lambda _dt: self.poll_status(), STATUS_EVERY_S)
        self.poll_status()
        self.parts.reader.start()
        if self.headless_shot:
            Clock.schedule_interval(lambda _dt: self.screenshot(self.headless_shot), 2.0)
        # The first screen is drawn when the cashiers are in (_cashiers_loaded, a few ms): drawing it
        # now without them, to rebuild it at once, left 4 MB more resident (bench_ui).
        self.status_bar.show(self.session, self.status, self._clock_text())
        return root

    def _collect(self) -> None:
        gc.collect()
        trim_freed_memory()
        # The collected widgets' GL textures and buffers are deleted by Kivy at the next drawn frame,
        # after this trim: trim once more after that frame, or the GL driver's freed blocks stay
        # resident until the next screen change (idle screen after sign-in, demo: -0.7 MB; bench_ui).
        if not self._trim_armed:
            self._trim_armed = True
            Window.bind(on_flip=self._trim_after_frame)
            Window.canvas.ask_update()

    def _trim_after_frame(self, *_a) -> None:
        Window.unbind(on_flip=self._trim_after_frame)
        self._trim_armed = False
        Clock.schedule_once(lambda _dt: trim_freed_memory(), 0)  # after the flip's own frees

    def on_start(self):
        """Tell systemd (Type=notify) the counter is up; ping its watchdog from the UI clock,
        so a hung UI thread stops the pings and systemd restarts the app."""
        from firmware_config import systemd_notify

        systemd_notify.ready("counter app on screen")
        interval = systemd_notify.watchdog_interval_s()
        if interval:
            Clock.schedule_interval(lambda _dt: systemd_notify.watchdog(), interval)
        if self.exit_after:
            Clock.schedule_once(lambda _dt: self._shoot_and_stop(), self.exit_after)

    def _shoot_and_stop(self) -> None:
        """`--exit-after`: leave a last screenshot (headless) and quit."""
        if self.headless_shot:
            self.screenshot(self.headless_shot)
        self.stop()

    def _load_cashiers(self):
        return [(c.id, c.name, c.role) for c in Cashier.select().where(Cashier.active == True).order_by(Cashier.id)]  # noqa: E712

    def _cashiers_loaded(self, rows, exc):
        self.cashier_list = rows or []
        self.refresh()
        if self.on_ready:
            Clock.schedule_once(lambda _dt: self.on_ready(self), 0)

    def poll_status(self) -> None:
        """Read network, queue and ledger state on the worker: the database is not read on the UI thread."""
        ap = self.parts.appliance
        self.runner.submit(lambda: read_status(ap.ledger, ap.redemptions.policy, ap.clock.now()), self._status_read)
        printer = self.parts.printer
        if hasattr(printer, "status") and not self.session.busy and self.session.state in IDLE_STATES \
                and not self.printer_runner.pending:
            # its own worker: a slow status answer (up to the adapter's timeout) never holds up a card
            self.printer_runner.submit(lambda: fault_of(printer.status()),
                                       lambda fault, exc: self.session.printer_polled(None if exc else fault))

    def _status_read(self, status, exc):
        if status is not None:
            self.status = status
            if self.view is not None:
                self.view.status_read(status)
        self.status_bar.show(self.session, self.status, self._clock_text())

    # -- render ------------------------------------------------------------------------------

    @property
    def screen_name(self) -> str:
        """The view on screen (tests and the bench wait on it)."""
        return self.view.name if self.view else ""

    def refresh(self) -> None:
        """Show the view of the session's state after every change, reusing its widgets when it can."""
        s = self.session
        view = self.views[s.state]
        if s.state != self._state:
            self._state = s.state
            view.enter()
        if view is self.view and view.update():
            # the same screen, unchanged or brought up to date in place: keep its widgets
            self.status_bar.show(s, self.status, self._clock_text())
            return
        if self.view is not None and self.view is not view:
            self.view.release()
        self.view = view
        self.content.clear_widgets()
        # Kivy widget trees are reference cycles: a replaced screen (widgets, text textures) lives
        # until a full collection, which with this many objects comes rarely, so every touch left
        # its old screen behind (about +8 MB RSS over one sale; bench_ui demo-sale). With the
        # start-up objects frozen (build) a full collection only walks what came after: ~5-30 ms,
        # so it runs just after the new screen is drawn, once per burst of changes.
        self._collect_replaced_screens()
        self.content.add_widget(view.draw())
        self.status_bar.show(s, self.status, self._clock_text())
        if s.state == State.SIGNED_OUT and self.idle_shown_at is None and self.cashier_list:
            self.idle_shown_at = time.perf_counter()

    def _clock_text(self) -> str:
        """Wall-clock time in Samarinda (WITA), from the appliance's clock."""
        return self.parts.appliance.clock.now().astimezone(WITA).strftime("%H:%M")

    def toggle_language(self) -> None:
        """Switch the screens and the session between Bahasa Indonesia and English."""
        lang = "en" if self.session.language == "id" else "id"
        i18n.set_language(lang)
        self.session.set_language(lang)

    def device_info(self) -> list[tuple[str, str]]:
        """The technician's screen: what this device is and how its parts are, to read out on the phone."""
        cfg = self.parts.config
        st = self.status
        reader = getattr(self.parts.reader, "name", cfg.reader.kind)
        return [
            (_("Device"), cfg.device.id),
            (_("Shop"), cfg.device.shop_name),
            (_("Software"), f"ewarung {__version__}"),
            (_("Card reader"), f"{reader}: " + (_("connected") if self.session.reader_ok else _("disconnected"))),
            (_("Printer"), f"{cfg.printer.kind} {cfg.printer.width_mm} mm: " + (self.session.printer_fault or "OK")),
            (_("Network"), (_("online") if st and st.online else _("offline"))),
            (_("Messages waiting"), str(st.queued) if st else "?"),
            (_("Ledger"), f"v{st.ledger_version}, {st.ledger_age_hours:.1f} h" if st and st.ledger_version else "-"),
            (_("Data folder"), str(cfg.data_dir)),
            (_("Language"), "Bahasa Indonesia" if self.session.language == "id" else "English"),
        ]

    # -- screenshots -------------------------------------------------------------------------

    def screenshot(self, path: Path) -> Path:
        """Window.screenshot writes NAME0001.png; move it to exactly `path`."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + "-shot.png")
        written = Window.screenshot(name=str(tmp))
        if written:
            shutil.move(written, path)
        return path

    def on_stop(self):
        """Tell systemd, stop the reader's monitor and the worker."""
        from firmware_config import systemd_notify

        systemd_notify.stopping()
        try:
            self.parts.reader.stop()
        finally:
            self.runner.shutdown()
            self.printer_runner.shutdown()
