"""sd_notify(3) without libsystemd: READY, STATUS, WATCHDOG and STOPPING for Type=notify units.

Does nothing (returns False) when NOTIFY_SOCKET is not set, so the same daemons run by hand.
"""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    """Send one sd_notify message; False when not run by a
    notify unit, so the daemons run the same by hand."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(state.encode("utf-8"))
    return True


def ready(status: str = "") -> bool:
    """Tell systemd start-up is done, so units ordered after this one start only now."""
    return notify("READY=1" + (f"\nSTATUS={status}" if status else ""))


def status(text: str) -> bool:
    """A one-line status for `systemctl status`."""
    return notify(f"STATUS={text}")


def watchdog() -> bool:
    """Ping systemd's watchdog; a daemon that hangs stops pinging and is restarted."""
    return notify("WATCHDOG=1")


def stopping() -> bool:
    """Tell systemd a clean shutdown has begun, so it is not taken for a hang."""
    return notify("STOPPING=1")


def watchdog_interval_s() -> float | None:
    """Half of WATCHDOG_USEC (ping twice per period), or None when no watchdog is asked for."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and int(pid) != os.getpid()):
        return None
    return int(usec) / 2_000_000
