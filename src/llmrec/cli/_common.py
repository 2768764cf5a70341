"""Helpers shared by subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from ..config import SEED_MAX
from ..errors import ConfigError


def int_range(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """An argparse ``type`` for an integer in ``lo..hi`` (either end open when None): a value
    outside is argparse's one-line usage error (exit 2), before any work or run folder."""
    def integer(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expects an integer, not {text!r}") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            want = (f"in {lo}..{hi}" if lo is not None and hi is not None
                    else f">= {lo}" if lo is not None else f"<= {hi}")
            raise argparse.ArgumentTypeError(f"must be {want}, not {value}")
        return value
    return integer


def positive_float(text: str) -> float:
    """An argparse ``type`` for a finite number > 0 (seconds, rates)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects a number, not {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


positive_int = int_range(1)                 # sizes, epochs, counts, threads, workers
non_negative_int = int_range(0)             # 0 has a meaning (e.g. "all cores", "no filter")
seed_int = int_range(0, SEED_MAX)           # what numpy and torch accept
port_int = int_range(1, 65535)


def parse_columns(text: str | None) -> dict[str, str]:
    """``"user_id=userId,item_id=movieId"`` -> mapping; a clear error otherwise."""
    if not text:
        return {}
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"--columns expects NAME=COLUMN[,NAME=COLUMN...], not {text!r}")
        out[key.strip()] = value.strip()
    return out


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str, ensure_ascii=False)
    sys.stdout.write("\n")
