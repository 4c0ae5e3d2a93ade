"""`ewarung central policy`: the limits the city sets for every device (override caps, void window)."""

from __future__ import annotations

import argparse

from pos.cli.common import fail


def register(inner: argparse._SubParsersAction, open_db) -> None:
    """Under `ewarung central`; `open_db(args)` opens the central database named by --db."""
    p = inner.add_parser("policy", help="the city's override caps, void window and clock allowance, judged on every device's messages",
                         description="Show or set the limits the city holds every device to. The report flags "
                                     "overrides beyond the caps as critical; the consumer quarantines voids "
                                     "later than the window.")
    sub = p.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="the current values (defaults where never set)")
    st = sub.add_parser("set", help="change one or more values; the others stay as they are")
    st.add_argument("--override-cap-device", type=int, metavar="N",
                    help="overrides (sales without a card) one device may make in a period")
    st.add_argument("--override-cap-household", type=int, metavar="N",
                    help="overrides one household may receive in a period, across all devices")
    st.add_argument("--void-window-minutes", type=int, metavar="MIN",
                    help="how long after a sale its device may void it")
    st.add_argument("--clock-step-back-seconds", type=int, metavar="S",
                    help="how far a message may be dated before the previous one of its device (a clock "
                         "correction) before it is quarantined as dated back")
    show.set_defaults(func=lambda args: (open_db(args), _show())[1])
    st.set_defaults(func=lambda args: (open_db(args), _set(args))[1])


def _print(policy) -> None:
    print(f"override cap per device:    {policy.override_cap_device} a period")
    print(f"override cap per household: {policy.override_cap_household} a period")
    print(f"void window:                {policy.void_window_minutes} min")
    print(f"clock step back allowed:    {policy.clock_step_back_seconds} s")


def _show() -> int:
    from sync.central.city_policy import city_policy

    _print(city_policy())
    return 0


def _set(args: argparse.Namespace) -> int:
    from sync.central.city_policy import set_city_policy

    values = {"override_cap_device": args.override_cap_device, "override_cap_household": args.override_cap_household,
              "void_window_minutes": args.void_window_minutes, "clock_step_back_seconds": args.clock_step_back_seconds}
    if all(v is None for v in values.values()):
        return fail("nothing to set: give --override-cap-device, --override-cap-household --void-window-minutes "
                    "or --clock-step-back-seconds")
    try:
        policy = set_city_policy(**values)
    except ValueError as exc:
        return fail(str(exc))
    _print(policy)
    return 0
