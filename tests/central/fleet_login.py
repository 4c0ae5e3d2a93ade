"""Signing in to the fleet page over HTTP as a browser would (cookies kept, redirects not followed)."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request

USER, PASSWORD = "dinsos-samarinda", "Correct-Horse-2026"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def new_client():
    """A cookie-keeping client that shows redirects instead of following them."""
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect()), jar


def status(client, url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, str, dict]:
    """(HTTP status, body, headers) of one request, errors included."""
    try:
        with client.open(urllib.request.Request(url, data=data, headers=headers or {}), timeout=10) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def login(base: str, user: str = USER, password: str = PASSWORD):
    """Sign in as a browser would: fetch the form (its token and cookie), post it back."""
    client, _jar = new_client()
    code, page, _ = status(client, f"{base}/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"csrf": token, "username": user, "password": password}).encode()
    code, body, headers = status(client, f"{base}/login", form, {"Content-Type": "application/x-www-form-urlencoded"})
    return client, code, headers, body


