"""MovieLens as GroupLens distributes it.

- ML-100K: ``u.data`` (user item rating timestamp, tab-separated), ``u.item`` (``|``-separated,
  latin-1: id, title "Name (Year)", release date, video date, IMDb URL, 19 genre flags),
  ``u.user`` (id|age|gender|occupation|zip), ``u.genre`` (genre names).
- ML-1M: ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``), ``movies.dat``
  (``MovieID::Title::Genre|Genre``), ``users.dat`` (``UserID::Gender::Age::Occupation::Zip``);
  latin-1.

Titles are split into ``title`` and ``year`` ("Toy Story (1995)" -> "Toy Story", 1995), as
RecBole's copies of the same data have them.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ...errors import DataError
from ._common import RawData, read_delimited, read_text, split_title_year, to_float, to_int

ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                 "Romance", "Sci-Fi", "Thriller", "War", "Western"]


def _folder(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def detect(path: Path) -> bool:
    folder = _folder(path)
    return (folder / "u.data").exists() or (folder / "ratings.dat").exists()


def _ratings(df: pl.DataFrame, path: Path) -> pl.DataFrame:
    df = to_int(df, "timestamp", path, first_line=1)
    df = to_float(df, "rating", path, first_line=1)
    for col in ("user_id", "item_id"):
        df = to_int(df, col, path, first_line=1).with_columns(pl.col(col).cast(pl.String))
    return df


def _genre_names(path: Path) -> list[str]:
    """``u.genre``: ``name|index`` lines (blank lines ignored) -> names in index order."""
    rows = []
    for n, line in enumerate(read_text(path, "latin-1").splitlines(), 1):
        if not line.strip():
            continue
        name, sep, index = line.rpartition("|")
        if not sep or not index.strip().isdigit():
            raise DataError(f"{path}: line {n}: expected 'genre|index', got {line!r}")
        rows.append((int(index), name))
    return [name for _, name in sorted(rows)]


def _read_100k(folder: Path) -> RawData:
    inter = _ratings(read_delimited(folder / "u.data", "\t",
                                    ["user_id", "item_id", "rating", "timestamp"]),
                     folder / "u.data")
    items = users = None
    if (folder / "u.item").exists():
        genres = ML100K_GENRES
        if (folder / "u.genre").exists():
            genres = _genre_names(folder / "u.genre")
        cols = ["item_id", "raw_title", "release_date", "video_release_date", "imdb_url", *genres]
        raw = read_delimited(folder / "u.item", "|", cols, encoding="latin-1")
        title, year = split_title_year(raw["raw_title"])
        flags = pl.concat_list([pl.when(pl.col(g) == "1").then(pl.lit(g)) for g in genres])
        items = raw.select(
            "item_id", title.alias("title"),
            pl.coalesce(year, pl.col("release_date").str.slice(-4).cast(pl.Int32, strict=False))
            .alias("year"),
            flags.list.drop_nulls().alias("genres"), "release_date", "imdb_url")
    if (folder / "u.user").exists():
        users = read_delimited(folder / "u.user", "|",
                               ["user_id", "age", "gender", "occupation", "zip_code"],
                               encoding="latin-1")
    return RawData(inter, items, users, f"MovieLens raw files in {folder}")


def _dat(path: Path, columns: list[str]) -> pl.DataFrame:
    text = read_text(path, "latin-1")
    if "\t" in text:
        raise DataError(f"{path}: unexpected tab character in a '::'-separated file")
    return read_delimited(path, "\t", columns, text=text.replace("::", "\t"))


def _read_1m(folder: Path) -> RawData:
    inter = _ratings(_dat(folder / "ratings.dat", ["user_id", "item_id", "rating", "timestamp"]),
                     folder / "ratings.dat")
    items = users = None
    if (folder / "movies.dat").exists():
        raw = _dat(folder / "movies.dat", ["item_id", "raw_title", "genres"])
        title, year = split_title_year(raw["raw_title"])
        items = raw.select("item_id", title.alias("title"), year.alias("year"),
                           pl.col("genres").str.split("|"))
    if (folder / "users.dat").exists():
        users = _dat(folder / "users.dat", ["user_id", "gender", "age", "occupation", "zip_code"])
    return RawData(inter, items, users, f"MovieLens raw files in {folder}")


def read(path: Path, **_: object) -> RawData:
    folder = _folder(path)
    if (folder / "u.data").exists():
        return _read_100k(folder)
    if (folder / "ratings.dat").exists():
        return _read_1m(folder)
    raise DataError(f"{folder}: neither u.data (ML-100K) nor ratings.dat (ML-1M) found")
