"""A syntax check for the udev rules provision writes: systemd 252 (Debian 12) has no `udevadm verify`.

It knows the syntax we emit (KEY==value / KEY=value pairs, known keys, balanced quotes), not all of udev's.
"""

from __future__ import annotations

import re

_MATCH_KEYS = {"ACTION", "SUBSYSTEM", "SUBSYSTEMS", "KERNEL", "ATTR", "ATTRS", "ENV", "DRIVERS", "TAG"}
_ASSIGN_KEYS = {"GROUP", "MODE", "OWNER", "SYMLINK", "TAG", "ENV", "RUN"}
_PAIR = re.compile(r'^(?P<key>[A-Z_]+)(?:\{(?P<attr>[A-Za-z0-9_.-]+)\})?(?P<op>==|!=|\+=|-=|:=|=)"(?P<value>[^"]*)"$')


def check_rules(text: str) -> list[str]:
    """Syntax problems in a rules file, one message per problem (empty when fine)."""
    problems = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            problems.append(f"line {n}: continuation lines are not used here")
            continue
        if line.count('"') % 2:
            problems.append(f"line {n}: unbalanced quotes")
            continue
        has_match = has_assign = False
        for part in (p.strip() for p in line.split(",")):
            m = _PAIR.match(part)
            if not m:
                problems.append(f"line {n}: cannot parse {part!r} (expected KEY==\"value\" or KEY=\"value\")")
                continue
            key, op = m["key"], m["op"]
            if op in ("==", "!="):
                has_match = True
                if key not in _MATCH_KEYS:
                    problems.append(f"line {n}: {key} cannot be matched")
            else:
                has_assign = True
                if key not in _ASSIGN_KEYS:
                    problems.append(f"line {n}: {key} cannot be assigned")
                if key == "MODE" and not re.fullmatch(r"0[0-7]{3}", m["value"]):
                    problems.append(f"line {n}: MODE must be octal like 0660")
        if not (has_match and has_assign):
            problems.append(f"line {n}: a rule needs at least one match and one assignment")
    return problems
