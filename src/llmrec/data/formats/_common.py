"""What every reader returns, and the checks they share."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ...errors import DataError

TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)\s*$")


@dataclass
class RawData:
    """Frames as read from a source, before any preprocessing.

    ``interactions`` has ``user_id`` and ``item_id`` (strings) and optionally ``rating``
    (float) and ``timestamp`` (integer seconds); rows are in file order. ``items`` and
    ``users`` are keyed by ``item_id`` / ``user_id``. Canonical item columns are ``title``,
    ``year`` (int), ``genres`` (list of strings), ``description``; other columns are kept.
    ``extra_files`` names side files other stages use (e.g. ``{"kg": ..., "link": ...}``).
    """

    interactions: pl.DataFrame
    items: pl.DataFrame | None = None
    users: pl.DataFrame | None = None
    source: str = ""
    extra_files: dict[str, Path] = field(default_factory=dict)


def read_text(path: Path, encoding: str = "utf-8") -> str:
    """Whole file as text; a clear error if it is missing or not in ``encoding``."""
    try:
        return path.read_bytes().decode(encoding)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not valid {encoding} text (byte {e.start})") from None


def read_delimited(path: Path, separator: str, columns: list[str] | None,
                   encoding: str = "utf-8", text: str | None = None) -> pl.DataFrame:
    """A delimited file as all-string columns (header row if ``columns`` is None).

    Every line must have exactly as many fields as the header (or ``columns``); a short
    (truncated) or long line is reported with its line number. CRLF line ends are accepted.
    """
    text = read_text(path, encoding) if text is None else text
    text = text.replace("\r\n", "\n").rstrip("\n")
    if not text.strip():
        raise DataError(f"{path}: file is empty")
    lines = pl.Series(text.split("\n"))
    width = len(columns) if columns is not None else lines[0].count(separator) + 1
    fields = lines.str.count_matches(separator, literal=True) + 1
    bad = (fields != width).arg_true()
    if len(bad):
        i = int(bad[0])
        what = "fewer" if fields[i] < width else "more"
        hint = " (truncated file?)" if what == "fewer" else ""
        raise DataError(f"{path}: line {i + 1} has {what} fields than the {width} "
                        f"expected{hint}")
    if columns is None and lines.len() < 2:
        raise DataError(f"{path}: no data rows")
    try:
        return pl.read_csv(io.BytesIO(text.encode()), separator=separator,
                           has_header=columns is None, new_columns=columns, infer_schema=False,
                           quote_char=None, empty_string_is_null=False)
    except pl.exceptions.PolarsError as e:
        raise DataError(f"{path}: cannot parse ({str(e).splitlines()[0]})") from None


def to_int(df: pl.DataFrame, column: str, path: Path, first_line: int = 2,
           dtype: pl.DataType = pl.Int64) -> pl.DataFrame:
    """Cast a string column to integers (``"881250949.0"`` allowed); name the first bad value."""
    s = df[column]
    as_float = s.str.strip_chars().cast(pl.Float64, strict=False)
    as_int = as_float.cast(dtype, strict=False)  # null for inf, nan and out-of-range values
    bad = (as_int.is_null() & s.is_not_null()) | (as_float.round() != as_float).fill_null(False)
    if bad.any():
        i = int(bad.arg_true()[0])
        raise DataError(f"{path}: line {i + first_line}: field {column!r} is not an integer: "
                        f"{s[i]!r}")
    return df.with_columns(as_int.alias(column))


def to_float(df: pl.DataFrame, column: str, path: Path, first_line: int = 2) -> pl.DataFrame:
    s = df[column]
    out = s.str.strip_chars().cast(pl.Float64, strict=False)
    bad = out.is_null() & s.is_not_null() & (s.str.strip_chars() != "")
    if bad.any():
        i = int(bad.arg_true()[0])
        raise DataError(f"{path}: line {i + first_line}: field {column!r} is not a number: "
                        f"{s[i]!r}")
    return df.with_columns(out.cast(pl.Float32 if column == "rating" else pl.Float64)
                           .alias(column))


def split_title_year(titles: pl.Series) -> tuple[pl.Series, pl.Series]:
    """``"Toy Story (1995)"`` -> (``"Toy Story"``, 1995); titles without a year are kept."""
    parts = titles.str.extract_groups(TITLE_YEAR.pattern)
    title = pl.select(pl.coalesce(parts.struct.field("title"), titles)).to_series()
    year = parts.struct.field("year").cast(pl.Int32, strict=False)
    return title.str.strip_chars(), year


def require_columns(df: pl.DataFrame, needed: list[str], path: Path) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column {missing[0]!r} (found: {', '.join(df.columns)})")
