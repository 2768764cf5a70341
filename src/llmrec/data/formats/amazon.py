"""Amazon Reviews (McAuley lab), 2018 and 2023 releases: reviews plus optional metadata.

Every file is JSON lines (one object per line), plain or gzip-compressed (``.json``,
``.json.gz``, ``.jsonl``, ``.jsonl.gz``). The release is told by the first record's fields.

Reviews (``Books.json.gz``, ``Books_5.json.gz``, ``reviews_Books_5.json.gz``, ``Books.jsonl``):

- 2018 (and the 2014 review files, which have the same fields): ``reviewerID`` -> user_id,
  ``asin`` -> item_id, ``overall`` -> rating (1-5), ``unixReviewTime`` -> timestamp (seconds;
  day resolution, so many ties).
- 2023: ``user_id``, ``parent_asin`` -> item_id (the product, not the colour/size variant,
  as the official benchmark does; ``asin`` where ``parent_asin`` is missing), ``rating``,
  ``timestamp`` in milliseconds, floored to whole seconds.

Metadata, found beside the reviews as ``meta_<name>`` (``meta_Books.json.gz`` for
``Books.json.gz``, ``Books_5.json.gz`` or ``reviews_Books_5.json.gz``; any suffix above):

- 2018: ``asin``, ``title``, ``description`` (list of str), ``category`` (list), ``brand``,
  ``price`` (text such as ``"$12.99"``), ``feature`` (list), ``main_cat``.
- 2023: ``parent_asin``, ``title``, ``description`` (list), ``categories`` (list),
  ``main_category``, ``store``, ``features`` (list), ``price`` (number or null),
  ``average_rating``, ``rating_number``.

Items get ``item_id``, ``title``, ``description`` (the list joined with spaces), ``genres``
(the category list), ``brand`` (2018 brand, 2023 store), ``price`` (text: ``"$12.99"`` as
written, the number 12.5 as ``"12.5"``), ``main_category``, ``features`` (list of str), and
for 2023 ``average_rating`` and ``rating_number``. Metadata is messy: a field may be a list in one record and a string,
number or missing in the next; all of that is accepted. Where an id is listed twice (the
2018 files repeat some), the first record wins. The 2014 metadata, written as Python
literals (``{'asin': ...}``), is not JSON and is refused with a clear error.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import polars as pl

from ...errors import ConfigError, DataError
from ._common import RawData, to_float, to_int

SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")
# file field -> canonical column, per release (2023: asin stands in for a missing parent_asin)
REVIEW_FIELDS = {
    "2018": {"reviewerID": "user_id", "asin": "item_id", "overall": "rating",
             "unixReviewTime": "timestamp"},
    "2023": {"user_id": "user_id", "parent_asin": "item_id", "asin": "asin",
             "rating": "rating", "timestamp": "timestamp"},
}
LIST_COLUMNS = ("description", "genres", "features")
META_FIELDS = {
    "2018": {"asin": "item_id", "title": "title", "description": "description",
             "category": "genres", "brand": "brand", "price": "price", "main_cat": "main_category",
             "feature": "features"},
    "2023": {"parent_asin": "item_id", "title": "title", "description": "description",
             "categories": "genres", "store": "brand", "price": "price",
             "main_category": "main_category", "features": "features",
             "average_rating": "average_rating", "rating_number": "rating_number"},
}


def _stem(path: Path) -> str:
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def _is_json(path: Path) -> bool:
    return path.name.endswith(SUFFIXES)


def detect(path: Path) -> bool:
    if path.is_dir():
        return any(p.is_file() and _is_json(p) and not p.name.startswith("meta_")
                   for p in path.iterdir())
    return _is_json(path)


def _find_meta(reviews: Path) -> Path | None:
    stem = _stem(reviews)
    core = stem.removeprefix("reviews_").removesuffix("_5")
    for name in dict.fromkeys((stem, core)):
        for suffix in SUFFIXES:
            if (meta := reviews.with_name(f"meta_{name}{suffix}")).is_file():
                return meta
    return None


def _files(path: Path) -> tuple[Path, Path | None]:
    if path.is_file():
        if path.name.startswith("meta_"):
            raise DataError(f"{path}: this is an Amazon metadata file; give the reviews file "
                            "(or the folder holding both)")
        return path, _find_meta(path)
    found = sorted(p for p in path.iterdir() if p.is_file() and _is_json(p))
    reviews = [p for p in found if not p.name.startswith("meta_")]
    metas = [p for p in found if p.name.startswith("meta_")]
    if len(reviews) != 1:
        raise DataError(f"{path}: expected one Amazon reviews file (.json/.jsonl, optionally "
                        f".gz), found {len(reviews)}: {', '.join(p.name for p in reviews)}")
    if len(metas) > 1:
        raise DataError(f"{path}: several metadata files ({', '.join(p.name for p in metas)})")
    return reviews[0], metas[0] if metas else None


def _open_binary(path: Path) -> IO[bytes]:
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of the non-blank lines; DataError on bad bytes or bad gzip."""
    n = 0
    try:
        with _open_binary(path) as f:
            for n, raw in enumerate(f, 1):
                if raw.strip():
                    yield n, raw.decode("utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: line {n}: not valid UTF-8 text (byte {e.start} of the "
                        "line)") from None
    except (OSError, EOFError, zlib.error) as e:  # mostly a damaged or cut gzip stream
        raise DataError(f"{path}: cannot read or decompress after line {n} ({e})") from None


def _parse(path: Path, n: int, line: str) -> dict:
    if line.lstrip().startswith("{'"):
        raise DataError(f"{path}: line {n}: Python-literal records ({{'asin': ...}}, the "
                        "2014 metadata format) are not supported; use the 2018 or 2023 "
                        "release, which is JSON")
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: line {n} is not JSON ({e.msg}; truncated file?)") from None
    if not isinstance(record, dict):
        raise DataError(f"{path}: line {n} is not a JSON object")
    return record


def _first_record(path: Path) -> dict:
    for n, line in _lines(path):
        return _parse(path, n, line)
    raise DataError(f"{path}: file is empty")


def _read_fields(path: Path, schema: dict[str, pl.DataType], strict: bool = True
                 ) -> pl.DataFrame:
    """Just the fields in ``schema``; a String field takes numbers as written.

    With ``strict=False`` a value that does not fit its type becomes null. When polars
    refuses the file, a plain Python pass over the lines (on this error path only) finds
    the line to blame.
    """
    try:
        return pl.read_ndjson(path, schema=schema, ignore_errors=not strict)
    except (pl.exceptions.PolarsError, OSError) as e:
        for n, line in _lines(path):
            _parse(path, n, line)
        raise DataError(f"{path}: cannot parse ({str(e).splitlines()[0]})") from None


def _release(record: dict, path: Path, what: str, keys: dict[str, str]) -> str:
    """Which release a file is, from the fields of its first record."""
    for key, release in keys.items():
        if key in record:
            return release
    raise DataError(f"{path}: not Amazon {what}: the first record has fields "
                    f"{', '.join(list(record)[:8])}; expected {' or '.join(keys)}")


def _reviews(path: Path) -> pl.DataFrame:
    release = _release(_first_record(path), path, "reviews",
                       {"parent_asin": "2023", "user_id": "2023", "reviewerID": "2018"})
    fields = REVIEW_FIELDS[release]
    df = _read_fields(path, {f: pl.String for f in fields})
    field_of = {canonical: f for f, canonical in fields.items()}
    user, item, rating, ts = (field_of[c] for c in ("user_id", "item_id", "rating", "timestamp"))
    if release == "2023":
        df = df.with_columns(pl.coalesce(item, "asin").alias(item))
    for field in (user, item, ts):
        empty = df[field].is_null() | (df[field].str.strip_chars() == "")
        if empty.any():
            raise DataError(f"{path}: line {int(empty.arg_true()[0]) + 1}: field {field!r} "
                            "is missing or empty")
    # rows are named as lines; polars skips blank lines (real files have none), which
    # would shift the numbers
    df = to_int(to_float(df, rating, path, first_line=1), ts, path, first_line=1)
    if release == "2023":
        df = df.with_columns(pl.col(ts) // 1000)  # milliseconds -> seconds
    return df.select(pl.col(user).alias("user_id"), pl.col(item).alias("item_id"),
                     pl.col(rating).cast(pl.Float32).alias("rating"),
                     pl.col(ts).alias("timestamp"))


def _as_list(column: str, decoded: pl.Series) -> pl.Expr:
    """The decoded list, else the text as a one-element list (null for other JSON)."""
    text = pl.col(column)
    is_text = ~text.str.starts_with("[") & ~text.str.starts_with("{")
    return (pl.coalesce(decoded, pl.when(is_text).then(pl.concat_list(text)))
            .list.drop_nulls().alias(column))


def _meta(path: Path) -> pl.DataFrame:
    release = _release(_first_record(path), path, "metadata",
                       {"parent_asin": "2023", "asin": "2018"})
    fields = META_FIELDS[release]
    df = _read_fields(path, {f: pl.String for f in fields}).rename(fields)
    # Second pass for the list fields: where a value is a list of strings polars decodes it
    # (nulls elsewhere); a plain string becomes a one-element list; anything else is dropped.
    lists = {f: pl.List(pl.String) for f, c in fields.items() if c in LIST_COLUMNS}
    decoded = _read_fields(path, lists, strict=False).rename(fields, strict=False)
    if decoded.height != df.height:
        raise DataError(f"{path}: read {df.height} records, then {decoded.height}")
    df = df.with_columns(_as_list(c, decoded[c]) for c in LIST_COLUMNS)
    text = pl.col("description").list.join(" ").str.strip_chars()
    df = df.with_columns(pl.when(text != "").then(text).alias("description"),
                         *(pl.when(pl.col(c).str.strip_chars() != "")
                           .then(pl.col(c).str.strip_chars()).alias(c)
                           for c in ("title", "brand", "price", "main_category")))
    if release == "2023":
        df = df.with_columns(pl.col("average_rating").cast(pl.Float64, strict=False),
                             pl.col("rating_number").cast(pl.Float64, strict=False)
                             .cast(pl.Int64, strict=False))
    return (df.filter(pl.col("item_id").is_not_null() & (pl.col("item_id") != ""))
              .unique("item_id", keep="first", maintain_order=True))


def read(path: Path, meta: str | Path | bool = True, **unknown: object) -> RawData:
    """Reviews (file or folder) and their metadata.

    ``meta``: True finds ``meta_<name>`` beside the reviews, a path names the file, False
    skips metadata.
    """
    if unknown:
        raise ConfigError(f"unknown option(s) for the amazon format: {', '.join(unknown)} "
                          "(known: meta)")
    reviews, found = _files(path)
    meta_path = Path(meta).expanduser() if isinstance(meta, (str, Path)) else (
        found if meta else None)
    if meta_path is not None and not meta_path.is_file():
        raise DataError(f"{meta_path}: metadata file not found")
    inter = _reviews(reviews)
    items = _meta(meta_path) if meta_path is not None else None
    return RawData(inter, items, None, f"Amazon reviews {reviews}"
                   + (f" with metadata {meta_path}" if meta_path else ""))
