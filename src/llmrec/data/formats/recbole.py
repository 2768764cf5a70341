"""RecBole atomic files: ``NAME.inter``, ``NAME.item``, ``NAME.user`` (+ ``.kg``, ``.link``).

Tab-separated, UTF-8, one header row of typed fields such as ``user_id:token``,
``movie_title:token_seq`` or ``rating:float``; ``token_seq`` values are space-separated.
See https://recbole.io/docs/user_guide/data/atomic_files.html.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ...errors import DataError
from ._common import (RawData, read_delimited, require_columns, split_title_year, to_float,
                      to_int)

FIELD_TYPES = {"token", "token_seq", "float", "float_seq"}
# RecBole field names -> llmrec's canonical names
CANONICAL = {"movie_title": "title", "title": "title", "release_year": "year", "year": "year",
             "class": "genres", "genre": "genres", "genres": "genres", "categories": "genres",
             "description": "description"}


def _stem_files(path: Path) -> dict[str, Path]:
    if path.is_file():
        path = path.parent
    inters = sorted(path.glob("*.inter"))
    if not inters:
        raise DataError(f"{path}: no .inter file (RecBole atomic format)")
    if len(inters) > 1:
        raise DataError(f"{path}: several .inter files ({', '.join(p.name for p in inters)}); "
                        "point at one data set folder")
    stem = inters[0].with_suffix("")
    return {ext: Path(f"{stem}.{ext}") for ext in ("inter", "item", "user", "kg", "link")
            if Path(f"{stem}.{ext}").exists()}


def detect(path: Path) -> bool:
    folder = path if path.is_dir() else path.parent
    return (path.is_dir() and any(folder.glob("*.inter"))) or path.suffix == ".inter"


def read_atomic(path: Path) -> pl.DataFrame:
    """One atomic file with typed columns (``name:type`` header stripped to ``name``)."""
    df = read_delimited(path, "\t", None)
    names, types = [], {}
    for col in df.columns:
        name, sep, ftype = col.strip().rpartition(":")
        if not sep or ftype not in FIELD_TYPES:
            raise DataError(f"{path}: header field {col!r} is not NAME:TYPE with TYPE one of "
                            f"{sorted(FIELD_TYPES)}")
        names.append(name)
        types[name] = ftype
    df.columns = names
    for name, ftype in types.items():
        if ftype == "float" and name in ("timestamp",):
            df = to_int(df, name, path)
        elif ftype == "float":
            df = to_float(df, name, path)
        elif ftype in ("token_seq", "float_seq"):
            df = df.with_columns(pl.col(name).str.split(" ").list.eval(
                pl.element().filter(pl.element() != "")))
    return df


def _canonical_items(df: pl.DataFrame, path: Path) -> pl.DataFrame:
    rename = {c: CANONICAL[c] for c in df.columns if c in CANONICAL and c != CANONICAL[c]
              and CANONICAL[c] not in df.columns}
    df = df.rename(rename)
    if "title" in df.columns and df["title"].dtype == pl.List(pl.String):
        df = df.with_columns(pl.col("title").list.join(" "))
    if "year" in df.columns:
        df = df.with_columns(pl.col("year").cast(pl.Float64, strict=False)
                             .cast(pl.Int32, strict=False))  # inf, 1e10, "V" -> null
        if "title" in df.columns:   # ML-100K item 1412: "... Giving (1995)" with year "V"
            title, year = split_title_year(df["title"])
            missing = df["year"].is_null()
            df = df.with_columns(pl.when(missing).then(title).otherwise(pl.col("title"))
                                 .alias("title"),
                                 pl.coalesce(pl.col("year"), year).alias("year"))
    if "genres" in df.columns and df["genres"].dtype == pl.String:
        df = df.with_columns(pl.col("genres").str.split(" "))
    return df


def read(path: Path, **_: object) -> RawData:
    files = _stem_files(path)
    inter = read_atomic(files["inter"])
    require_columns(inter, ["user_id", "item_id"], files["inter"])
    keep = [c for c in ("user_id", "item_id", "rating", "timestamp") if c in inter.columns]
    # declared as token: still numbers for every later stage
    if inter.schema.get("rating") == pl.String:
        inter = to_float(inter, "rating", files["inter"])
    if inter.schema.get("timestamp") == pl.String:
        inter = to_int(inter, "timestamp", files["inter"])
    items = users = None
    if "item" in files:
        items = _canonical_items(read_atomic(files["item"]), files["item"])
        require_columns(items, ["item_id"], files["item"])
    if "user" in files:
        users = read_atomic(files["user"])
        require_columns(users, ["user_id"], files["user"])
    extra = {k: v for k, v in files.items() if k in ("kg", "link")}
    return RawData(inter.select(keep), items, users, f"recbole atomic files {files['inter']}",
                   extra)
