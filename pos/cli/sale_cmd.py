"""`ewarung sale`: one sale at a headless counter, for field testers and scripts.

The same CounterSession, card reader and printer as the touchscreen, built by the counter's
composition root (pos.roots.counter), driven touch by touch from the command line: sign in, a card
(a demo deck card inserted, or the one a person inserts), the collector, the PIN, the basket,
confirm, and optionally a supervisor's void. The outcome is one JSON object on stdout; a refusal
exits 1 with its code and the catalog's words, so a script can tell what the cashier would read.
"""

from __future__ import annotations

import argparse
import json
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pos.staff_roles import DEFAULT_SHIFT, SHIFTS

if TYPE_CHECKING:  # pragma: no cover
    from pos.roots.counter import CounterParts

DECK_ROLES = ("holder", "representative", "quotas", "partly_spent", "used_up", "revoked", "hotlisted", "forged",
              "cloned", "expired")
"""The demo deck's cards (hardware.card.deck.demo_deck), in its order, by the name `--card` takes."""
CARD_CHARGED = {"card_charged_not_sold": True, "card_charge_unknown": None}
"""A refused sale's `card_charged`: true when the card signed a charge no sale was committed for
(reported to the city, which credits it), null when unknown (the card left; its next insertion at
this device settles it), false otherwise (nothing was taken from the card)."""

EXAMPLES = """\
examples:
  ewarung sale --demo --card holder --item BERAS5=1 --item TELUR10=2
  ewarung sale --demo --card representative --collector representative --item MINYAK1=2 \\
      --void wrong_items --supervisor spv1 --supervisor-pin 9999
  ewarung sale --demo --card used_up --item BERAS5=1          # refused: exit 1, code allowance_used_up
  EWARUNG_DEMO_DECK=fake ewarung sale --demo --card holder --item BERAS5=1   # no pcscd
  ewarung sale --cashier kasir1 --cashier-pin 1234 --pin 123456 --item BERAS5=1 --wait 120
                                          # a shop's appliance: waits for a card in the real reader

The outcome is JSON on stdout: ok, household, redemption_id, total, remaining, receipt_no, collector,
printed, print_fault, card_updated, card_charged, reader (and voided, voided_receipt_no with --void); on a
refusal ok is false, with stage, refusal (the code), message (the cashier's words), detail and card_charged:
false (nothing taken from the card), true (refusal card_charged_not_sold: the card signed but the sale
could not be saved; reported to the city, which credits it) or null (card_charge_unknown: the card left
before answering; its next insertion here reports a charge if there was one). charge_reported (seq, amount)
appears when the inserted card carried such a charge from an earlier visit. Exit 0 sold, 1 refused,
2 setup problem.
"""


@dataclass
class SaleScript:
    """What the person at the counter does, in order (the touchscreen's touches as data)."""

    items: dict[str, int]
    card: str | None = None
    """A demo deck card to insert (DECK_ROLES); None: wait for a card in the reader."""
    pin: str = "1234"
    collector: str = "holder"  # holder, representative (the first registered) or representative:ID
    cashier: str = "kasir1"
    cashier_pin: str = "1234"
    shift: str = DEFAULT_SHIFT
    wait: float = 60.0
    void_reason: str = ""
    supervisor: str = ""
    supervisor_pin: str = ""


class Refused(Exception):
    """A step of the sale was refused or declined: the outcome says which, in the catalog's words."""

    def __init__(self, outcome: dict[str, Any]) -> None:
        super().__init__(outcome.get("refusal", ""))
        self.outcome = outcome


class HeadlessCounter:
    """A CounterSession without a screen: card events are queued from the reader's thread and
    handed to the session on this one; its work runs inline, so each touch is finished when the
    call returns."""

    def __init__(self, parts: CounterParts) -> None:
        from pos.roots.counter import counter_session
        from pos.session import InlineRunner

        self.parts = parts
        self.session = counter_session(parts, InlineRunner())
        self._events: queue.Queue = queue.Queue()
        parts.reader.subscribe(self._events.put)
        self._started = False
        self._settled: dict[str, Any] = {}

    # -- plumbing ------------------------------------------------------------------------------
    def _pump(self, until: Callable[[], bool], timeout: float) -> bool:
        """Hand queued card events to the session until `until()` or the timeout."""
        deadline = time.monotonic() + timeout
        while not until():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                event = self._events.get(timeout=min(left, 0.05))
            except queue.Empty:
                continue
            self.session.card_event(event)
        return True

    def _refused(self, stage: str) -> Refused:
        s = self.session
        if s.error is not None:
            code = s.error.reason.value if s.error.reason else s.error.fault
            outcome = {"refusal": code, "message": s.error.message(s.language), "detail": s.error.detail}
        else:
            code = s.notice or "not_possible_now"
            outcome = {"refusal": code, "message": s.notice_text(), "detail": ""}
        # nothing was sold; was the card charged? yes (the city credits it), unknown (the card left:
        # its next insertion here settles it) or no
        charged = CARD_CHARGED.get(code, False)
        return Refused({"ok": False, "stage": stage, **outcome, "card_charged": charged, **self._settled})

    def _touch(self, stage: str, done: bool, *expected: str) -> None:
        """A touch that did nothing, or that did not lead to one of the `expected` screens, is refused."""
        if not done or self.session.state not in expected:
            raise self._refused(stage)

    # -- the sale ------------------------------------------------------------------------------
    def sign_in(self, script: SaleScript) -> None:
        """Sign the cashier in once, then start the reader (a card already in it is then seen)."""
        from pos.session import State

        if self.session.state == State.SIGNED_OUT:
            self._touch("sign_in", self.session.sign_in(script.cashier, script.cashier_pin, script.shift), State.IDLE)
        if not self._started:
            self.parts.reader.start()
            self._started = True

    def sale(self, script: SaleScript) -> dict[str, Any]:
        """Run one sale (and its void when asked); the outcome as a JSON-ready dict, never raises
        for a refusal."""
        try:
            return self._sale(script)
        except Refused as refused:
            self._leave()
            return refused.outcome

    def _sale(self, script: SaleScript) -> dict[str, Any]:
        from pos.session import State

        s = self.session
        self._settled: dict[str, Any] = {}
        self.sign_in(script)
        self._insert(script)
        if not self._pump(lambda: s.state not in (State.IDLE, State.VERIFYING), script.wait):
            return {"ok": False, "stage": "card", "refusal": "no_card", "detail": f"no card within {script.wait:g} s",
                    "message": "no card was inserted"}
        if s.notice == "charge_reported":  # an earlier charge this device never committed, reported now
            self._settled = {"charge_reported": {**s.notice_args, "message": s.notice_text()}}
        self._touch("card", True, State.HOUSEHOLD)
        assert s.entitlement is not None
        kind, _, rep = script.collector.partition(":")
        if kind == "representative" and not rep and s.entitlement.household.representatives:
            rep = s.entitlement.household.representatives[0].id
        self._touch("collector", s.choose_collector(kind, rep), State.PIN)
        self._touch("pin", s.submit_pin(script.pin), State.BASKET)
        for code, quantity in script.items.items():
            for _ in range(quantity):
                self._touch("basket", s.add(code), State.BASKET)
        self._touch("basket", s.to_confirm(), State.CONFIRM)
        self._touch("confirm", s.confirm(), State.DONE)
        sale = s.sale
        assert sale is not None
        outcome: dict[str, Any] = {
            "ok": True, "household": s.entitlement.household.id, "redemption_id": sale.redemption_id,
            "total": sale.total, "remaining": sale.remaining_after, "receipt_no": sale.receipt_no,
            "collector": sale.collector_name, "printed": sale.printed, "print_fault": sale.print_fault,
            "card_updated": sale.card_updated, "card_charged": s.mode == "card", "reader": self.reader_name(),
            **self._settled,
        }
        self._leave()
        if script.void_reason:
            outcome.update(self._void(sale.redemption_id, script))
        return outcome

    def _insert(self, script: SaleScript) -> None:
        if script.card is None:
            return
        if not self.parts.demo:
            raise Refused({"ok": False, "stage": "card", "refusal": "not_demo", "detail": "",
                           "message": "--card inserts a demo deck card: add --demo, or insert a card and use --wait"})
        if script.card not in DECK_ROLES:
            raise Refused({"ok": False, "stage": "card", "refusal": "unknown_card", "detail": script.card,
                           "message": f"--card is one of {', '.join(DECK_ROLES)}"})
        _wait(self.parts.deck_control.insert(self.parts.deck[DECK_ROLES.index(script.card)]))

    def _leave(self) -> None:
        """End the visit as the cashier does: the demo card comes out, the screen goes back to idle."""
        from pos.session import State

        s = self.session
        if self.parts.demo and s.card_present:
            _wait(self.parts.deck_control.pull())
            self._pump(lambda: not s.card_present, 10)
        if s.state == State.DONE:
            s.finish()
        elif s.state == State.ERROR:
            s.acknowledge()
        elif s.state != State.IDLE:
            s.cancel()

    def _void(self, redemption_id: str, script: SaleScript) -> dict[str, Any]:
        from pos.session import State

        s = self.session
        self._touch("void", s.open_history(), State.HISTORY)
        voided = s.void(redemption_id, script.void_reason, script.supervisor, script.supervisor_pin)
        result = {"voided": voided and s.notice == "sale_voided", "voided_receipt_no": s.notice_args.get("no"),
                  "void_notice": s.notice_text()}
        s.cancel()
        return result

    def reader_name(self) -> str:
        """The reader the card was read in (a PC/SC reader's name, or the in-process reader's)."""
        reader = self.parts.reader
        return getattr(reader, "reader", None) or getattr(reader, "name", "")

    def close(self) -> None:
        """Stop the reader and the demo deck and close the database (idempotent)."""
        if self._started:
            self.parts.reader.stop()
            self._started = False
        close = getattr(self.parts.deck_control, "close", None)
        if callable(close):
            close()
        self.parts.appliance.close()


def _wait(future: Any) -> None:
    """A PcscDeck answers with a Future (its process work runs on its own thread); the in-process deck at once."""
    if future is not None and hasattr(future, "result"):
        future.result(timeout=30)


def register(subs: argparse._SubParsersAction) -> None:
    """Add `ewarung sale` (pos.cli.main lists every subcommand module)."""
    p = subs.add_parser("sale", help="one sale at a headless counter, outcome as JSON (field tests, scripts)",
                        description=__doc__.split("\n\n", 1)[1].replace("\n", " "), epilog=EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo", action="store_true", help="sample city, virtual card deck and printer (as `ewarung demo`)")
    p.add_argument("--data-dir", type=Path, help="demo data directory (default ~/.local/share/ewarung-demo)")
    p.add_argument("--deck", choices=["auto", "fake"],
                   help="demo cards through pcscd + vpcd (auto) or in process (fake); default $EWARUNG_DEMO_DECK or auto")
    p.add_argument("--card", choices=DECK_ROLES, help="demo: insert this deck card (else wait for one in the reader)")
    p.add_argument("--wait", type=float, default=60.0, metavar="SECONDS", help="how long to wait for a card (default 60)")
    p.add_argument("--cashier", default="kasir1", help="cashier id (default kasir1)")
    p.add_argument("--cashier-pin", default="1234", help="cashier PIN (default 1234, the demo's)")
    p.add_argument("--shift", default=DEFAULT_SHIFT, choices=SHIFTS,
                   help=f"the cashier's shift (default {DEFAULT_SHIFT})")
    p.add_argument("--pin", default="1234", help="the card holder's PIN (default 1234, the demo deck's)")
    p.add_argument("--collector", default="holder",
                   help="holder, representative (the first registered) or representative:ID")
    p.add_argument("--item", action="append", required=True, metavar="CODE=QTY", type=_item,
                   help="a basket line (repeat for more)")
    p.add_argument("--void", dest="void_reason", default="", metavar="REASON", type=_void_reason,
                   help="void the sale right after; REASON is a code such as wrong_items (a wrong one lists them)")
    p.add_argument("--supervisor", default="spv1", help="supervisor id for --void (default spv1)")
    p.add_argument("--supervisor-pin", default="9999", help="supervisor PIN for --void (default 9999, the demo's)")
    p.add_argument("--language", choices=["id", "en"], help="language of the messages (default the config's)")
    p.set_defaults(func=run, counter_process=True)


def _item(text: str) -> tuple[str, int]:
    code, sep, qty = text.partition("=")
    if not code or (sep and not qty.isdigit()) or (sep and int(qty) < 1):
        raise argparse.ArgumentTypeError(f"{text!r} is not CODE=QTY (QTY at least 1)")
    return code, int(qty) if sep else 1


def _void_reason(text: str) -> str:
    """A void reason the core accepts (pos.redemption.VOID_REASONS), checked before any counter opens;
    "" (the default) is no void."""
    if not text:
        return text
    from pos.redemption import VOID_REASONS

    if text not in VOID_REASONS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a void reason: use one of {', '.join(VOID_REASONS)}")
    return text


def open_counter(config: Any, *, demo: bool, deck: str | None = None, language: str | None = None,
                 clock: Any = None) -> HeadlessCounter:
    """A headless counter over the counter's composition root (the demo's sample city when `demo`)."""
    from pos.roots.counter import build_counter

    return HeadlessCounter(build_counter(config, demo=demo, deck=deck, language=language, clock=clock))


def run(args: argparse.Namespace) -> int:
    """Run one sale from the command line and print its outcome as JSON."""
    from firmware_config.config import demo_config, load_config

    if args.config:
        config = load_config(args.config)
    else:
        config = demo_config(args.data_dir) if (args.demo or args.data_dir) else load_config(None)
    items: dict[str, int] = {}
    for code, qty in args.item:
        items[code] = items.get(code, 0) + qty
    script = SaleScript(items=items, card=args.card, pin=args.pin, collector=args.collector, cashier=args.cashier,
                        cashier_pin=args.cashier_pin, shift=args.shift, wait=args.wait, void_reason=args.void_reason,
                        supervisor=args.supervisor, supervisor_pin=args.supervisor_pin)
    counter = open_counter(config, demo=args.demo, deck=args.deck, language=args.language)
    try:
        outcome = counter.sale(script)
    finally:
        counter.close()
    print(json.dumps(outcome, ensure_ascii=False, indent=1))
    return 0 if outcome.get("ok") else 1
