"""A data set: interactions plus the item and user tables, and the preprocessing that makes it.

Chronological order and ties
----------------------------
Each user's events are sorted by timestamp. Events with the same timestamp are ordered by
``Preprocessing.ties``:

- ``"file"`` (default): the order of the rows in the source file (a stable sort), the rule of
  most published pipelines. ML-100K has about 50,000 same-user same-timestamp pairs; with this
  rule its last (test) item is the one listed last in ``u.data``.
- ``"random"``: a pseudo-random order per user, a fixed hash of the pair's (user, item)
  indices: the same on every run of the same data and preprocessing (other filters number
  users and items differently, and so shuffle differently). Use it where the file order
  inside a user is not time: ML-1M's ``ratings.dat`` lists each user's movies in one order
  shared across users, not the rating clock's, so under ``"file"`` a model can learn which of
  several movies rated in the same second the file puts last, and 42% of ML-1M's test items
  share their second with the item before them. ``llmrec data info`` and
  ``benchmarks/seqrec_ties.py RUN_DIR`` measure both.

Sources without timestamps use row order as time (ties cannot occur).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from ..errors import ConfigError, DataError
from ._interactions import Interactions
from ._vocab import Vocabulary

TIES = ("file", "random")
TIME_ORDERS = ("timestamp", "file")
INTERACTION_SCHEMA = {"user_id": pl.String, "item_id": pl.String, "rating": pl.Float32,
                      "timestamp": pl.Int64}


@dataclass(frozen=True)
class Preprocessing:
    """What is done to raw interactions before they become a :class:`Dataset`.

    Steps run in this order: rating threshold, de-duplication, k-core filtering.

    - ``min_rating``: keep events with ``rating >= min_rating`` (explicit -> implicit).
    - ``dedup``: for repeated (user, item) pairs keep the ``"first"`` or ``"last"`` event in
      time, or ``"none"`` to keep all (repeat consumption).
    - ``user_core`` / ``item_core``: repeatedly drop users with fewer than ``user_core`` events
      and items with fewer than ``item_core`` events until both hold (0 = off).
    - ``ties``: the order of a user's events with the same timestamp, ``"file"`` or
      ``"random"`` (see the module docstring).
    - ``time_order``: ``"timestamp"`` orders each user's events by the timestamp column
      (file order where there is none); ``"file"`` ignores timestamps and takes the order
      of the rows in the source as time order.
    """

    min_rating: float | None = None
    dedup: Literal["first", "last", "none"] = "first"
    user_core: int = 0
    item_core: int = 0
    ties: Literal["file", "random"] = "file"
    time_order: Literal["timestamp", "file"] = "timestamp"

    def __post_init__(self) -> None:
        if self.time_order not in TIME_ORDERS:
            raise ConfigError(f"time_order must be 'timestamp' or 'file', not "
                              f"{self.time_order!r}")
        if self.dedup not in ("first", "last", "none"):
            raise ConfigError(f"dedup must be 'first', 'last' or 'none', not {self.dedup!r}")
        if self.ties not in TIES:
            raise ConfigError(f"ties must be 'file' or 'random', not {self.ties!r}")
        for name in ("user_core", "item_core"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ConfigError(f"{name} must be a non-negative integer, "
                                  f"not {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Dataset:
    """Interactions with their vocabularies and feature tables.

    ``item_features`` has one row per item index (row ``i`` describes ``items.ids[i]``), with
    an ``item_id`` column followed by whatever the source knows (``title``, ``year``,
    ``genres`` as a list of strings, ``description``, ...); ``user_features`` likewise.
    """

    name: str
    interactions: Interactions
    users: Vocabulary
    items: Vocabulary
    item_features: pl.DataFrame
    user_features: pl.DataFrame
    meta: dict = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def item_titles(self) -> list[str]:
        """A display name per item index: the title where known, else the raw id."""
        if "title" in self.item_features.columns:
            titles = self.item_features["title"].to_list()
            return [t if t else raw for t, raw in zip(titles, self.items.ids.tolist())]
        return self.items.ids.tolist()

    def history(self, user_id: object) -> np.ndarray:
        """All items of one user (raw id) in time order."""
        return self.interactions.sequence(self.users.index(user_id))


def _kcore(df: pl.DataFrame, user_core: int, item_core: int) -> pl.DataFrame:
    while True:
        n = df.height
        if user_core > 1:
            df = df.filter(pl.len().over("user_id") >= user_core)
        if item_core > 1:
            df = df.filter(pl.len().over("item_id") >= item_core)
        if df.height == n:
            return df


def _pair_hash(u: np.ndarray, i: np.ndarray) -> np.ndarray:
    """splitmix64 of (user, item): a fixed pseudo-random tie-break key."""
    x = (u.astype(np.uint64) << np.uint64(32)) | i.astype(np.uint64)
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _features(vocab: Vocabulary, key: str, table: pl.DataFrame | None, what: str) -> pl.DataFrame:
    base = pl.DataFrame({key: vocab.ids.tolist(), "_idx": np.arange(len(vocab))},
                        schema={key: pl.String, "_idx": pl.Int64})
    if table is None or table.height == 0:
        return base.drop("_idx")
    if key not in table.columns:
        raise DataError(f"{what} table has no {key!r} column (columns: {table.columns})")
    table = table.with_columns(pl.col(key).cast(pl.String))
    dup = table.filter(pl.col(key).is_duplicated())
    if dup.height:
        raise DataError(f"{what} table lists {key} {dup[key][0]!r} more than once")
    return base.join(table, on=key, how="left").sort("_idx").drop("_idx")


def build_dataset(name: str, interactions: pl.DataFrame, items: pl.DataFrame | None = None,
                  users: pl.DataFrame | None = None,
                  preprocessing: Preprocessing | None = None, meta: dict | None = None) -> Dataset:
    """Turn raw frames into a :class:`Dataset`.

    ``interactions`` needs string columns ``user_id`` and ``item_id`` and may have ``rating``
    (float) and ``timestamp`` (integer); its row order is the source order (the tie-break).
    """
    prep = preprocessing or Preprocessing()
    missing = [c for c in ("user_id", "item_id") if c not in interactions.columns]
    if missing:
        raise DataError(f"interactions have no {missing[0]!r} column "
                        f"(columns: {interactions.columns})")
    df = interactions.with_row_index("_row").with_columns(
        pl.col("user_id").cast(pl.String), pl.col("item_id").cast(pl.String))
    if "rating" not in df.columns:
        df = df.with_columns(pl.lit(None, dtype=pl.Float32).alias("rating"))
    has_time = "timestamp" in df.columns
    if not has_time or prep.time_order == "file":
        df = df.with_columns(pl.lit(None, dtype=pl.Int64).alias("timestamp"))
    df = df.with_columns(pl.col("rating").cast(pl.Float32),
                         pl.col("timestamp").cast(pl.Int64).fill_null(pl.col("_row").cast(pl.Int64)))
    if df.select(pl.col("user_id").is_null().any() | pl.col("item_id").is_null().any()).item():
        raise DataError("interactions have empty user_id or item_id values")
    n_raw = df.height

    if prep.min_rating is not None:
        if df["rating"].null_count() == df.height:
            raise ConfigError(f"min_rating={prep.min_rating} needs ratings, the data has none")
        df = df.filter(pl.col("rating") >= prep.min_rating)
    df = df.sort(["user_id", "timestamp", "_row"])
    if prep.dedup != "none":
        df = df.unique(subset=["user_id", "item_id"], keep=prep.dedup, maintain_order=True)
    df = _kcore(df, prep.user_core, prep.item_core)
    if df.height == 0:
        raise DataError(f"no interactions left in {name!r} after preprocessing "
                        f"({n_raw} before; {prep.to_dict()})")

    user_vocab = Vocabulary.from_values(df["user_id"].unique().to_numpy())
    item_vocab = Vocabulary.from_values(df["item_id"].unique().to_numpy())
    df = (df.join(pl.DataFrame({"user_id": user_vocab.ids.tolist(),
                                "u": np.arange(len(user_vocab), dtype=np.int32)}),
                  on="user_id")
            .join(pl.DataFrame({"item_id": item_vocab.ids.tolist(),
                                "i": np.arange(len(item_vocab), dtype=np.int32)}),
                  on="item_id"))
    order = ["u", "timestamp", "_row"]
    if prep.ties == "random":
        df = df.with_columns(_tie=pl.Series(_pair_hash(df["u"].to_numpy(), df["i"].to_numpy())))
        order.insert(2, "_tie")
    df = df.sort(order)
    inter = Interactions(df["u"].to_numpy(), df["i"].to_numpy(), df["timestamp"].to_numpy(),
                         df["rating"].fill_null(float("nan")).to_numpy(),
                         len(user_vocab), len(item_vocab))
    meta = dict(meta or {})
    meta.update(preprocessing=prep.to_dict(), raw_interactions=n_raw, timestamps=has_time,
                time_order="timestamp" if has_time and prep.time_order == "timestamp"
                else "file")
    return Dataset(name, inter, user_vocab, item_vocab,
                   _features(item_vocab, "item_id", items, "item"),
                   _features(user_vocab, "user_id", users, "user"), meta)
