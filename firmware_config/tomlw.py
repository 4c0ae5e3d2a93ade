"""A small TOML writer for the device configuration (tables of scalars and lists of scalars)."""

from __future__ import annotations

import json
import math


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError("TOML config values must be finite numbers")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a valid TOML basic string
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def dumps(data: dict, header: str = "") -> str:
    """The configuration as TOML text under a comment header,
    for provisioning to write (tomllib only reads)."""
    out = [f"# {line}" if line else "#" for line in header.splitlines()]
    if out:
        out.append("")
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    for k, v in scalars.items():
        out.append(f"{k} = {_value(v)}")
    for k, v in data.items():
        if isinstance(v, dict):
            if out and out[-1] != "":
                out.append("")
            out.append(f"[{k}]")
            for kk, vv in v.items():
                if isinstance(vv, dict):
                    raise TypeError("nested tables deeper than one level are not used in the config")
                if vv is None:
                    continue
                out.append(f"{kk} = {_value(vv)}")
    return "\n".join(out) + "\n"
