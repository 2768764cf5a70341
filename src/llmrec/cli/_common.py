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


def unit_interval(text: str) -> float:
    """An argparse ``type`` for a number in [0, 1) (dropout, shares)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects a number, not {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), not {text}")
    return value


positive_int = int_range(1)                 # sizes, epochs, counts, threads, workers
non_negative_int = int_range(0)             # 0 has a meaning (e.g. "all cores", "no filter")
seed_int = int_range(0, SEED_MAX)           # what numpy and torch accept
port_int = int_range(1, 65535)


def parse_columns(text: str | None, flag: str = "--columns") -> dict[str, str]:
    """``"user_id=userId,item_id=movieId"`` -> mapping; a clear error otherwise."""
    if not text:
        return {}
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"{flag} expects NAME=COLUMN[,NAME=COLUMN...], not {text!r}")
        if key.strip() in out:
            raise ConfigError(f"{flag} maps {key.strip()!r} twice in {text!r}")
        out[key.strip()] = value.strip()
    return out


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str, ensure_ascii=False)
    sys.stdout.write("\n")


# ---------------------------------------------------------------------------------------------
# Data-file options (CSV/TSV/Parquet read by llmrec.data.formats.tabular), one definition for
# every command that loads data: data info, train, knowledge generate, bench knowledge,
# encode, tokenize. `add_data_options` adds the flags; `data_options` gives the [data] config
# values set on the command line; `load_options` the keyword arguments of load_dataset.
# ---------------------------------------------------------------------------------------------

def add_data_options(parser: argparse.ArgumentParser) -> None:
    """``--format --columns --sep --encoding --items --item-columns --users --user-columns``."""
    g = parser.add_argument_group("data files (when --dataset is a path; see docs/data.md)")
    g.add_argument("--format", help="data format of a path: recbole, movielens, amazon, "
                   "tabular (default: detect)")
    g.add_argument("--columns", metavar="NAME=COLUMN,...",
                   help="interaction columns, e.g. user_id=User-ID,item_id=ISBN,"
                   "rating=Book-Rating (default: common spellings)")
    g.add_argument("--sep", metavar="SEP", help="separator of CSV/TSV files: , ; | tab "
                   "(default: detected from the first lines)")
    g.add_argument("--encoding", help="text encoding of CSV/TSV files, e.g. latin-1, cp1252 "
                   "(default: utf-8; a byte-order mark wins)")
    g.add_argument("--items", metavar="FILE", help="item side file (titles, genres, ...)")
    g.add_argument("--item-columns", metavar="NAME=COLUMN,...",
                   help="item columns to keep, e.g. item_id=ISBN,title=Book-Title,"
                   "year=Year-Of-Publication (names: item_id, title, year, genres, "
                   "description, or any other)")
    g.add_argument("--users", metavar="FILE", help="user side file (age, gender, ...)")
    g.add_argument("--user-columns", metavar="NAME=COLUMN,...",
                   help="user columns to keep, e.g. user_id=User-ID,age=Age,location=Location")


def data_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``[data]`` config values (:class:`llmrec.runs.DataConfig`) given as flags."""
    from ..data import check_encoding, parse_separator

    out: dict[str, Any] = {}
    if args.format:
        out["format"] = args.format
    if args.columns:
        out["columns"] = parse_columns(args.columns)
    if args.sep is not None:
        out["sep"] = parse_separator(args.sep)
    if args.encoding:
        check_encoding(args.encoding)
        out["encoding"] = args.encoding
    for name in ("items", "users"):
        columns = getattr(args, f"{name[:-1]}_columns")
        if columns and not getattr(args, name):
            raise ConfigError(f"--{name[:-1]}-columns needs --{name} FILE")
        if getattr(args, name):
            out[name] = getattr(args, name)
        if columns:
            out[f"{name[:-1]}_columns"] = parse_columns(columns, f"--{name[:-1]}-columns")
    return out


def load_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of :func:`llmrec.data.load_dataset` given as flags."""
    given = data_options(args)
    if "sep" in given:
        given["separator"] = given.pop("sep")
    return given


def data_sets(args: argparse.Namespace) -> list[str]:
    """The data options as ``--set data.KEY=VALUE`` assignments (TOML values)."""
    def toml(v: Any) -> str:
        if isinstance(v, dict):
            return "{" + ", ".join(f"{json.dumps(k)} = {json.dumps(x)}"
                                   for k, x in v.items()) + "}"
        return json.dumps(v)
    return [f"data.{k}={toml(v)}" for k, v in data_options(args).items()]
