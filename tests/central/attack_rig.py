"""The whole system as an attacker meets it, for the attack tests of issue #16 (tests/central/test_attacks.py).

Real parts only: PostgreSQL and mosquitto (tests/central/servers.py), pcscd + vpcd with virtual
cards (`ewarung card insert`), two shops each with its own device key, database, config and
`ewarung sync` process, their counters driven by `ewarung sale` processes (one vpcd slot per shop,
so both can sell at once), and the city's `ewarung central serve` on PostgreSQL.

The attacker is the shop owner with root on a device: they can copy the device key and write signed
messages into the device's outbox (its own `ewarung sync` then publishes them, in sequence), run the
device's own RedemptionService with any policy, and drive any card whose PIN they know from a
terminal of their own (the project's CardClient talking straight to the card). What they cannot
do is make a card sign what it did not charge.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import subprocess
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pos.sample_city import demo_key, write_beneficiary_csv
from pos.signing import public_pem
from tests.central.devices import ROOT, Shop, clear_retained, publish_status, stop_process
from tests.conftest import run_ewarung as ewarung
from tests.integration.pcsc_stack import wait_for

PIN = "123456"
CITY = "samarinda"
SCHEMAS = {"redemption": "ewarung.redemption/2", "void": "ewarung.void/1", "event": "ewarung.event/1"}


def token_json(token: bytes | str) -> dict:
    """The JSON payload of a JWS compact token (no check: the city does that)."""
    part = (token.decode() if isinstance(token, bytes) else token).split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


class Counter(Shop):
    """One shop: a Shop (config, key, sync process) whose counter reads vpcd slot `slot`."""

    def __init__(self, root: Path, device_id: str, port: int, slot: int) -> None:
        super().__init__(root, device_id, port)
        self.slot = slot
        self.reader = f"Virtual PCD 00 0{slot}"
        self.config.write_text(self.config.read_text().replace('"Virtual PCD 00 00"', f'"{self.reader}"'))

    def messages(self, kind: str | None = None) -> list[dict]:
        """The device's outbox as the city will read it: (msg id, seq, kind, envelope) per row."""
        rows = self.sql("SELECT msg_id, seq, kind, payload FROM outbox_message ORDER BY seq")
        out = [{"msg_id": m, "seq": s, "kind": k, "envelope": token_json(bytes(p))} for m, s, k, p in rows]
        return [r for r in out if kind is None or r["kind"] == kind]

    def sale_message(self, redemption_id: str) -> dict:
        """The outbox row of one of this device's sales: the first one naming it (an attacker may
        have queued more with the same id)."""
        found = [m for m in self.messages("redemption") if m["envelope"]["body"]["redemption_id"] == redemption_id]
        assert found, f"{self.device_id} has no message for sale {redemption_id}"
        return found[0]

    def events(self, event: str) -> list[dict]:
        """This device's queued events of one kind (their bodies)."""
        return [m["envelope"]["body"] for m in self.messages("event") if m["envelope"]["body"].get("event") == event]


class CentralServe:
    """`ewarung central serve` on PostgreSQL and the test broker, as the city runs it."""

    def __init__(self, db_url: str, port: int, log_path: Path, *extra: str) -> None:
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pos.cli.main", "central", "--db", db_url, "serve", "--broker", f"127.0.0.1:{port}",
             "--http", "off", "--group", "attacks", "--client-id", "central-attacks", *extra],
            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=self.log, stderr=self.log, cwd=ROOT)

    def stop(self) -> None:
        """SIGTERM, as systemd stops it."""
        stop_process(self.proc)
        self.log.close()


@dataclass
class HonestSale:
    """A sale an honest cashier made: it must land in the city's totals exactly once."""

    shop: Counter
    redemption_id: str
    total: int
    voided: bool = False


@dataclass
class AttackRig:
    """One shared stack per test module (see the module docstring)."""

    root: Path
    db_url: str
    port: int
    pcsc: object
    shops: list[Counter] = field(default_factory=list)
    honest: list[HonestSale] = field(default_factory=list)
    households: dict[str, list[str]] = field(default_factory=dict)
    central: CentralServe | None = None
    db: object = None

    # --- the stack -------------------------------------------------------------------
    def start(self) -> AttackRig:
        """Ledger published, devices registered, central subscribed, both shops synced to ledger v1."""
        from pos import cashiers
        from pos.clock import SystemClock
        from pos.db import open_database
        from sync.central.store import DeviceState, open_central

        now = SystemClock().now()
        csv_path = self.root / "list.csv"
        write_beneficiary_csv(csv_path, households=60, seed=2026, now=now)
        today = now.date()
        for row in csv.DictReader(csv_path.open()):
            if row["status"] == "active" and row["valid_from"] <= today.isoformat() <= row["valid_until"]:
                self.households.setdefault(row["plan"], []).append(row["household_id"])
            elif row["status"] != "active":
                self.households.setdefault(row["status"], []).append(row["household_id"])
            else:  # active, but not on this date
                self.households.setdefault("out_of_dates", []).append(row["household_id"])
        out = ewarung("central", "--db", self.db_url, "publish-ledger", str(csv_path))
        assert out.returncode == 0, out.stderr
        self.shops = [Counter(self.root, "EW-ATK-0001", self.port, 0), Counter(self.root, "EW-ATK-0002", self.port, 1)]
        for shop in self.shops:
            pub = shop.dir / "device.pub.pem"
            pub.write_bytes(shop.public_pem())
            out = ewarung("central", "--db", self.db_url, "device", "add", shop.device_id, "--key", str(pub),
                          "--shop", f"SHOP-{shop.device_id[-4:]}")
            assert out.returncode == 0, out.stderr
        self.db = open_central(self.db_url)
        issuer = self.root / "issuer.pub.pem"  # the city names the issuer it trusts, as in production
        issuer.write_bytes(public_pem(demo_key("issuer").public_key()))
        self.central = CentralServe(self.db_url, self.port, self.root / "central.log", "--issuer-key", str(issuer))
        publish_status(self.port, self.shops[0])
        wait_for(lambda: DeviceState.get_or_none(DeviceState.device == self.shops[0].device_id), 30,
                 "central serve subscribed and storing")
        for shop in self.shops:
            shop.start_sync()
        for shop in self.shops:
            wait_for(lambda s=shop: s.ledger_version() >= 1, 60, f"{shop.device_id} applying ledger v1")
            shop_db = open_database(shop.db_path)
            try:
                cashiers.add_cashier("kasir1", "Kasir Satu", "1234")
                cashiers.add_cashier("spv1", "Penyelia", "9999", role="supervisor")
            finally:
                shop_db.close()
        return self

    def stop(self) -> None:
        """Stop every process this rig started and clear what it left retained on the broker."""
        from pos.messages import device_topic, ledger_topic

        for shop in self.shops:
            shop.stop_sync()
        if self.db:
            self.keep_evidence()
        clear_retained(self.port, [device_topic(s.device_id, "status") for s in self.shops]
                       + [ledger_topic(CITY, leaf) for leaf in ("delta", "hotlist")])
        if self.central:
            self.central.stop()
        if self.db:
            self.db.close()

    def keep_evidence(self) -> None:
        """What the city made of the run, for docs/reliability.md: artifacts/attacks/quarantine.json
        (every quarantined message, with its rule and reason), honest.json (the honest sales and whether
        each is in the totals), totals.json (every sale the city counts) and report.csv (`ewarung central
        report`)."""
        from tests.conftest import ARTIFACTS

        out = ARTIFACTS / "attacks"
        out.mkdir(parents=True, exist_ok=True)
        try:
            rows = self.quarantine()
        except Exception as exc:  # noqa: BLE001 - evidence is best effort; the tests said what failed
            rows = [{"error": str(exc)}]
        (out / "quarantine.json").write_text(json.dumps(rows, indent=1, default=str))
        (out / "honest.json").write_text(json.dumps(
            [{"device": h.shop.device_id, "redemption_id": h.redemption_id, "total": h.total, "voided": h.voided,
              "in_totals": self.in_totals(h.redemption_id)} for h in self.honest], indent=1))
        from sync.central.store import RedemptionRecord

        (out / "totals.json").write_text(json.dumps(list(RedemptionRecord.select(
            RedemptionRecord.id, RedemptionRecord.device, RedemptionRecord.household, RedemptionRecord.period,
            RedemptionRecord.mode, RedemptionRecord.total, RedemptionRecord.created_at).dicts()), indent=1))
        (out / "report.csv").write_text(self.central_cli("report", "--csv", "-").stdout)

    def household(self, plan: str) -> str:
        """A household of this plan no test has used yet (each attack works on its own households)."""
        return self.households[plan].pop(0)

    # --- cards and counters --------------------------------------------------------------
    def issue(self, name: str, household: str, card_id: str | None = None, *extra: str) -> Path:
        """A card for the household, issued with the card tooling (`ewarung card issue`, DEMO issuer
        unless `extra` names another `--issuer-key`)."""
        path = self.root / "cards" / f"{name}.json"
        path.parent.mkdir(exist_ok=True)
        today = date.today()
        out = ewarung("card", "issue", str(path), "--household", household, "--card-id",
                      card_id or f"CARD-{household}-{name}", "--pin", PIN,
                      "--valid-from", date(today.year, 1, 1).isoformat(),
                      "--valid-until", date(today.year + 1, 12, 31).isoformat(), *extra)
        assert out.returncode == 0, out.stderr
        return path

    @contextmanager
    def card_in(self, shop: Counter, cardfile: Path, *extra: str):
        """The card held in the shop's reader (vpcd slot) for the duration of the block."""
        try:
            proc = self.pcsc.insert(cardfile, *extra, slot=shop.slot)
        except AssertionError as exc:  # say whose pcscd it was: another test on it without the lock?
            daemons = subprocess.run(["pgrep", "-a", "pcscd"], capture_output=True, text=True).stdout.strip()
            raise AssertionError(f"{exc}; pcscd {'ours' if self.pcsc.owned else 'NOT ours'}: {daemons!r}") from exc
        try:
            yield proc
        finally:
            self.pcsc.remove(proc)
            self.pcsc.wait_card_state(present=False, reader=shop.reader)

    def sale_process(self, shop: Counter, items: dict[str, int], *extra: str) -> subprocess.Popen:
        """`ewarung sale` at the shop's counter, waiting for the card in its reader."""
        argv = [sys.executable, "-m", "pos.cli.main", "--config", str(shop.config), "sale", "--pin", PIN,
                "--wait", "20", "--language", "en", *extra]
        for code, qty in items.items():
            argv += ["--item", f"{code}={qty}"]
        return subprocess.Popen(argv, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    @staticmethod
    def outcome(proc: subprocess.Popen) -> dict:
        """The JSON `ewarung sale` printed (exit 0 sold, 1 refused); anything else fails the test."""
        out, err = proc.communicate(timeout=90)
        assert proc.returncode in (0, 1), f"ewarung sale exited {proc.returncode}: {err[-2000:]}"
        return json.loads(out)

    def sell(self, shop: Counter, cardfile: Path, items: dict[str, int], *extra: str,
             card_args: tuple[str, ...] = ()) -> dict:
        """One visit at the counter: the card in the reader, `ewarung sale` from sign-in to receipt."""
        with self.card_in(shop, cardfile, *card_args):
            return self.outcome(self.sale_process(shop, items, *extra))

    def sell_honestly(self, shop: Counter, cardfile: Path, items: dict[str, int], *extra: str) -> dict:
        """A sale that must succeed, remembered as one that must land at the city exactly once."""
        out = self.sell(shop, cardfile, items, *extra)
        assert out["ok"], out
        return self.remember(shop, out)

    def remember(self, shop: Counter, out: dict) -> dict:
        """Note a sale `ewarung sale` reported made, as one the city must count exactly once."""
        self.honest.append(HonestSale(shop, out["redemption_id"], out["total"], bool(out.get("voided"))))
        return out

    @contextmanager
    def wedge(self, shop: Counter, swallow: str, then: str):
        """A wedge process between the shop's reader and the card (tests/central/card_wedge.py): insert
        the card with `--host ::1` inside the block. Yields the wedge's log path."""
        log = self.root / f"wedge-{uuid.uuid4().hex[:8]}.log"
        proc = subprocess.Popen([sys.executable, "-m", "tests.central.card_wedge", "--slot", str(shop.slot),
                                 "--swallow", swallow, "--then", then, "--log", str(log)],
                                env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
        try:
            wait_for(lambda: log.exists() and "listening" in log.read_text(), 10, "the wedge listening")
            yield log
        finally:
            stop_process(proc)

    # --- the attacker's tools -------------------------------------------------------------
    @contextmanager
    def device_db(self, shop: Counter):
        """The shop's own database, opened as root on the device can (the sync process keeps running)."""
        from pos.db import open_database

        db = open_database(shop.db_path)
        try:
            yield db
        finally:
            db.close()

    def forge(self, shop: Counter, kind: str, body: dict, created_at: str | None = None) -> str:
        """A message signed with the shop's device key (copied by its owner) and written into its
        outbox with the next sequence number: the shop's `ewarung sync` publishes it like any other.
        `created_at` (default now) is whatever time the attacker writes."""
        from pos import settings
        from pos.clock import SystemClock, iso
        from pos.db import OutboxMessage, durable_transaction
        from pos.messages import device_topic, sign_envelope
        from pos.signing import EcdsaSigner

        with self.device_db(shop) as db, durable_transaction(db):
            seq = settings.next_sequence()
            msg_id = str(uuid.uuid4())
            created_at = created_at or iso(SystemClock().now())
            envelope = {"schema": SCHEMAS[kind], "id": msg_id, "device": shop.device_id, "seq": seq,
                        "created_at": created_at, "body": body}
            OutboxMessage.create(seq=seq, msg_id=msg_id, kind=kind, topic=device_topic(shop.device_id, kind),
                                 payload=sign_envelope(envelope, EcdsaSigner(shop.key, shop.device_id)),
                                 created_at=created_at)
        return msg_id

    def rogue_terminal(self, cardfile: Path, pin: str = PIN, issuer_keys: dict | None = None):
        """The attacker's own terminal on a card whose PIN they know: the project's CardClient
        straight on the card (no counter, no rules; it trusts `issuer_keys`, default the DEMO
        issuer); returns (client, AuthenticatedCard)."""
        from hardware.card.applet import Applet
        from hardware.card.cardfile import CardFile
        from hardware.card.fake import FakeReader, demo_issuer_keys

        reader = FakeReader(issuer_keys or demo_issuer_keys())
        reader.insert(Applet(CardFile.load(cardfile)))
        client = reader.open_session()
        card = client.authenticate()
        client.verify_pin(pin)
        return client, card

    # --- the city --------------------------------------------------------------------------
    def stored(self, msg_id: str) -> bool:
        """Has central stored (and so acknowledged) this message?"""
        from sync.central.store import Message

        return Message.get_or_none(Message.id == msg_id) is not None

    def wait_stored(self, *msg_ids: str, timeout: float = 40) -> None:
        """Wait until central stored every one of these messages."""
        wait_for(lambda: all(self.stored(m) for m in msg_ids), timeout, f"central storing {msg_ids}")

    def wait_drained(self, timeout: float = 60) -> None:
        """Both shops' outboxes fully acknowledged by central."""
        for shop in self.shops:
            wait_for(lambda s=shop: not s.outbox().get("queued") and not s.outbox().get("published"), timeout,
                     f"{shop.device_id}'s outbox acknowledged (now {shop.outbox()})")

    def quarantine(self) -> list[dict]:
        """The city's quarantine table (issue #16: central_quarantine), one dict per row."""
        cursor = self.db.execute_sql("SELECT * FROM central_quarantine")
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def quarantined(self, msg_id: str) -> list[dict]:
        """The quarantine rows of one message."""
        return [q for q in self.quarantine() if msg_id in (q.get("msg_id"), q.get("message_id"), q.get("id"))]

    def expect_quarantined(self, msg_id: str, *words: str) -> list[dict]:
        """Wait for the city to quarantine a message; every row critical, its rule or reason naming
        `words` (the check that caught it, not merely any check)."""
        rows = wait_for(lambda: self.quarantined(msg_id), 15, f"message {msg_id} quarantined")
        assert {r["severity"] for r in rows} == {"critical"}, rows
        said = " ".join(f"{r.get('rule', '')} {r['reason']}" for r in rows)
        assert all(w in said for w in words), (words, rows)
        return rows

    def city_sales(self, household: str) -> list[str]:
        """The redemption ids the city holds for a household (counted or voided, not quarantined)."""
        from sync.central.store import RedemptionRecord

        return [r.id for r in RedemptionRecord.select().where(RedemptionRecord.household == household)]

    def in_totals(self, redemption_id: str) -> bool:
        """Is this sale in the city's totals (central_redemption, and not voided)?"""
        from sync.central.store import RedemptionRecord, VoidRecord

        return (RedemptionRecord.get_or_none(RedemptionRecord.id == redemption_id) is not None
                and not VoidRecord.select().where(VoidRecord.redemption_id == redemption_id).exists())

    def central_cli(self, *args: str):
        """`ewarung central --db URL ARGS...` as the city's operator runs it."""
        return ewarung("central", "--db", self.db_url, *args)

    def report(self, *extra: str) -> tuple[int, list[dict]]:
        """`ewarung central report --csv -`: its exit code and findings."""
        out = ewarung("central", "--db", self.db_url, "report", "--csv", "-", *extra)
        assert out.returncode in (0, 1), out.stderr
        return out.returncode, list(csv.DictReader(io.StringIO(out.stdout)))

    def assert_honest_landed(self) -> None:
        """Every honest sale so far is at the city exactly once: its message stored, its sale in the
        totals (unless its own shop voided it), nothing of it quarantined."""
        from sync.central.store import Message, RedemptionRecord

        self.wait_drained()
        assert self.honest, "no honest sale was made: the check would prove nothing"
        for sale in self.honest:
            msg = sale.shop.sale_message(sale.redemption_id)
            assert Message.select().where(Message.id == msg["msg_id"]).count() == 1, sale
            record = RedemptionRecord.get_or_none(RedemptionRecord.id == sale.redemption_id)
            assert record is not None and (record.device, record.msg_id, record.total) == \
                (sale.shop.device_id, msg["msg_id"], sale.total), sale
            assert self.in_totals(sale.redemption_id) != sale.voided, sale
            assert not self.quarantined(msg["msg_id"]), (sale, self.quarantined(msg["msg_id"]))

