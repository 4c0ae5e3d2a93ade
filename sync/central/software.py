"""Which software each device runs, from its heartbeat's `software` field, and who is left behind.

Why: the city publishes a release to its apt repository and every shop takes it in its own night's
window; a device that stays on an older release (switched off at night, no network, or rolled back
because the release failed its health check on that device) must show up on the fleet page and in
the auditor's report. The field holds the ewarung-pos package version (e.g. `0.1.1-1`), followed by
` (rolled back from 0.1.2-1)` after a rollback; devices not installed from the packages report the
Python package version (`0.1.0`).
"""

from __future__ import annotations

import re

ROLLED_BACK = " (rolled back from "


def version_of(label: str) -> str:
    """The release a heartbeat's label names, without the rollback note."""
    return label.split(" ", 1)[0] if label else ""


def rolled_back_from(label: str) -> str:
    """The release that failed its health check on this device, or "" when none did."""
    return label.split(ROLLED_BACK, 1)[1].rstrip(")") if ROLLED_BACK in label else ""


def version_key(version: str) -> tuple:
    """Orders versions as Debian does for the forms we publish (digits numerically, `~` first)."""
    parts: list[tuple[int, int | str]] = []
    for run in re.findall(r"\d+|~|[^\d~]+", version):
        parts.append((2, int(run)) if run.isdigit() else (0, run) if run == "~" else (1, run))
    return tuple(parts)


def newest(labels: list[str]) -> str:
    """The fleet's newest release: devices behind it are flagged."""
    versions = [version_of(x) for x in labels if version_of(x)]
    return max(versions, key=version_key) if versions else ""


def left_behind(label: str, latest: str) -> bool:
    """Whether this device runs an older release than the newest any device reports."""
    mine = version_of(label)
    return bool(mine and latest) and version_key(mine) < version_key(latest)
