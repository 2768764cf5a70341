"""Generic tables of interactions: CSV, TSV or Parquet, with a column mapping.

Text files (``.csv``, ``.tsv``, ``.txt``) have a header row and CSV quoting; how they are
decoded and split (``encoding``, default UTF-8, a byte-order mark wins; CRLF; ``""`` and
``\\"`` escaped quotes; the ``separator`` -- comma, semicolon, tab or pipe -- detected from
the first lines unless given) is :mod:`._text`'s job. Parquet (``.parquet``, ``.pq``) keeps
its column types.

Columns: ``columns`` maps llmrec's names to the file's, e.g. ``{"user_id": "visitor",
"item_id": "sku"}``. A name not mapped is looked up among the common spellings in
:data:`ALIASES` (ignoring case, ``-``, ``_`` and spaces: ``User-ID`` is ``user_id``);
``user_id`` and ``item_id`` are required, ``rating`` and ``timestamp`` optional. Other
columns are dropped. Without a timestamp column the row order is the time order.

Values:

- ids: any text, kept as strings with surrounding spaces removed (Parquet ``42`` -> "42").
- ``rating``: a number; an empty field is a missing rating.
- ``timestamp``: epoch seconds (a fraction is floored), or epoch **milliseconds** -- a column
  whose largest value exceeds 1e11 is taken as milliseconds (1e11 s is the year 5138,
  1e11 ms is March 1973) and floored to seconds; or ISO-8601 dates and times
  (``2019-05-03``, ``2019-05-03T12:00:00``, ``2019-05-03 12:00:00.250``, with ``Z`` or an
  offset such as ``+02:00``); times without an offset are UTC. Parquet Date and Datetime
  columns are converted likewise (naive ones as UTC).

Side tables: ``items`` / ``users`` name a CSV/TSV/Parquet file (read with the same
``separator`` and ``encoding`` options) keyed by the item / user id column.
``item_columns`` / ``user_columns`` map llmrec's names to the file's columns, e.g.
``{"item_id": "ISBN", "title": "Book-Title", "author": "Book-Author"}``; only the mapped
columns are kept (names other than ``item_id``, ``title``, ``year``, ``genres`` and
``description`` are kept as they are, and shown in LLM item prompts). Without a map the
key is the mapped interaction column or an alias, and every other column passes through,
with ``name``, ``movie_title`` or ``product_title`` renamed to ``title``,
``genre``/``categories`` to ``genres``. Text genres are split on ``|``
(``"Comedy|Drama"``); ``year`` (items) and ``age`` (users) are integers, where ``0``, an
empty field, ``NULL``, ``NA``, ``N/A``, ``None``, ``NaN`` and ``\\N`` mean unknown; a key
listed twice is an error.

Problems are DataError one-liners naming the file, the line (the row for Parquet), the
column and the first bad value; an unknown option or mapped name is a ConfigError.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from ...errors import ConfigError, DataError
from ._common import RawData
from ._text import check_encoding, parse_separator, prepare_text

TEXT_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": None}
PARQUET_SUFFIXES = (".parquet", ".pq")
ALIASES = {
    "user_id": ("user_id", "userid", "user", "uid", "reviewerid", "customer_id"),
    "item_id": ("item_id", "itemid", "movieid", "item", "iid", "asin", "product_id", "isbn"),
    "rating": ("rating", "score", "overall", "stars"),
    "timestamp": ("timestamp", "ts", "time", "unixreviewtime", "datetime", "date"),
}
ITEM_ALIASES = {"title": ("title", "name", "movie_title", "product_title"),
                "genres": ("genres", "genre", "categories", "category"),
                "year": ("year", "release_year"), "description": ("description",)}
MS_THRESHOLD = 1e11
MISSING = ("", "null", "na", "n/a", "nan", "none", "\\n")
OPTIONS = ("columns", "separator", "encoding", "items", "users", "item_columns",
           "user_columns")


def detect(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in (*TEXT_SUFFIXES, *PARQUET_SUFFIXES)


class _Table:
    """A table as read, and how to name a row of it in an error message."""

    def __init__(self, path: Path, separator: str | None = None,
                 encoding: str = "utf-8") -> None:
        self.path = path
        self.text: str | None = None
        self.separator = ","
        if not path.is_file():
            raise DataError(f"{path}: " + ("a folder, not a table file" if path.is_dir()
                                           else "file not found"))
        if path.suffix.lower() in PARQUET_SUFFIXES:
            try:
                self.df = pl.read_parquet(path)
            except (pl.exceptions.PolarsError, OSError) as e:
                raise DataError(f"{path}: not a readable Parquet file "
                                f"({str(e).splitlines()[0]})") from None
        else:
            self.df = self._read_text(separator, encoding)
        if self.df.height == 0:
            raise DataError(f"{path}: no data rows")

    def _read_text(self, separator: str | None, encoding: str) -> pl.DataFrame:
        data = self.path.read_bytes()
        if not data or data.isspace():                 # (no copy, unlike strip)
            raise DataError(f"{self.path}: file is empty")
        prepared = prepare_text(self.path, data, separator, encoding)
        self.text, self.separator = prepared.text, prepared.separator
        if not self.text.strip():
            raise DataError(f"{self.path}: file is empty")
        try:
            df = pl.read_csv(io.BytesIO(prepared.data), separator=self.separator,
                             infer_schema=False, empty_string_is_null=False)
        except pl.exceptions.PolarsError as e:
            raise DataError(f"{self.path}: {self._ragged_line() or 'cannot parse'} "
                            f"({str(e).splitlines()[0]})") from None
        # polars pads a short (truncated) row with empty strings; only when the last column
        # has some does a plain pass over the rows look for one
        if df.height and (df[df.columns[-1]] == "").any() and (bad := self._ragged_line()):
            raise DataError(f"{self.path}: {bad} (truncated file?)")
        return df

    def _records(self) -> Iterator[tuple[int, list[str]]]:
        """(line number, fields) of the non-blank records, header first; a Python loop for
        error messages only (quoted fields may span lines, so lines are counted by csv)."""
        rows = csv.reader(io.StringIO(self.text or "", newline=""), delimiter=self.separator)
        try:
            for row in rows:
                if row:
                    yield rows.line_num, row
        except csv.Error:  # a field beyond csv's size limit: stop counting
            return

    def _ragged_line(self) -> str:
        """The first line whose field count differs from the header's."""
        records = self._records()
        width = len(next(records, (0, []))[1])
        for line, row in records:
            if len(row) != width:
                what = "fewer" if len(row) < width else "more"
                return f"line {line} has {what} fields ({len(row)}) than the header ({width})"
        return ""

    def where(self, row: int) -> str:
        """'line N' of a text file (blank lines and quoted newlines counted), 'row N' else."""
        if self.text is not None:
            for i, (line, _) in enumerate(self._records()):
                if i == row + 1:
                    return f"line {line}"
        return f"row {row + 1}"

    def fail(self, row: int, column: str, problem: str) -> DataError:
        value = self.df[column][row]
        return DataError(f"{self.path}: {self.where(row)}: column {column!r} {problem}: "
                         f"{value!r}")

    def column_for(self, name: str, mapping: dict[str, str], aliases: tuple[str, ...],
                   required: bool) -> str | None:
        if name in mapping:
            if mapping[name] not in self.df.columns:
                raise DataError(f"{self.path}: missing column {mapping[name]!r} (mapped to "
                                f"{name}; found: {', '.join(self.df.columns)})")
            return mapping[name]
        lower = {_plain(c): c for c in reversed(self.df.columns)}   # the first wins
        found = next((lower[_plain(a)] for a in aliases if _plain(a) in lower), None)
        if found is None and required:
            raise DataError(f"{self.path}: no {name} column (looked for {', '.join(aliases)}; "
                            f"found: {', '.join(self.df.columns)}); pass --columns "
                            f"{name}=COLUMN (columns={{'{name}': ...}} in Python)")
        return found


def _plain(name: str) -> str:
    """A column name as aliases are matched: lower case, without ``-``, ``_``, spaces."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _ids(table: _Table, column: str) -> pl.Series:
    s = table.df[column]
    if not (s.dtype == pl.String or s.dtype.is_integer() or s.dtype == pl.Categorical):
        raise DataError(f"{table.path}: column {column!r} holds {s.dtype}, not ids")
    ids = s.cast(pl.String).str.strip_chars()
    empty = ids.is_null() | (ids == "")
    if empty.any():
        raise table.fail(int(empty.arg_true()[0]), column, "has an empty id")
    return ids


def _numbers(table: _Table, column: str, what: str) -> pl.Series:
    """Numbers of a numeric or text column (empty text -> null); the first bad one named."""
    s = table.df[column]
    if s.dtype.is_numeric():
        return s.cast(pl.Float64)
    if s.dtype != pl.String:
        raise DataError(f"{table.path}: column {column!r} holds {s.dtype}, not {what}")
    out = s.cast(pl.Float64, strict=False)
    if out.null_count() == s.null_count():         # every value parsed as it is: done
        return out
    stripped = s.str.strip_chars()
    out = stripped.cast(pl.Float64, strict=False)
    bad = out.is_null() & s.is_not_null() & (stripped != "")
    if bad.any():
        raise table.fail(int(bad.arg_true()[0]), column, f"is not {what}")
    return out


def _iso_seconds(text: pl.Series) -> pl.Series:
    """ISO-8601 dates / datetimes -> epoch seconds (null where the text is not one)."""
    t = text.str.strip_chars().str.replace("T", " ", literal=True).str.replace(r"Z$", "+00:00")
    parsed = [t.str.to_datetime(f, strict=False, time_zone="UTC")
              for f in ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M")]
    parsed += [t.str.to_datetime(f, strict=False).dt.convert_time_zone("UTC")
               for f in ("%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%d %H:%M%z")]
    parsed.append(t.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us", "UTC")))
    return pl.select(pl.coalesce(parsed)).to_series().dt.epoch("s")


def _timestamps(table: _Table, column: str) -> pl.Series:
    s = table.df[column]
    if s.dtype == pl.Date:
        s = s.cast(pl.Datetime("us"))
    if isinstance(s.dtype, pl.Datetime):
        out = (s.dt.replace_time_zone("UTC") if s.dtype.time_zone is None else s).dt.epoch("s")
    elif s.dtype == pl.String and not _starts_numeric(s):
        out = _iso_seconds(s)
        bad = out.is_null() & s.is_not_null() & (s.str.strip_chars() != "")
        if bad.any():
            raise table.fail(int(bad.arg_true()[0]), column,
                             "is not an epoch number or an ISO-8601 date/time")
    else:
        seconds = _numbers(table, column, "an epoch number (or the column mixes formats)")
        if seconds.abs().max() > MS_THRESHOLD:
            seconds = seconds / 1000
        out = seconds.floor().cast(pl.Int64, strict=False)  # null for inf, nan, too large
        bad = out.is_null() & seconds.is_not_null()
        if bad.any():
            raise table.fail(int(bad.arg_true()[0]), column, "is not a usable epoch time")
    if out.is_null().any():
        raise table.fail(int(out.is_null().arg_true()[0]), column, "is empty")
    return out


def _starts_numeric(text: pl.Series) -> bool:
    """Whether the first non-empty value is a number (the column is then epoch time)."""
    head = text.head(10_000).str.strip_chars()
    first = head.filter(head != "").head(1)
    return bool(len(first)) and first.cast(pl.Float64, strict=False).is_not_null().all()


def _missing_as_null(s: pl.Series) -> pl.Series:
    """Text that spells "unknown" (``NULL``, ``NA``, ``\\N``, ...) -> null."""
    if s.dtype != pl.String:
        return s
    return s.set(s.str.strip_chars().str.to_lowercase().is_in(list(MISSING)), None)


def _integers(table: _Table, source: str, what: str) -> pl.Series:
    """Whole numbers of a side-table column; missing markers and 0 are null (unknown)."""
    table.df = table.df.with_columns(_missing_as_null(table.df[source]))
    values = _numbers(table, source, what)
    as_int = values.cast(pl.Int32, strict=False)  # null for inf, nan, too large
    bad = (as_int.is_null() & values.is_not_null()) | (values.round() != values).fill_null(False)
    if bad.any():
        raise table.fail(int(bad.arg_true()[0]), source, f"is not {what}")
    return as_int.set(as_int == 0, None)


def _side_columns(table: _Table, key: str, mapping: dict[str, str],
                  columns: dict[str, str]) -> tuple[pl.DataFrame, dict[str, str]]:
    """The side table's key plus its other columns renamed to llmrec's names, and the file
    column each came from.

    With ``columns`` (name -> file column) only the mapped columns are kept; without it every
    column passes through and the common spellings (:data:`ITEM_ALIASES`) are renamed."""
    for name, source in columns.items():
        if source not in table.df.columns:
            raise DataError(f"{table.path}: missing column {source!r} (mapped to {name}; "
                            f"found: {', '.join(table.df.columns)})")
    if key in columns:
        column = columns[key]
    else:
        mapped = {key: mapping[key]} if mapping.get(key) in table.df.columns else {}
        column = table.column_for(key, mapped, ALIASES[key], required=True)
    assert column is not None  # required=True raises instead
    ids = _ids(table, column)
    dup = ~ids.is_first_distinct()
    if dup.any():
        raise table.fail(int(dup.arg_true()[0]), column, f"repeats an {key}")
    if columns:
        rest = {name: table.df[source] for name, source in columns.items() if name != key}
        return pl.DataFrame({key: ids, **rest}), {key: column, **columns}
    names = {column: key}
    if key == "item_id":
        for name, aliases in ITEM_ALIASES.items():
            found = table.column_for(name, {}, aliases, required=False)
            if found is not None and found not in names and name not in table.df.columns:
                names[found] = name
    source = {names.get(c, c): c for c in table.df.columns}
    return pl.DataFrame({name: ids if name == key else table.df[c]
                         for name, c in source.items()}), source


def _side_table(path: str | Path, key: str, mapping: dict[str, str],
                columns: dict[str, str] | None = None, separator: str | None = None,
                encoding: str = "utf-8") -> pl.DataFrame:
    """An item or user table keyed by ``key`` (its separator detected unless forced)."""
    table = _Table(Path(path).expanduser(), separator, encoding)
    df, source = _side_columns(table, key, mapping, dict(columns or {}))
    if "genres" in df.columns and df["genres"].dtype == pl.String:
        genres = _missing_as_null(df["genres"]).str.split("|").list.eval(
            pl.element().str.strip_chars().filter(pl.element() != ""))
        df = df.with_columns(genres.alias("genres"))
    number = {"item_id": ("year", "a year"), "user_id": ("age", "an age")}[key]
    if number[0] in df.columns:
        df = df.with_columns(_integers(table, source[number[0]], number[1]).alias(number[0]))
    return df


def read(path: Path, columns: dict[str, str] | None = None, separator: str | None = None,
         items: str | Path | None = None, users: str | Path | None = None,
         encoding: str = "utf-8", item_columns: dict[str, str] | None = None,
         user_columns: dict[str, str] | None = None, **unknown: object) -> RawData:
    """Interactions from one table, plus optional item and user tables (see module doc)."""
    if unknown:
        raise ConfigError(f"unknown option(s) for the tabular format: {', '.join(unknown)} "
                          f"(known: {', '.join(OPTIONS)})")
    mapping = dict(columns or {})
    wrong = sorted(set(mapping) - set(ALIASES))
    if wrong:
        raise ConfigError(f"columns: unknown name(s) {', '.join(wrong)}; map any of "
                          f"{', '.join(ALIASES)}")
    for option, given, side in (("item_columns", item_columns, items),
                                ("user_columns", user_columns, users)):
        if given and not side:
            raise ConfigError(f"{option} needs the {option.split('_')[0]}s file "
                              f"(--{option.split('_')[0]}s FILE)")
    separator = parse_separator(separator) if separator is not None else None
    encoding = check_encoding(encoding)
    table = _Table(path, separator, encoding)
    found = {name: table.column_for(name, mapping, aliases, name in ("user_id", "item_id"))
             for name, aliases in ALIASES.items()}
    out = {"user_id": _ids(table, found["user_id"]), "item_id": _ids(table, found["item_id"])}
    if found["rating"] is not None:
        out["rating"] = _numbers(table, found["rating"], "a number").cast(pl.Float32)
    if found["timestamp"] is not None:
        out["timestamp"] = _timestamps(table, found["timestamp"])
    inter = pl.DataFrame(out)
    item_table = (_side_table(items, "item_id", mapping, item_columns, separator, encoding)
                  if items else None)
    user_table = (_side_table(users, "user_id", mapping, user_columns, separator, encoding)
                  if users else None)
    return RawData(inter, item_table, user_table, f"table {path}")
