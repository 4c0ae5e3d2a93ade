"""Helpers shared by subcommands: loading the config, progress bars, clear failures."""

from __future__ import annotations

import argparse
import sys

from firmware_config.config import Config, load_config


def config_from(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None))


def fail(message: str, code: int = 1) -> int:
    print(f"ewarung: {message}", file=sys.stderr)
    return code


def progress_bar(total: int, desc: str):
    """A tqdm bar on stderr (quiet when stderr is not a terminal and the job is small)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=" rows", unit_scale=True, file=sys.stderr, disable=None)
