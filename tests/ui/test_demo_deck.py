"""Demo mode's card deck through the real pcscd + vpcd, and its fallback to the in-process deck.

The UI tests run the real counter app (demo mode, deck "auto") under Xvfb in a subprocess:
    python -m tests.ui.test_demo_deck --expect pcsc|fallback --out DIR --results FILE
and drive it with simulated touches (tests/ui/flows.Driver). With pcscd + vpcd the panel's
insert starts an `ewarung card insert` child, the counter reads the card through PcscReader,
serves it to a printed receipt, and "pull" stops the child; "Kartu macet" sends the child SIGUSR1 and
the counter's PcscReader gives up on the card (card_not_answering). The fallback run hides pcscd (no
such program, no daemon socket) and expects the in-process deck plus the reason on screen.
Run under `flock /tmp/ewarung-pcscd.lock` (they may start pcscd).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import ROOT

NOW = datetime(2026, 11, 15, 2, 0, tzinfo=UTC)


# --- the app side (subprocess) -------------------------------------------------------------------

def _until(d, predicate, what: str, timeout: float = 15.0):
    """Yield frames until predicate() holds (card events come from pcscd, not the worker)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; screen {d.app.screen_name}")
        yield "nowait"
    yield


def _tap_timed(d, name: str) -> float:
    """Tap like Driver.tap, returning how long the UI thread spent in the button's handler."""
    from kivy.tests.common import UnitTestTouch

    w = d.find(name)
    x, y = w.to_window(w.center_x, w.center_y)
    touch = UnitTestTouch(x, y)
    t0 = time.perf_counter()
    touch.touch_down()
    touch.touch_up()
    return time.perf_counter() - t0


def _sign_in(d):
    yield from d.tap("cashier-kasir1")
    yield from d.tap("shift-pagi")
    yield from d.type_pin("signin", "1234")
    d.on("idle")


def flow_pcsc(d, stats: dict):
    from hardware.card.deck import PcscDeck
    from hardware.card.pcsc_reader import PcscReader
    from tests.ui.flows import deck_index

    deck = d.parts.deck_control
    assert isinstance(deck, PcscDeck), f"not the pcscd deck: {d.parts.deck_note}"
    assert isinstance(d.parts.reader, PcscReader)
    yield from _sign_in(d)
    d.see("pcscd + vpcd (Virtual PCD 00 00)")
    t0 = time.perf_counter()
    stats["insert_tap_s"] = _tap_timed(d, deck_index(d.parts, "Pemegang"))
    yield from _until(d, lambda: d.app.screen_name == "household", "the holder's card to be read via pcscd")
    stats["insert_to_household_s"] = time.perf_counter() - t0
    assert deck.proc is not None and deck.proc.poll() is None, "no virtual card process"
    stats["card_pid"] = deck.proc.pid
    d.see("Sisa bantuan", "Rp 200.000")
    yield from d.shot("demo-pcsc-household")
    yield from d.tap("collector-holder")
    d.on("pin")
    yield from d.type_pin("pin", "1234")
    d.on("basket")
    yield from d.taps("plus-BERAS5", "to-confirm")
    d.on("confirm")
    yield from d.tap("confirm")
    d.on("done")
    assert len(d.parts.printer.printed) == 1, d.parts.printer.printed
    yield from _until(d, lambda: "TIDAK DAPAT" in d.panel_receipt(), "the receipt in the panel")
    yield from d.shot("demo-pcsc-done")
    t0 = time.perf_counter()
    stats["pull_tap_s"] = _tap_timed(d, "deck-pull")
    yield from _until(d, lambda: d.app.screen_name == "idle", "idle after the card was pulled")
    stats["pull_to_idle_s"] = time.perf_counter() - t0
    d.see("Masukkan kartu SSN")
    assert deck.proc is None
    yield from _stuck_card(d, deck, stats)
    stats["pcscd_owned"] = deck.can_unplug
    stats["cable_tap_s"] = _tap_timed(d, "deck-reader")
    if deck.can_unplug:  # the demo's own pcscd: the cable stops it, the counter sees the reader go and come back
        yield from _until(d, lambda: d.app.screen_name == "error", "the reader-lost error")
        d.see("Pembaca: TIDAK ADA")
        yield from d.tap("deck-reader")
        yield from _until(d, lambda: d.app.screen_name == "idle", "idle once pcscd is back")
    else:  # someone else's pcscd: the panel says (in Bahasa Indonesia) it will not stop it
        yield from _until(d, lambda: "tidak dijalankan oleh demo" in d.texts(), "the panel's note")


def _stuck_card(d, deck, stats: dict):
    """ "Kartu macet": the card process gets SIGUSR1 and answers nothing more; the counter's PcscReader
    gives up at the PIN check (its transmit timeout is 1 s here) and the counter shows its error."""
    from tests.ui.flows import deck_index

    stats["stuck_tap_s"] = _tap_timed(d, "deck-stuck")  # no card in the reader: the worker says so
    yield from _until(d, lambda: "Tidak ada kartu di pembaca" in d.texts(), "the panel's no-card note", 5)
    yield from d.tap(deck_index(d.parts, "Pemegang"))
    yield from _until(d, lambda: d.app.screen_name == "household", "the holder's card, again")
    pid = deck.proc.pid
    stats["stuck_tap_s"] = max(stats["stuck_tap_s"], _tap_timed(d, "deck-stuck"))
    signalled = deck._submit(lambda: None)  # the worker runs jobs in order: done once SIGUSR1 was sent
    yield from _until(d, signalled.done, "the deck's worker to send SIGUSR1", 5)
    d.on("household")
    yield from d.tap("collector-holder")
    d.on("pin")
    t0 = time.perf_counter()
    yield from d.type_pin("pin", "1234")
    yield from _until(d, lambda: d.app.screen_name == "error", "the card-not-answering error", 10)
    stats["pin_to_error_s"] = time.perf_counter() - t0
    d.see("Kartu berhenti menjawab", "card_not_answering")
    yield from d.shot("demo-pcsc-card-not-answering")
    assert deck.proc is not None and deck.proc.pid == pid and deck.proc.poll() is None, "SIGUSR1 ended the card"
    yield from d.tap("acknowledge")
    yield from d.tap("deck-pull")
    yield from _until(d, lambda: d.app.screen_name == "idle" and deck.proc is None, "idle after the stuck card left")


def flow_fallback(d, stats: dict):
    from hardware.card.fake import FakeReader
    from tests.ui.flows import deck_index

    assert isinstance(d.parts.reader, FakeReader)
    yield from _sign_in(d)
    d.see("TIDAK lewat pcscd + vpcd: pcscd belum terpasang", "Perbaikan: jalankan `sudo ./scripts/bootstrap.sh`")
    d.not_see("NOT through")  # Bahasa Indonesia by default, like the counter screens
    yield from d.shot("demo-fallback")
    t0 = time.perf_counter()
    _tap_timed(d, deck_index(d.parts, "Pemegang"))
    yield from _until(d, lambda: d.app.screen_name == "household", "the fake deck's card to be read")
    stats["insert_to_household_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _tap_timed(d, "deck-pull")
    yield from _until(d, lambda: d.app.screen_name == "idle", "idle after the pull")
    stats["pull_to_idle_s"] = time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--expect", choices=["pcsc", "fallback"], required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--results", type=Path, required=True)
    args = ap.parse_args()
    import faulthandler

    faulthandler.dump_traceback_later(100, exit=True)
    from firmware_config.config import DemoSection, demo_config
    from hardware.card import pcscd
    from pos.clock import FixedClock
    from pos.roots.counter import build_counter, counter_app
    from pos.ui.boot import configure_kivy, demo_panel_width, parse_size

    if args.expect == "fallback":  # this machine's pcscd made invisible: not installed, not running
        pcscd.PCSCD_COMMAND = ("ewarung-test-no-such-pcscd", "-f")
        pcscd.PCSCD_SOCKET = Path(tempfile.mkdtemp()) / "no-pcscd.comm"
    data = Path(tempfile.mkdtemp(prefix="ewarung-ui-deck-"))
    config = demo_config(data).replace(demo=DemoSection(households=60))
    parts = build_counter(config, demo=True, clock=FixedClock(NOW), deck="auto", language="id")
    results: dict = {"deck_dir": str(data / "card-deck"), "stats": {}, "reader_events": []}
    if hasattr(parts.reader, "transmit_timeout"):  # the PcscReader: give up on a stuck card in 1 s, not 5
        parts.reader.transmit_timeout = 1.0
    parts.reader.subscribe(lambda event: results["reader_events"].append(event.kind))
    width, height = parse_size("800x480")
    configure_kivy(width + demo_panel_width(height), height)
    from kivy.clock import Clock

    from tests.ui.flows import Driver

    gate = SimpleNamespace(event=threading.Event())  # Driver.recover sets it; nothing waits on it here

    def ready(app):
        driver = Driver(app, parts, gate, args.out, "")
        driver.panel_receipt = lambda: app.demo_panel.receipt.text
        app.test_driver = driver
        flow = flow_pcsc if args.expect == "pcsc" else flow_fallback

        def run():
            try:
                yield from flow(driver, results["stats"])
                results["flow"] = "ok"
            except Exception:
                results["flow"] = traceback.format_exc(limit=8)
            app.stop()

        driver.start(run())

    app = counter_app(parts, size=(width, height), on_ready=ready)
    Clock.schedule_once(lambda _dt: (results.setdefault("flow", "app did not finish in time"), app.stop()), 80)
    app.run()
    results["pcscd_owned_after_stop"] = getattr(getattr(parts.deck_control, "pcscd", None), "owned", None)
    args.results.write_text(json.dumps(results, indent=1))
    parts.appliance.close()
    return 0


# --- the tests (pytest side) ---------------------------------------------------------------------

def _run_app(expect: str, env: dict, artifacts: Path) -> dict:
    results = artifacts / f"ui-demo-deck-{expect}.json"
    results.unlink(missing_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.ui.test_demo_deck", "--expect", expect, "--out", str(artifacts / "screens"),
         "--results", str(results)],
        cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=150)
    if not results.exists():
        pytest.fail(f"the demo app crashed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(results.read_text())


def _card_processes(deck_dir: str) -> list[str]:
    out = subprocess.run(["pgrep", "-af", "card insert"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if deck_dir in line]


@pytest.mark.ui
@pytest.mark.pcsc
def test_demo_deck_inserts_serves_and_pulls_through_pcscd_and_vpcd(ui_env, artifacts):
    import shutil

    if shutil.which("pcscd") is None:
        pytest.skip("pcscd is not installed (apt-get install pcscd vsmartcard-vpcd)")
    res = _run_app("pcsc", ui_env, artifacts)
    assert res["flow"] == "ok", res["flow"]
    stats = res["stats"]
    # the UI thread only hands the card work to the deck's worker
    assert max(stats["insert_tap_s"], stats["pull_tap_s"], stats["cable_tap_s"], stats["stuck_tap_s"]) < 0.1, stats
    assert res["reader_events"].count("card_not_answering") == 1, res["reader_events"]  # the counter's PcscReader
    assert stats["pin_to_error_s"] < 3, stats  # its 1 s transmit timeout, not a hang
    assert not _card_processes(res["deck_dir"]), "a virtual card process outlived the demo"
    assert res["pcscd_owned_after_stop"] is False, "the demo left its own pcscd running"
    if stats["pcscd_owned"]:
        from hardware.card.vpcd import PCSCD_SOCKET, pcscd_answers

        assert not pcscd_answers(PCSCD_SOCKET), "the pcscd the demo started is still answering"


@pytest.mark.ui
@pytest.mark.pcsc
def test_demo_without_pcscd_falls_back_to_the_in_process_deck_and_says_why(ui_env, artifacts):
    res = _run_app("fallback", ui_env, artifacts)
    assert res["flow"] == "ok", res["flow"]
    assert not _card_processes(res["deck_dir"])


# --- pcscd problems, without a screen ------------------------------------------------------------

def test_pcscd_that_cannot_start_names_the_reason_and_the_fix(tmp_path):
    from hardware.card.pcscd import DeckUnavailable, Pcscd

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    daemon = Pcscd(free, tmp_path / "pcscd.log", socket_path=tmp_path / "none.comm",
                   command=(sys.executable, "-c", "import sys; print('cannot create /run/pcscd: denied'); sys.exit(3)"))
    with pytest.raises(DeckUnavailable) as info:
        daemon.ensure()
    assert "exit 3" in info.value.why and "denied" in info.value.why
    assert "sudo" in info.value.fix or str(tmp_path) in info.value.fix
    assert not daemon.owned


def test_vpcd_port_in_use_by_another_program_is_reported(tmp_path):
    from hardware.card.pcscd import DeckUnavailable, Pcscd

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        daemon = Pcscd(port, tmp_path / "pcscd.log", socket_path=tmp_path / "none.comm", command=("true",))
        with pytest.raises(DeckUnavailable) as info:
            daemon.ensure()
    assert f"port {port}" in info.value.why and "ss -ltnp" in info.value.fix


STAND_IN_DAEMON = """
import signal, socket, sys, time
u = socket.socket(socket.AF_UNIX); u.bind(sys.argv[1]); u.listen()
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(("127.0.0.1", int(sys.argv[2]))); t.listen()
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
while True:
    time.sleep(1)
"""


def test_a_pcscd_the_demo_starts_is_its_child_and_stops_with_it(tmp_path):
    """Start/stop bookkeeping with a stand-in daemon (the real pcscd has one fixed socket per machine)."""
    from hardware.card.pcscd import Pcscd
    from hardware.card.vpcd import pcscd_answers

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sock = tmp_path / "daemon.comm"
    daemon = Pcscd(port, tmp_path / "pcscd.log", socket_path=sock,
                   command=(sys.executable, "-c", STAND_IN_DAEMON, str(sock), str(port)))
    daemon.ensure()
    assert daemon.owned and pcscd_answers(sock)
    pid = daemon.proc.pid
    assert os.getpgid(pid) == pid  # its own process group: stopped as a group, never our terminal's Ctrl-C
    daemon.ensure()  # running now: reused, not started twice
    assert daemon.proc.pid == pid
    daemon.stop()
    assert not daemon.owned and not pcscd_answers(sock)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


HUNG_CARD_STAND_IN = """
import signal, sys, time
signal.signal(signal.SIGUSR1, lambda *a: sys.exit(7))
print("ready", flush=True)
time.sleep(30)
"""


def test_stuck_button_signals_only_a_card_process_that_reached_the_reader(tmp_path):
    """PcscDeck.stop_answering on its worker: a note when no card is in, a note (and no signal, which
    would end a process that has not installed its handler yet) before the card reached vpcd, and
    SIGUSR1 once the card's pidfile names it. A stand-in process, no pcscd."""
    from hardware.card.deck import NO_CARD_NOTE, NOT_CONNECTED_NOTE, PcscDeck
    from hardware.card.pcscd import Pcscd

    deck = PcscDeck([], tmp_path, Pcscd(1, tmp_path / "pcscd.log", socket_path=tmp_path / "none.comm"))
    deck.run_dir.mkdir()
    notes: list[str] = []
    deck.on_note(notes.append)
    deck.stop_answering().result(timeout=5)
    assert notes == [NO_CARD_NOTE]
    deck.proc = proc = subprocess.Popen([sys.executable, "-c", HUNG_CARD_STAND_IN], stdout=subprocess.PIPE,
                                        start_new_session=True)
    try:
        assert proc.stdout.readline() == b"ready\n"
        deck.stop_answering().result(timeout=5)
        assert notes[-1] == NOT_CONNECTED_NOTE and proc.poll() is None
        deck._pid_path.write_text(str(proc.pid))
        deck.stop_answering().result(timeout=5)
        assert proc.wait(timeout=5) == 7, "the card process did not get SIGUSR1"
        assert len(notes) == 2
    finally:
        deck.close()
        proc.stdout.close()


def test_deck_card_files_act_like_the_fake_deck(tmp_path):
    """Each card file answers the real card client as its in-process twin does."""
    from firmware_config.config import demo_config
    from hardware.card.applet import Applet
    from hardware.card.cardfile import CardFile
    from hardware.card.client import CardClient
    from hardware.card.deck import demo_deck, write_card_files
    from pos.refusals import Reason, Refusal
    from pos.roots.keys import issuer_public_keys
    from pos.sample_city import NOTABLE, household_id

    cards = demo_deck({role: household_id(i) for i, role in NOTABLE.items()})
    paths = write_card_files(cards, tmp_path)
    keys = issuer_public_keys(demo_config(tmp_path))
    for card in cards:
        applet = Applet(CardFile.load(paths[card.card_id]))
        applet.power_on()
        client = CardClient(applet.process, keys)
        if card.behaviour == "genuine":
            auth = client.authenticate()
            assert (auth.certificate.card_id, auth.certificate.household_id) == (card.card_id, card.household_id)
            assert auth.certificate.valid_until == card.valid_until
            client.verify_pin(card.pin)
        else:
            with pytest.raises(Refusal) as info:
                client.authenticate()
            assert info.value.reason == {"forged": Reason.CARD_FORGED, "cloned": Reason.CARD_CLONED}[card.behaviour]


if __name__ == "__main__":
    os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="ewarung-kivy-"))
    sys.exit(main())


def test_a_card_process_that_stops_reaches_the_panel_as_a_translatable_note(tmp_path):
    """PcscDeck.insert on its worker: a card process that ends at once (a corrupt card file) becomes
    a DeckUnavailable note, which the panel words in the counter's language (deck_note). No pcscd."""
    from hardware.card.deck import PcscDeck, deck_note
    from hardware.card.pcscd import DeckUnavailable, Pcscd
    from pos.ui import i18n

    deck = PcscDeck([], tmp_path, Pcscd(1, tmp_path / "pcscd.log", socket_path=tmp_path / "none.comm"))
    deck.run_dir.mkdir()
    (tmp_path / "bad.json").write_text("{not a card")
    deck.paths = {"CARD-BAD": tmp_path / "bad.json"}
    notes: list = []
    deck.on_note(notes.append)
    try:
        deck.insert(SimpleNamespace(card_id="CARD-BAD")).result(timeout=60)
    finally:
        deck.close()
    assert len(notes) == 1 and isinstance(notes[0], DeckUnavailable), notes
    assert deck_note(notes[0]).startswith("Card deck: the virtual card process stopped (exit ")
    i18n.set_language("id")
    assert deck_note(notes[0], i18n._).startswith("Kartu virtual: proses kartu virtual berhenti (keluar ")
    assert str(tmp_path / "virtual-card.log") in deck_note(notes[0], i18n._)
