"""Helpers shared by subcommands: loading the config, progress bars, clear failures."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator

from firmware_config.config import Config, load_config


def config_from(args: argparse.Namespace) -> Config:
    """The device configuration named by --config, else $EWARUNG_CONFIG, else the built-in demo."""
    return load_config(getattr(args, "config", None))


def fail(message: str, code: int = 1) -> int:
    """Say what went wrong on stderr, as every subcommand does, and give the exit code to return."""
    print(f"ewarung: {message}", file=sys.stderr)
    return code


def progress_bar(total: int, desc: str):
    """A tqdm bar on stderr (quiet when stderr is not a terminal and the job is small)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=" rows", unit_scale=True, file=sys.stderr, disable=None)


@contextlib.contextmanager
def progress_to(total: int, desc: str) -> Iterator[Callable[[int], None]]:
    """A callback taking how many of `total` are done, drawing a progress_bar once there is work:
    a start with nothing to build shows no bar and does not load tqdm (about 2 MB in the counter)."""
    bar = None

    def done(n: int) -> None:
        nonlocal bar
        if bar is None:
            bar = progress_bar(total, desc)
        bar.update(n - bar.n)

    try:
        yield done
    finally:
        if bar is not None:
            bar.close()
