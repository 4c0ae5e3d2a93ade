"""Fleet updates through apt: what provisioning writes so a device takes the city's signed releases
in a maintenance window, the gate that keeps an upgrade away from a sale, and the health verdict
that decides whether an upgrade stays or is rolled back.

The decisions that must survive a broken release live in two shell hooks of the ewarung-pos package
(`/usr/lib/ewarung/update-gate`, `/usr/lib/ewarung/update-check`): a release that cannot start
Python is exactly the one they must roll back. This module is what those hooks ask when Python runs
(`python3 -m firmware_config.updates gate|health|record`), and what the heartbeat reports.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SOURCES_FILE = "/etc/apt/sources.list.d/ewarung.sources"
KEYRING_FILE = "/etc/apt/keyrings/ewarung-city.asc"
UNATTENDED_FILE = "/etc/apt/apt.conf.d/52ewarung-unattended-upgrades"
TIMER_DROPIN = "/etc/systemd/system/apt-daily-upgrade.timer.d/ewarung-window.conf"
ORIGIN = "E-Warung"  # the Origin of the city's repository (scripts/apt-repo.sh); unattended-upgrades matches it
SUITE = "bookworm"
DEFAULT_WINDOW = "22:00-05:00"
SALE_LOCK = "sale.lock"  # in the data directory: the only place the counter unit may write
TEMPFAIL = 75  # the gate's "not now": a sale is in progress


def state_dir() -> Path:
    """Where the update hooks keep their verdicts (purged with the package)."""
    return Path(os.environ.get("EWARUNG_UPDATE_DIR", "/var/lib/ewarung-updates"))


# --- provisioning: the repository, its key, the window --------------------------------------------


@dataclass(frozen=True)
class Window:
    """The maintenance window in the device's local time (WITA on a provisioned Pi)."""

    start: int  # minutes after midnight
    end: int

    @property
    def minutes(self) -> int:
        """The window's length, across midnight too, so a window too short for an upgrade is refused."""
        return (self.end - self.start) % (24 * 60) or 24 * 60


def parse_window(text: str) -> Window:
    """`22:00-05:00`: the window may cross midnight; it must leave time for the upgrade to finish."""
    try:
        a, b = text.split("-")
        start, end = (int(h) * 60 + int(m) for h, m in (x.strip().split(":") for x in (a, b)))
    except ValueError:
        raise ValueError(f"--update-window {text!r}: write START-END in 24 h time, e.g. {DEFAULT_WINDOW}") from None
    if not (0 <= start < 1440 and 0 <= end < 1440):
        raise ValueError(f"--update-window {text!r}: hours 00-23, minutes 00-59")
    window = Window(start, end)
    if window.minutes < 60:
        raise ValueError(f"--update-window {text!r}: at least one hour, so an upgrade and its check fit")
    return window


def sources_text(url: str) -> str:
    """The apt source for the city's repository, trusting only the city's release key (Signed-By)."""
    return (
        "# The city's E-Warung releases, written by `ewarung provision --update-repo`.\n"
        f"Types: deb\nURIs: {url}\nSuites: {SUITE}\nComponents: main\nSigned-By: {KEYRING_FILE}\n"
    )


def unattended_text() -> str:
    """unattended-upgrades settings that take the city's releases and nothing else, never rebooting."""
    return (
        "// E-Warung POS: take the city's releases unattended (written by `ewarung provision`).\n"
        "// The window is the apt-daily-upgrade timer's (see its ewarung-window.conf drop-in); the\n"
        "// ewarung-pos apt hook refuses to start while a sale is in progress.\n"
        f'Unattended-Upgrade::Origins-Pattern {{ "origin={ORIGIN},codename={SUITE}"; }};\n'
        'Unattended-Upgrade::Automatic-Reboot "false";\n'
        "// update-check copies a healthy release's packages aside for a later rollback\n"
        'Unattended-Upgrade::Keep-Debs-After-Install "true";\n'
        'APT::Periodic::Update-Package-Lists "1";\n'
        'APT::Periodic::Unattended-Upgrade "1";\n'
    )


def timer_text(window: Window) -> str:
    """Start at the window's opening, spread over its first part, never caught up after a power-on
    in shop hours (Persistent=false), and leave the last hour for the upgrade and its health check."""
    spread = max(window.minutes - 60, 1)
    return (
        "# E-Warung POS maintenance window, written by `ewarung provision --update-window`.\n"
        "[Timer]\nOnCalendar=\n"
        f"OnCalendar=*-*-* {window.start // 60:02d}:{window.start % 60:02d}:00\n"
        f"RandomizedDelaySec={spread}min\nPersistent=false\n"
    )


def update_files(url: str, key: bytes, window: Window) -> list[tuple[str, str | bytes, int, str]]:
    """(path, content, mode, what) for `fsops.Changes.file`: provisioning writes them like the rest."""
    if b"BEGIN PGP PUBLIC KEY BLOCK" not in key:
        raise ValueError("--update-key: give the city's release key as exported by `gpg --armor --export`")
    return [
        (KEYRING_FILE, key, 0o644, "city release key (apt)"),
        (SOURCES_FILE, sources_text(url.rstrip("/")), 0o644, "city release repository (apt)"),
        (UNATTENDED_FILE, unattended_text(), 0o644, "unattended-upgrades for the city's releases"),
        (TIMER_DROPIN, timer_text(window), 0o644, "maintenance window (apt-daily-upgrade.timer)"),
    ]


def provision_updates(changes, url: str, key_file: Path, window_text: str | None) -> bool:
    """Writes the update files through provisioning's `Changes`; True when the timer changed (reload)."""
    try:
        key = Path(key_file).read_bytes()
        files = update_files(url, key, parse_window(window_text or DEFAULT_WINDOW))
    except OSError as exc:
        raise ValueError(f"--update-key {key_file}: {exc.strerror}") from None
    changed = False
    for path, content, mode, what in files:
        changed |= changes.file(path, content, mode, what=what) == "changed" and path == TIMER_DROPIN
    return changed


# --- the counter: a sale holds the lock ------------------------------------------------------------


class SaleGuard:
    """A counter-session listener: holds a shared lock on <data dir>/sale.lock from the card's arrival
    until the counter is idle again, so the apt hook can tell a sale is in progress."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / SALE_LOCK
        self._fd: int | None = None

    def __call__(self, session) -> None:
        from pos.session import CARD_STATES, State

        selling = session.state in CARD_STATES or session.state in (State.COMMITTING, State.OVERRIDE)
        if selling and self._fd is None:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o660)
            except OSError:
                return  # a data directory that refuses the lock must not stop the sale
            fcntl.flock(fd, fcntl.LOCK_SH)
            self._fd = fd
        elif not selling and self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None


def sale_in_progress(data_dir: str | Path) -> bool:
    """Whether a counter holds the sale lock: the apt hook refuses to upgrade under a cashier."""
    try:
        fd = os.open(Path(data_dir) / SALE_LOCK, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


# --- the apt hooks' questions -----------------------------------------------------------------------


def _config_path() -> str | None:
    from firmware_config.config import ENV_VAR
    from firmware_config.provision import CONFIG_PATH

    path = os.environ.get(ENV_VAR) or CONFIG_PATH
    return path if Path(path).exists() else None


def _failing(path: str) -> dict[str, str]:
    from firmware_config.doctor import run_checks

    return {c.name: c.message for c in run_checks(path, timeout=2.0) if not c.ok}


def gate() -> int:
    """Before dpkg unpacks a new ewarung release: refuse during a sale; else note what `ewarung
    doctor` already finds wrong, so the health check blames the release only for new failures."""
    path = _config_path()
    if path is None:
        return 0
    from firmware_config.config import ConfigError, load_config

    try:
        cfg = load_config(path)
    except (ConfigError, OSError):
        return 0  # the health check will say so; a broken config must not block a fixing release
    if sale_in_progress(cfg.data_dir):
        print("ewarung: a sale is in progress at the counter; the upgrade waits for the next run", file=sys.stderr)
        return TEMPFAIL
    state_dir().mkdir(parents=True, exist_ok=True)
    (state_dir() / "baseline.json").write_text(json.dumps(_failing(path), indent=2) + "\n")
    return 0


def health() -> tuple[bool, str]:
    """After the services restarted on the new release: healthy unless `ewarung doctor` finds a
    failure that was not there before the upgrade."""
    path = _config_path()
    if path is None:
        return True, "not provisioned: nothing to check"
    try:
        before = json.loads((state_dir() / "baseline.json").read_text())
    except (OSError, ValueError):
        before = {}
    new = {k: v for k, v in _failing(path).items() if k not in before}
    if new:
        return False, "; ".join(f"{k}: {v}" for k, v in sorted(new.items()))
    return True, "ewarung doctor finds nothing new"


def record(state: str, version: str, rolled_back_from: str = "", reason: str = "") -> dict:
    """The last verdict, for the heartbeat and the technician (`cat /var/lib/ewarung-updates/state.json`)."""
    entry = {"state": state, "version": version, "rolled_back_from": rolled_back_from or None,
             "reason": reason or None, "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    state_dir().mkdir(parents=True, exist_ok=True)
    tmp = state_dir() / "state.json.tmp"
    tmp.write_text(json.dumps(entry, indent=2) + "\n")
    tmp.replace(state_dir() / "state.json")
    return entry


def last_verdict() -> dict | None:
    """The last health check's verdict (kept or rolled back), or None before any upgrade."""
    try:
        return json.loads((state_dir() / "state.json").read_text())
    except (OSError, ValueError):
        return None


def software_label(version: str) -> str:
    """What the heartbeat's `software` says: the installed release, and a rollback when there was one
    (the fleet page and `ewarung central report` read both from this one field)."""
    verdict = last_verdict()
    if not verdict or not verdict.get("version"):
        return version
    if verdict.get("state") == "rolled_back":
        return f"{verdict['version']} (rolled back from {verdict['rolled_back_from']})"
    return str(verdict["version"])


def main(argv: list[str]) -> int:
    """The shell hooks' entry (gate, health, ...): apt and systemd call these, not a person."""
    command = argv[0] if argv else ""
    if command == "gate":
        return gate()
    if command == "health":
        ok, why = health()
        print(why)
        return 0 if ok else 1
    if command == "record" and len(argv) >= 3:
        record(argv[1], argv[2], *argv[3:5])
        return 0
    print("usage: python3 -m firmware_config.updates gate | health | record STATE VERSION [FROM [REASON]]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
