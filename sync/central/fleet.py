"""The fleet page: one look at every device (online, queue, ledger, last seen, sales today) and a
chart of redemptions per day. Plain HTML with an inline SVG chart, no scripts, no external
assets; served on loopback by default (put it behind the city's reverse proxy, with TLS, to share
it). Only signed-in accounts see it (sync/central/fleet_auth.py)."""

from __future__ import annotations

import html
import json
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from peewee import fn

from pos.clock import Clock, SystemClock, iso, parse_iso
from pos.period import WITA
from sync.central import software
from sync.central.convergence import divergences
from sync.central.fleet_auth import FleetAuth, send
from sync.central.store import (
    Device,
    DeviceState,
    LedgerRelease,
    RedemptionRecord,
    SequenceGap,
    central_db,
)


@dataclass
class DeviceRow:
    """One device as the fleet page shows it: is it heard from, how far behind, what is broken."""

    device: str
    shop: str
    online: bool
    stale: bool  # no word for longer than the offline threshold
    queue_depth: int
    ledger_version: int
    last_seen: str
    last_seen_ago: str
    redemptions_today: int
    amount_today: int
    missing: int
    printer: str
    reader: str
    software: str = ""  # the heartbeat's software field (sync.central.software)


def _day_bounds(day, tz=WITA) -> tuple[str, str]:
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    return iso(start), iso(start + timedelta(days=1))


def _ago(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "never"
    s = int((now - then).total_seconds())
    if s < 60:
        return f"{max(s, 0)} s ago"
    if s < 3600:
        return f"{s // 60} min ago"
    if s < 86400:
        return f"{s // 3600} h ago"
    return f"{s // 86400} d ago"


def fleet_data(now: datetime, days: int = 14, offline_after: timedelta = timedelta(minutes=10)) -> dict:
    """Everything the fleet page shows, as plain data, so the page and its tests read the same numbers."""
    with central_db.connection_context():
        today = now.astimezone(WITA).date()
        t0, t1 = _day_bounds(today)
        per_device = {
            d: (n, s) for d, n, s in RedemptionRecord.select(
                RedemptionRecord.device, fn.COUNT(RedemptionRecord.id), fn.SUM(RedemptionRecord.total)
            ).where((RedemptionRecord.created_at >= t0) & (RedemptionRecord.created_at < t1))
            .group_by(RedemptionRecord.device).tuples()
        }
        gaps = dict(SequenceGap.select(SequenceGap.device, fn.COUNT(SequenceGap.seq)).group_by(SequenceGap.device).tuples())
        states = {s.device: s for s in DeviceState.select()}
        registry = {d.id: d for d in Device.select()}
        rows = []
        for dev in sorted(set(states) | set(registry)):
            s = states.get(dev)
            seen = parse_iso(s.last_seen) if s and s.last_seen else None
            stale = seen is None or now - seen > offline_after
            n, amount = per_device.get(dev, (0, 0))
            rows.append(DeviceRow(
                dev, registry[dev].shop_id if dev in registry else "?", bool(s and s.online and not stale), stale,
                s.queue_depth if s else 0, s.ledger_version if s else 0, s.last_seen if s else "",
                _ago(seen, now), n, int(amount or 0), gaps.get(dev, 0), s.printer if s else "", s.reader if s else "",
                software=s.software_version if s else "",
            ))
        chart = []
        for i in range(days - 1, -1, -1):
            day = today - timedelta(days=i)
            a, b = _day_bounds(day)
            n, amount = RedemptionRecord.select(fn.COUNT(RedemptionRecord.id), fn.SUM(RedemptionRecord.total)).where(
                (RedemptionRecord.created_at >= a) & (RedemptionRecord.created_at < b)).tuples().get()
            chart.append({"day": day.isoformat(), "redemptions": n, "amount": int(amount or 0)})
        latest = LedgerRelease.select(fn.MAX(LedgerRelease.version)).where(LedgerRelease.kind != "hotlist").scalar() or 0
        not_converged = [asdict(d) for d in divergences()]
    return {
        "not_converged": not_converged,
        "generated_at": iso(now), "today": today.isoformat(), "ledger_version": latest,
        "software_version": software.newest([r.software for r in rows]),
        "devices": [asdict(r) for r in rows], "per_day": chart,
        "summary": {
            "devices": len(rows), "online": sum(r.online for r in rows),
            "redemptions_today": sum(r.redemptions_today for r in rows),
            "amount_today": sum(r.amount_today for r in rows),
            "missing": sum(r.missing for r in rows),
            "queued": sum(r.queue_depth for r in rows),
        },
    }


def _wita(stamp: str) -> str:
    return parse_iso(stamp).astimezone(WITA).strftime("%d %b %Y %H:%M")


def _rp(n: int) -> str:
    return "Rp " + f"{n:,}".replace(",", ".")


def _chart_svg(per_day: list[dict], width: int = 1180, height: int = 230) -> str:
    left, bottom, top = 48, 28, 16
    inner_w, inner_h = width - left - 12, height - bottom - top
    peak = max([d["redemptions"] for d in per_day] + [1])
    step = 10 ** max(len(str(peak)) - 1, 0)
    scale_max = ((peak + step - 1) // step) * step or 1
    bw = inner_w / len(per_day)
    parts = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="Redemptions per day">']
    for k in range(5):
        v = scale_max * k / 4
        y = top + inner_h - inner_h * k / 4
        parts.append(f'<line x1="{left}" x2="{width - 12}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" class="axis" text-anchor="end">{int(v):,}</text>')
    for i, d in enumerate(per_day):
        h = inner_h * d["redemptions"] / scale_max
        x = left + i * bw + bw * 0.18
        y = top + inner_h - h
        label = d["day"][8:10] + "/" + d["day"][5:7]
        today = i == len(per_day) - 1
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw * 0.64:.1f}" height="{max(h, 0):.1f}" rx="3" '
                     f'class="{"bar today" if today else "bar"}"><title>{d["day"]}: {d["redemptions"]} '
                     f'({_rp(d["amount"])})</title></rect>')
        if d["redemptions"]:
            parts.append(f'<text x="{x + bw * 0.32:.1f}" y="{y - 5:.1f}" class="val" text-anchor="middle">{d["redemptions"]}</text>')
        parts.append(f'<text x="{x + bw * 0.32:.1f}" y="{height - 8}" class="axis" text-anchor="middle">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


CSS = """
*{box-sizing:border-box} body{margin:0;font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:#1d2733;background:#f3f5f8} header{background:#0f5132;color:#fff;padding:14px 28px;display:flex;
align-items:baseline;gap:18px} header h1{font-size:21px;margin:0} header .sub{opacity:.85;font-size:14px}
header .gen{margin-left:auto;font-size:13px;opacity:.8} main{padding:18px 28px}
.cards{display:grid;grid-template-columns:repeat(5,1fr);gap:14px;margin-bottom:18px}
.card{background:#fff;border-radius:10px;padding:12px 16px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.card .k{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#5b6773}
.card .v{font-size:26px;font-weight:650;margin-top:2px} .card .v.bad{color:#b02a37}
section{background:#fff;border-radius:10px;padding:14px 18px;box-shadow:0 1px 3px rgba(0,0,0,.08);margin-bottom:18px}
section h2{font-size:16px;margin:0 0 10px} table{width:100%;border-collapse:collapse;font-size:14px}
th{text-align:left;font-size:12px;text-transform:uppercase;letter-spacing:.03em;color:#5b6773;border-bottom:2px solid #e3e7ec;padding:7px 8px}
td{padding:8px;border-bottom:1px solid #edf0f3} td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.pill{display:inline-block;padding:2px 10px;border-radius:999px;font-size:12px;font-weight:600}
.on{background:#d1f0dc;color:#0f5132} .off{background:#f8d7da;color:#842029} .warn{color:#b45309;font-weight:600}
.bad{color:#b02a37;font-weight:600} .muted{color:#8a96a3}
.grid{stroke:#e6e9ee} .axis{fill:#6b7785;font-size:12px} .val{fill:#334155;font-size:11px}
.bar{fill:#2f8f5b} .bar.today{fill:#0f5132}
.who{font-size:13px;margin:0 0 0 18px} .who button{margin-left:6px;font-size:12px;padding:2px 8px}
"""


def _software_cell(label: str, latest: str) -> str:
    """The device's release; amber when it is behind the fleet's newest, red after a rollback."""
    if not label:
        return '<span class="muted">-</span>'
    if software.rolled_back_from(label):
        return f'<span class="bad" title="rolled back after a failed health check">{html.escape(label)}</span>'
    if software.left_behind(label, latest):
        return f'<span class="warn" title="behind {html.escape(latest)}">{html.escape(label)}</span>'
    return html.escape(label)


def render_page(data: dict, account_bar: str = "") -> str:
    """The page as one self-contained HTML document: no scripts or assets to serve or to go stale."""
    s = data["summary"]
    esc = html.escape
    rows = []
    for d in data["devices"]:
        status = '<span class="pill on">online</span>' if d["online"] else '<span class="pill off">offline</span>'
        behind = data["ledger_version"] and d["ledger_version"] < data["ledger_version"]
        lv = f'<span class="{"warn" if behind else ""}">v{d["ledger_version"]}</span>' if d["ledger_version"] else '<span class="muted">-</span>'
        q = f'<span class="{"warn" if d["queue_depth"] >= 100 else ""}">{d["queue_depth"]:,}</span>'
        missing = f'<span class="bad">{d["missing"]}</span>' if d["missing"] else '<span class="muted">0</span>'
        health = " / ".join(
            esc(x) if x == "ok" else f'<span class="warn">{esc(x)}</span>' for x in (d["reader"], d["printer"]) if x
        ) or '<span class="muted">-</span>'
        seen_cls = "bad" if d["stale"] else ""
        sw = _software_cell(d["software"], data["software_version"])
        rows.append(
            f"<tr><td><b>{esc(d['device'])}</b></td><td>{esc(d['shop'])}</td><td>{status}</td><td class=num>{q}</td>"
            f"<td class=num>{lv}</td><td title='{esc(d['last_seen'])}' class='{seen_cls}'>{esc(d['last_seen_ago'])}</td>"
            f"<td class=num>{d['redemptions_today']:,}</td><td class=num>{_rp(d['amount_today'])}</td>"
            f"<td class=num>{missing}</td><td>{health}</td><td>{sw}</td></tr>"
        )
    if not rows:
        rows.append('<tr><td colspan=11 class="muted">No devices yet: register one with '
                    '<code>ewarung central device add ID --key PUB.pem</code>.</td></tr>')
    off = s["devices"] - s["online"]
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="30"><title>E-Warung fleet</title><style>{CSS}</style></head><body>
<header><h1>E-Warung fleet</h1><span class="sub">Armada perangkat &middot; Samarinda</span>
<span class="gen">updated {esc(_wita(data['generated_at']))} WITA &middot; refreshes every 30 s</span>{account_bar}</header>
<main><div class="cards">
<div class="card"><div class="k">Devices online</div><div class="v">{s['online']} <span class="muted" style="font-size:17px">/ {s['devices']}</span></div></div>
<div class="card"><div class="k">Offline</div><div class="v {'bad' if off else ''}">{off}</div></div>
<div class="card"><div class="k">Redemptions today</div><div class="v">{s['redemptions_today']:,}</div></div>
<div class="card"><div class="k">Value today</div><div class="v">{_rp(s['amount_today'])}</div></div>
<div class="card"><div class="k">City ledger</div><div class="v">v{data['ledger_version']}</div></div>
</div>
<section><h2>Devices</h2><table><thead><tr><th>Device</th><th>Shop</th><th>Status</th><th class=num>Queue</th>
<th class=num>Ledger</th><th>Last seen</th><th class=num>Sales today</th><th class=num>Value today</th>
<th class=num>Missing msgs</th><th>Reader / printer</th><th>Software</th></tr></thead><tbody>{''.join(rows)}</tbody></table></section>
{_convergence_section(data.get("not_converged", []))}
<section><h2>Redemptions per day (last {len(data['per_day'])} days, WITA)</h2>{_chart_svg(data['per_day'])}</section>
</main></body></html>"""


def _convergence_section(rows: list[dict]) -> str:
    """Devices whose ledger is not the city's (stale hotlist, different content), from their heartbeats."""
    if not rows:
        return '<section><h2>Ledger convergence</h2><p class="muted">every reporting device holds the city\'s ledger</p></section>'
    items = "".join(f"<tr><td>{html.escape(r['device'])}</td><td class=num>v{r['version']}</td>"
                    f"<td class=warn>{html.escape(r['reason'])}</td></tr>" for r in rows)
    return ("<section><h2>Ledger convergence</h2><table><thead><tr><th>Device</th><th class=num>Ledger</th>"
            f"<th>Not converged</th></tr></thead><tbody>{items}</tbody></table></section>")


class FleetServer:
    """ThreadingHTTPServer on loopback: / (page), /api/fleet.json, /healthz; /login and /logout
    (sync/central/fleet_auth.py): every page but /healthz wants a signed-in account."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8470, clock: Clock | None = None,
                 offline_after: timedelta = timedelta(minutes=10)) -> None:
        clock = clock or SystemClock()
        auth = FleetAuth(clock)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    return self._send(200, "text/plain", b"ok\n")
                if auth.handle(self, "GET", path):
                    return None
                if path not in ("/", "/api/fleet.json"):
                    return self._send(404, "text/plain", b"not found\n")
                session = auth.allowed(self, path)
                if session is None:
                    return None
                try:
                    data = fleet_data(clock.now(), offline_after=offline_after)
                except Exception as exc:  # the page must say what is wrong, not hang
                    return self._send(500, "text/plain", f"fleet data unavailable: {exc}\n".encode())
                if path == "/":
                    page = render_page(data, auth.signed_in_bar(session))
                    return self._send(200, "text/html; charset=utf-8", page.encode())
                return self._send(200, "application/json", json.dumps(data).encode())

            def do_POST(self) -> None:  # noqa: N802
                if not auth.handle(self, "POST", self.path.split("?", 1)[0]):
                    self._send(404, "text/plain", b"not found\n")

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                send(self, code, ctype, body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="fleet-http", daemon=True)

    def start(self) -> FleetServer:
        """Serve in a daemon thread beside the consumer, so the page never holds up storage."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port (tests start several servers in one process)."""
        self.httpd.shutdown()
        self.httpd.server_close()
