"""The technician's screen: test the reader and the printer from the counter itself."""

from __future__ import annotations

from pos.session.core import SessionCore
from pos.session.rules import Action, State

ONLINE = {True: "online", False: "offline", None: "unknown"}


class Technician(SessionCore):
    """A shop has no laptop: the technician diagnoses reader and printer on the counter's screen."""

    def open_technician(self) -> bool:
        """Open the technician screen (also before sign-in: a broken reader must not lock it out)."""
        if not self._may(Action.OPEN_TECHNICIAN):
            return False
        self._tech_back = self.state
        self._go(State.TECHNICIAN)
        self.tech_results = {}
        self._changed()
        return True

    def close_technician(self) -> bool:
        """Back to the screen the technician came from."""
        if not self._may(Action.CLOSE_TECHNICIAN):
            return False
        self._go(self._tech_back)
        self._changed()
        return True

    def test_printer(self) -> bool:
        """Ask the printer for its status (on the worker): online, and paper."""
        if not self._may(Action.TEST_PRINTER):
            return False
        self.busy = True
        self._changed()

        def done(status, exc):
            self.busy = False
            if exc is not None:
                self.tech_results["printer"] = ("error", str(exc))
            else:
                self.tech_results["printer"] = (ONLINE[status.online], f"paper {status.paper}")
                self.printer_fault = "" if status.online is not False and status.paper != "out" else (
                    "paper_out" if status.paper == "out" else "offline")
            self._changed()

        self.runner.submit(self.printing.printer.status, done)
        return True

    def test_reader(self) -> bool:
        """Whether the reader is connected and sees a card, as the session knows it."""
        if not self._may(Action.TEST_READER):
            return False
        self.tech_results["reader"] = ("connected" if self.reader_ok else "disconnected",
                                       "card present" if self.card_present else "no card")
        self._changed()
        return True
