"""Who may see the fleet page: accounts with scrypt-hashed passwords, server-side sessions, and
forms that a page on another site cannot submit for a signed-in user.

The page lists every device of the city; a city will put it on its network. So every page but
`/healthz` wants a session: `/` sends an anonymous visitor to `/login`, `/api/fleet.json` answers
401. Passwords are stored as scrypt hashes (`ewarung central fleet-account add NAME`); a session is
a random token in an HttpOnly, SameSite=Lax cookie (only GETs follow a link from elsewhere), kept
in this process's memory (a restart signs everyone out) and ended by `/logout` or after
`SESSION_TTL` idle. CSRF: the login form
carries a token that must equal a cookie set with the form (double submit), the logout form the
session's own token, and a POST whose Origin names another site is refused whatever it carries.
Five wrong passwords for a name lock that name for `LOCKOUT`.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

from peewee import CharField

from pos.clock import Clock, iso
from sync.central.store import CentralModel, central_db

SCRYPT = {"n": 2**14, "r": 8, "p": 1}
SESSION_COOKIE = "ewarung_fleet"
LOGIN_COOKIE = "ewarung_fleet_login"
SESSION_TTL = timedelta(hours=8)
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
MAX_FORM_BYTES = 4096
USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")


class FleetAccount(CentralModel):
    """A person who may see the fleet page; only the scrypt hash of the password is kept."""

    username = CharField(primary_key=True)
    password_hash = CharField()
    created_at = CharField()

    class Meta:
        table_name = "central_fleet_account"


class AccountError(ValueError):
    """An account cannot be added or removed; the message says why."""


def hash_password(password: str, salt: bytes | None = None) -> str:
    """scrypt (memory-hard: a stolen database costs an attacker dearly per guess), self-describing."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, **SCRYPT)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${salt.hex()}${digest.hex()}"


def check_password(stored: str, password: str) -> bool:
    """Constant-time comparison against a stored hash, with the parameters it was made with."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(digest) // 2)
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


_DUMMY_HASH = hash_password("not an account", b"\0" * 16)  # unknown names cost as much as known ones


def ensure_table() -> None:
    """The accounts table lives in the central database, made on first use."""
    FleetAccount.create_table(safe=True)


def add_account(username: str, password: str, now: datetime, replace: bool = False) -> None:
    """Add (or, with `replace`, re-password) an account."""
    if not username or len(username) > 64 or set(username) - USERNAME_CHARS:
        raise AccountError(f"account name {username!r}: use 1 to 64 of A-Z a-z 0-9 . _ - @")
    if len(password) < 10:
        raise AccountError("a fleet page password has at least 10 characters")
    ensure_table()
    with central_db.atomic():
        exists = FleetAccount.get_or_none(FleetAccount.username == username) is not None
        if exists and not replace:
            raise AccountError(f"account {username} exists already (use --replace to set a new password)")
        FleetAccount.insert(username=username, password_hash=hash_password(password),
                            created_at=iso(now)).on_conflict_replace().execute()


def remove_account(username: str) -> None:
    """Remove an account; its open sessions end at their next request (the account is looked up)."""
    ensure_table()
    if not FleetAccount.delete().where(FleetAccount.username == username).execute():
        raise AccountError(f"no account {username}")


def account_names() -> list[str]:
    """Every account name, for `fleet-account list`."""
    ensure_table()
    return [a.username for a in FleetAccount.select().order_by(FleetAccount.username)]


@dataclass
class Session:
    """A signed-in visitor: who, the token their forms must carry, and when the sign-in lapses."""

    user: str
    csrf: str
    expires: float


LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>E-Warung fleet: sign in</title>
<style>body{{margin:0;font:16px/1.4 system-ui,sans-serif;background:#f3f5f8;color:#1d2733}}
form{{max-width:340px;margin:12vh auto;background:#fff;padding:24px 28px;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.1)}}
h1{{font-size:20px;margin:0 0 16px;color:#0f5132}} label{{display:block;margin:10px 0 4px;font-size:14px}}
input{{width:100%;padding:8px;font-size:16px;box-sizing:border-box}} button{{margin-top:16px;width:100%;padding:10px;
font-size:16px;background:#0f5132;color:#fff;border:0;border-radius:6px}} .err{{color:#b02a37;font-size:14px}}</style>
</head><body><form method="post" action="/login"><h1>E-Warung fleet: sign in</h1>{error}
<input type="hidden" name="csrf" value="{csrf}">
<label for="username">Account</label><input id="username" name="username" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form></body></html>"""


class FleetAuth:
    """The fleet server's gate (FleetServer calls `handle` and `allowed` from its request handler)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        with central_db.connection_context():
            ensure_table()

    # --- the gate ---------------------------------------------------------------------------------
    def handle(self, h, method: str, path: str) -> bool:
        """Serve /login and /logout; True when this request was answered here."""
        if path == "/login" and method == "GET":
            self._login_page(h)
            return True
        if path == "/login" and method == "POST":
            self._login(h)
            return True
        if path == "/logout" and method == "POST":
            self._logout(h)
            return True
        return False

    def allowed(self, h, path: str) -> Session | None:
        """The visitor's session, or None after answering (to /login for pages, 401 for the API)."""
        session = self.session(h)
        if session is not None:
            return session
        if path.startswith("/api/"):
            send(h, 401, "text/plain", b"sign in first: /login\n")
        else:
            send(h, 303, "text/plain", b"", {"Location": "/login"})
        return None

    def session(self, h) -> Session | None:
        """The visitor's live session from their cookie, or None: every page and API call asks this first."""
        token = _cookie(h, SESSION_COOKIE)
        now = time.monotonic()
        with self._lock:
            s = self._sessions.get(token or "")
            if s is None or s.expires < now:
                self._sessions.pop(token or "", None)
                return None
            s.expires = now + SESSION_TTL.total_seconds()
        with central_db.connection_context():
            if FleetAccount.get_or_none(FleetAccount.username == s.user) is None:  # removed meanwhile
                return None
        return s

    def signed_in_bar(self, s: Session) -> str:
        """The header's "signed in as" with a logout form carrying the session's CSRF token."""
        return (f'<form method="post" action="/logout" class="who">signed in as <b>{html.escape(s.user)}</b> '
                f'<input type="hidden" name="csrf" value="{s.csrf}"><button type="submit">Sign out</button></form>')

    # --- forms ------------------------------------------------------------------------------------
    def _login_page(self, h, error: str = "", status: int = 200) -> None:
        token = secrets.token_urlsafe(32)
        body = LOGIN_PAGE.format(csrf=token, error=f'<p class="err">{html.escape(error)}</p>' if error else "")
        send(h, status, "text/html; charset=utf-8", body.encode(),
             {"Set-Cookie": f"{LOGIN_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=1800"})

    def _login(self, h) -> None:
        form = _form(h)
        if form is None or not _same_origin(h) or not _token_ok(form.get("csrf"), _cookie(h, LOGIN_COOKIE)):
            send(h, 403, "text/plain", b"refused: the sign-in form did not come from this page; reload /login\n")
            return
        user, password = form.get("username", ""), form.get("password", "")
        if self._locked(user):
            self._login_page(h, "Too many wrong passwords for this account: wait 15 minutes.", 429)
            return
        with central_db.connection_context():
            ensure_table()
            account = FleetAccount.get_or_none(FleetAccount.username == user)
        ok = check_password(account.password_hash if account else _DUMMY_HASH, password) and account is not None
        if not ok:
            self._failed(user)
            self._login_page(h, "Wrong account name or password.", 401)
            return
        token, session = secrets.token_urlsafe(32), Session(user, secrets.token_urlsafe(32), 0.0)
        session.expires = time.monotonic() + SESSION_TTL.total_seconds()
        with self._lock:
            self._sessions[token] = session
            self._failures.pop(user, None)
        send(h, 303, "text/plain", b"", {
            "Location": "/",
            "Set-Cookie": f"{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; "
                          f"Max-Age={int(SESSION_TTL.total_seconds())}",
        })

    def _logout(self, h) -> None:
        s = self.session(h)
        form = _form(h)
        if s is None or form is None or not _same_origin(h) or not _token_ok(form.get("csrf"), s.csrf):
            send(h, 403, "text/plain", b"refused: sign out from the fleet page itself\n")
            return
        with self._lock:
            self._sessions.pop(_cookie(h, SESSION_COOKIE) or "", None)
        send(h, 303, "text/plain", b"", {"Location": "/login",
                                         "Set-Cookie": f"{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"})

    # --- guessing ---------------------------------------------------------------------------------
    def _recent(self, user: str) -> list[float]:
        cutoff = time.monotonic() - LOCKOUT.total_seconds()
        recent = [t for t in self._failures.get(user, []) if t > cutoff]
        self._failures[user] = recent
        return recent

    def _locked(self, user: str) -> bool:
        with self._lock:
            return len(self._recent(user)) >= MAX_FAILURES

    def _failed(self, user: str) -> None:
        with self._lock:
            self._recent(user).append(time.monotonic())


SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def send(h, code: int, ctype: str, body: bytes, headers: dict[str, str] | None = None) -> None:
    """Every fleet answer: no caching, no framing, no scripts (the page has none)."""
    h.send_response(code)
    h.send_header("Content-Type", ctype)
    h.send_header("Content-Length", str(len(body)))
    for k, v in {**SECURITY_HEADERS, **(headers or {})}.items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(body)


def _cookie(h, name: str) -> str | None:
    jar = SimpleCookie()
    try:
        jar.load(h.headers.get("Cookie", ""))
    except Exception:  # noqa: BLE001 - a malformed Cookie header is no cookie
        return None
    morsel = jar.get(name)
    return morsel.value if morsel else None


def _form(h) -> dict[str, str] | None:
    try:
        length = int(h.headers.get("Content-Length", "0"))
    except ValueError:
        return None
    if not 0 < length <= MAX_FORM_BYTES or not h.headers.get("Content-Type", "").startswith(
            "application/x-www-form-urlencoded"):
        return None
    fields = parse_qs(h.rfile.read(length).decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items()}


def _same_origin(h) -> bool:
    """A browser names the page a POST came from; another site's page is refused (a missing Origin
    is allowed: the token check still applies)."""
    origin = h.headers.get("Origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == h.headers.get("Host", "")


def _token_ok(given: str | None, expected: str | None) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(given, expected)
