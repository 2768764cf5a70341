"""One entry point from a name or a path to a :class:`Dataset`."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..errors import ConfigError, DataError
from ._dataset import Dataset, Preprocessing, build_dataset
from ._fetch import REGISTRY, fetch
from .formats import FORMATS, read_path

CANONICAL_ITEM_COLUMNS = ("item_id", "title", "year", "genres", "description")


def load_dataset(source: str | Path, *, format: str = "auto",
                 preprocessing: Preprocessing | None = None, **options: object) -> Dataset:
    """Load a registered data set by name (fetching it if needed) or files at a path.

    ``format`` and ``options`` (e.g. a column mapping for CSV) apply to paths only.
    """
    text = str(source)
    if format != "auto" and format not in FORMATS:
        raise ConfigError(f"unknown data format {format!r}; choose one of "
                          f"{', '.join(FORMATS)}")
    if text in REGISTRY:
        given = sorted(k for k, v in options.items() if v)
        if given or format != "auto":
            raise ConfigError(f"{text} is a registered data set; reader options "
                              f"({', '.join(given) or 'format'}) apply to files only")
        spec = REGISTRY[text]
        raw = read_path(fetch(text))
        if spec.fixup:
            raw = spec.fixup(raw)
        name = text
    else:
        path = Path(text).expanduser()
        if not path.exists() and "/" not in text and "." not in text:
            raise ConfigError(f"unknown data set {text!r}; known: {', '.join(REGISTRY)} "
                              "(or give a path to files)")
        raw = read_path(path, format, **options)
        name = path.stem if path.is_file() else path.name
    meta = {"source": raw.source, "extra_files": {k: str(v) for k, v in raw.extra_files.items()}}
    named = dict(options.get("item_columns") or {})             # type: ignore[call-overload]
    facts = [n for n in named if n not in CANONICAL_ITEM_COLUMNS]
    if facts:   # other item columns the user named: shown in item prompts and texts
        meta["item_fact_columns"] = facts
    return build_dataset(name, raw.interactions, raw.items, raw.users, preprocessing, meta)


def read_tsv(path: str | Path, names: list[str]) -> pl.DataFrame:
    """A tab-separated file of exactly ``names`` columns, all read as text (no quoting, no
    type inference); one :class:`DataError` line naming the file when it cannot be read or
    has another number of columns."""
    try:
        df = pl.read_csv(path, separator="\t", quote_char=None, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as e:
        raise DataError(f"{path}: cannot read ({str(e).splitlines()[0]})") from None
    if df.width != len(names):
        raise DataError(f"{path}: expected {len(names)} tab-separated columns, got {df.width}")
    df.columns = names
    return df
