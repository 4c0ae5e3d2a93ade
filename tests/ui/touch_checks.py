"""The counter touched as a cashier touches it: real X events (xdotool) on the Xvfb display, with the
layout checks that keep issue 21's class of problem out (run by tests/ui/flows.py, once per screen
size and language, inside the driver's one app start per size).

What every visited screen must hold: nothing moves when a notice comes or goes; every text fits its
box and every widget its parent (no clipping, no overlap); a one-line text stays on one line; a
notice does not outlive its screen; success and problem notices differ in colour; every line of the
largest basket the allowance permits is in view on the confirm screen (or a "more below" line says
so and scrolling shows it).
"""

from __future__ import annotations

import os
import shutil
import subprocess

SLACK = 1.5  # px: Kivy rounds texture sizes


class XTouch:
    """Clicks through the X server: SDL reads them like a real touch panel's events."""

    def __init__(self) -> None:
        if shutil.which("xdotool") is None:
            raise AssertionError("xdotool is not installed (scripts/bootstrap.sh installs it)")
        found = subprocess.run(["xdotool", "search", "--pid", str(os.getpid())], capture_output=True, text=True,
                               timeout=10).stdout.split()
        if not found:
            raise AssertionError("the counter's X window was not found by xdotool")
        self.window = found[0]

    def click(self, x: float, y: float) -> None:
        """Click at window coordinates (X's origin is the top left)."""
        subprocess.run(["xdotool", "mousemove", "--window", self.window, str(int(x)), str(int(y)), "click", "1"],
                       check=True, timeout=10)


def xtap(d, name: str):
    """Touch the named widget through X, at its centre, as the cashier's finger would."""
    from kivy.core.window import Window

    w = d.find(name)
    assert not w.disabled, f"button {name!r} is disabled"
    x, y = w.to_window(w.center_x, w.center_y)
    if not hasattr(d, "xtouch"):
        d.xtouch = XTouch()
    d.xtouch.click(x, Window.height - y)
    yield
    yield


def positions(d) -> dict[str, tuple[int, int, int, int]]:
    """Where every named widget is on the window, rounded to pixels."""
    out = {}
    for w in d.widgets():
        name = getattr(w, "name", "")
        if name and name != "notice":
            (x0, y0), (x1, y1) = w.to_window(w.x, w.y), w.to_window(w.right, w.top)
            out[name] = (round(x0), round(y0), round(x1), round(y1))
    return out


def same_places(before: dict, after: dict, what: str) -> None:
    moved = {n: (before[n], after[n]) for n in before.keys() & after.keys() if before[n] != after[n]}
    assert not moved, f"{what}: widgets moved: {moved}"


def notice(d):
    return d.find("notice")


def _visible(w) -> bool:
    """Inside a ScrollView, only what is scrolled into view counts."""
    from kivy.uix.scrollview import ScrollView

    p = w.parent
    while p is not None and p is not p.parent:  # the Window is its own parent
        if isinstance(p, ScrollView):
            bottom, top = w.to_window(w.x, w.y)[1], w.to_window(w.x, w.top)[1]
            view_bottom, view_top = p.to_window(p.x, p.y)[1], p.to_window(p.x, p.top)[1]
            return bottom >= view_bottom - SLACK and top <= view_top + SLACK
        p = p.parent
    return True


def fits(d, screen: str) -> None:
    """No text is cut by its box, no one-line text wraps, no widget spills out of its layout."""
    from kivy.uix.boxlayout import BoxLayout
    from kivy.uix.gridlayout import GridLayout
    from kivy.uix.label import Label
    from kivy.uix.scrollview import ScrollView

    problems = []
    root = d.app.content
    for w in root.walk(restrict=True):
        if not _visible(w):
            continue
        if isinstance(w, Label) and w.text:
            tw, th = w.texture_size
            if tw > w.width + SLACK or th > w.height + SLACK:
                problems.append(f"text {w.text[:40]!r} ({tw}x{th}) cut by its {w.width:.0f}x{w.height:.0f} box")
        p = w.parent
        in_layout = isinstance(p, BoxLayout | GridLayout) and not isinstance(p, ScrollView) and p is not root
        if in_layout and w.height > 0 and _spills(w, p):
            label = getattr(w, "text", "") or getattr(w, "name", "") or type(w).__name__
            problems.append(f"{label[:40]!r} spills out of its {type(p).__name__}")
    for lbl in d.app.status_bar.labels.values():
        if lbl.text and lbl.texture_size[1] > lbl.font_size * 1.6:
            problems.append(f"status bar {lbl.text!r} wraps")
    assert not problems, f"on {screen}: " + "; ".join(problems[:6])


def _spills(w, p) -> bool:
    return w.y < p.y - SLACK or w.top > p.top + SLACK or w.x < p.x - SLACK or w.right > p.right + SLACK


def shows_no_stale(d, previous: str) -> None:
    """A screen change clears the notice of the screen before (a new one may say what just happened)."""
    if previous:
        assert notice(d).text != previous, f"the notice {previous!r} stayed on {d.app.screen_name}"


def flow_touch_checks(d, language: str, card: str, cashier: tuple[str, str]):
    """One pass over the gallery's flows by X touches, all checks on every screen."""
    from pos.ui.widgets import DANGER, OK
    from tests.ui.flows import deck_index

    s = d.app.session
    if s.language != language:
        d.app.toggle_language()
        yield
    d.on("idle")
    fits(d, "idle")
    # the tester panel's note comes and goes without moving a button
    before = positions(d)
    yield from xtap(d, "deck-stuck")
    assert d.find("deck-note").text
    same_places(before, positions(d), "a tester panel note appeared")
    # sale with the largest basket
    yield from xtap(d, deck_index(d.parts, card))
    d.on("household")
    fits(d, "household")
    yield from xtap(d, "collector-holder")
    d.on("pin")
    fits(d, "pin")
    before = positions(d)
    yield from d.type_pin("pin", "9999", ok=False)
    yield from xtap(d, "pin-ok")
    d.on("pin")
    wrong = notice(d)
    assert wrong.text and tuple(wrong.color) == DANGER, (wrong.text, wrong.color)
    problem_colour, stale = tuple(wrong.color), wrong.text
    same_places(before, positions(d), "a wrong PIN notice appeared")
    fits(d, "pin with a notice")
    for digit in "1234":
        yield from xtap(d, f"pin-{digit}")
    yield from xtap(d, "pin-ok")
    d.on("basket")
    shows_no_stale(d, stale)
    for code in sorted(s.catalog, key=lambda c: s.catalog[c].price):
        if s.can_add(code):
            yield from d.tap(f"plus-{code}")
    lines = len(s.basket)
    assert lines >= 8, f"the largest basket has only {lines} lines"
    fits(d, "basket")
    yield from xtap(d, "to-confirm")
    d.on("confirm")
    fits(d, "confirm")
    yield from d.shot(f"28-confirm-largest-basket-{language}")
    if not _every_line_in_view(d, s):  # the screen said how many lie below: scroll as the cashier would
        d.find("basket-lines").scroll_y = 0
        yield
        assert _all_seen(d, s), "scrolling down did not show the basket lines said to be below"
    yield from xtap(d, "confirm")
    d.on("done")
    fits(d, "done")
    yield from xtap(d, "reprint")
    done_note = notice(d)
    assert done_note.text and tuple(done_note.color) == OK, (done_note.text, done_note.color)
    assert tuple(done_note.color) != problem_colour, "success and problem notices share a colour"
    stale = done_note.text
    yield from xtap(d, "deck-pull")
    d.on("idle")
    shows_no_stale(d, stale)
    assert not d.find("deck-note").text, "the stuck-card note stayed after the card was pulled"
    # sign-in: a notice appears and nothing moves under the finger
    yield from xtap(d, "sign-out")
    d.on("signin")
    fits(d, "signin")
    before = positions(d)
    yield from xtap(d, "signin-ok")
    assert notice(d).text, "no notice for a PIN without a name"
    same_places(before, positions(d), "a sign-in notice appeared")
    fits(d, "signin with a notice")
    stale = notice(d).text
    yield from xtap(d, f"cashier-{cashier[0]}")
    for digit in cashier[1]:
        yield from xtap(d, f"signin-{digit}")
    yield from xtap(d, "signin-ok")
    d.on("idle")
    shows_no_stale(d, stale)
    if language != "id":
        d.app.toggle_language()
        yield


def _shown_lines(d) -> set[str]:
    from kivy.uix.label import Label

    return {w.text for w in d.widgets() if isinstance(w, Label) and " x " in w.text and _visible(w)}


def _every_line_in_view(d, s) -> bool:
    """Every basket line is on screen at once (True), or the "more below" line says exactly how many
    are not (False: the flow scrolls to them)."""
    d.first_seen = _shown_lines(d)
    more = d.find("more-below").text
    hidden = len(s.basket) - len(d.first_seen)
    assert hidden == 0 or (more and f"{hidden} " in more), \
        f"{hidden} of {len(s.basket)} basket lines are out of view and no line says so exactly ({more!r})"
    return hidden == 0


def _all_seen(d, s) -> bool:
    return len(d.first_seen | _shown_lines(d)) == len(s.basket)
