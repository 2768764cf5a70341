"""CTR samples from rated interactions: labels, user/item features, recent history, splits.

The protocol follows KAR (Xi et al. 2023, on ML-1M), applied to any rated data set (default
ML-100K, loaded without k-core filtering so rare items stay in -- they are where knowledge can
help -- and with repeated (user, item) pairs reduced to the first):

- **label** = 1 if ``rating >= click_threshold`` (4) else 0; no negative sampling.
- **profile / samples.** Each user's time-ordered events are cut in two: the first
  ``min((n + 1) // 2, profile_events)`` events are the *profile* -- the only events user
  knowledge (an LLM prompt, or the metadata stand-in) may see -- and are never samples; every
  later event is one sample. So no sample's label is ever shown to a knowledge generator.
- **history** = the user's last ``history_len`` events with a timestamp *strictly* earlier than
  the sample's (same-second events are excluded, whatever their file order), with their
  ratings; oldest first, padded at the front::

      events of user u (time):  a@1  b@2  c@2  d@5   history_len = 3, pad = P
      sample d -> history       [a, b, c]
      sample c -> history       [P, P, a]      (b shares c's second: not strictly earlier)

- **split** ``"user"`` (default, KAR's): users are shuffled with ``split_seed``; a
  ``test_fraction`` of users is test and a ``valid_fraction`` valid (KAR's 9:1 train:test with a
  validation tenth carved out of the training users: 8:1:1). Test users are never seen in
  training -- their user-id embedding is untrained -- which is the open-world setting KAR
  targets. ``"chronological"``: each user's samples in time order, the last ``test_fraction``
  to test, the ``valid_fraction`` before them to valid (at least one each when the user has 3+
  samples); every user is seen in training.

Features: user id, age (bucketed 1/18/25/35/45/50/56, as ML-1M), gender, occupation, the first
``zip_prefix`` characters of the zip code, item id, year, genres (multi-valued); categorical
codes start at 1, 0 = unknown. Columns a data set lacks are left out of the schema.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import polars as pl
import torch

from ..config import require_fraction, require_positive, require_seed
from ..data import Dataset, Interactions, Preprocessing, Split, load_dataset
from ..errors import ConfigError, DataError

TRAIN, VALID, TEST = 0, 1, 2
AGE_BINS = np.array([18, 25, 35, 45, 50, 56])          # ML-1M's age groups


@dataclass
class CTRDataConfig:
    dataset: str = "ml-100k"
    click_threshold: float = 4.0
    history_len: int = 10
    profile_events: int = 30
    split: Literal["user", "chronological"] = "user"
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 0
    zip_prefix: int = 2

    def __post_init__(self) -> None:
        require_positive(self, "history_len", "zip_prefix")
        require_seed(self, "split_seed")
        require_fraction(self, "valid_fraction", "test_fraction")
        if self.profile_events < 0:
            raise ConfigError(f"profile_events must be >= 0, not {self.profile_events}")
        if self.valid_fraction + self.test_fraction >= 1:
            raise ConfigError("valid_fraction + test_fraction must be < 1")


@dataclass(frozen=True)
class CTRSchema:
    """Sizes a CTR model is built for (saved with the model)."""

    n_users: int
    n_items: int
    user_fields: dict[str, int]      # field name -> cardinality (code 0 = unknown)
    item_fields: dict[str, int]
    n_genres: int                    # genre codes 1..n_genres-1, 0 = padding
    history_len: int
    knowledge_dim: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class CTRData:
    """Samples (rows) plus per-user and per-item tables; every array is numpy.

    Samples: ``user``, ``item`` (n,) dense indices; ``label`` (n,) float32 0/1; ``timestamp``;
    ``hist_items`` (n, H) item indices, pad = ``n_items``; ``hist_ratings`` (n, H) 1..5, 0 = pad;
    ``part`` (n,) 0 train / 1 valid / 2 test. Tables: ``user_table`` (n_users, Fu) and
    ``item_table`` (n_items, Fi) codes, ``item_genres`` (n_items, G) codes with 0 = padding,
    optional ``user_knowledge`` (n_users, K) / ``item_knowledge`` (n_items, K) float32 vectors,
    optional ``item_titles`` (n_items,) display names (what LLM click models put in prompts).
    ``profile`` holds the events knowledge may be built from (see the module docstring).
    """

    schema: CTRSchema
    user: np.ndarray
    item: np.ndarray
    label: np.ndarray
    timestamp: np.ndarray
    hist_items: np.ndarray
    hist_ratings: np.ndarray
    part: np.ndarray
    user_table: np.ndarray
    item_table: np.ndarray
    item_genres: np.ndarray
    user_knowledge: np.ndarray | None = None
    item_knowledge: np.ndarray | None = None
    profile: Interactions | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    item_titles: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.label)

    def take(self, index: np.ndarray) -> CTRData:
        """The samples at ``index`` (tables shared)."""
        index = np.asarray(index, dtype=np.int64)
        rows = {k: getattr(self, k)[index] for k in ("user", "item", "label", "timestamp",
                                                     "hist_items", "hist_ratings", "part")}
        return replace(self, **rows)

    def select(self, part: int) -> CTRData:
        return self.take(np.flatnonzero(self.part == part))

    @property
    def train(self) -> CTRData:
        return self.select(TRAIN)

    @property
    def valid(self) -> CTRData:
        return self.select(VALID)

    @property
    def test(self) -> CTRData:
        return self.select(TEST)

    @property
    def has_knowledge(self) -> bool:
        return self.user_knowledge is not None and self.item_knowledge is not None

    def with_knowledge(self, item: np.ndarray, user: np.ndarray) -> CTRData:
        """A copy with knowledge vectors: ``item`` (n_items, K), ``user`` (n_users, K)."""
        item = np.ascontiguousarray(item, dtype=np.float32)
        user = np.ascontiguousarray(user, dtype=np.float32)
        if item.shape[0] != self.schema.n_items or user.shape[0] != self.schema.n_users \
                or item.shape[1] != user.shape[1]:
            raise DataError(f"knowledge tables of shape {item.shape} (items) and {user.shape} "
                            f"(users) do not fit {self.schema.n_items} items and "
                            f"{self.schema.n_users} users with one dimension")
        return replace(self, item_knowledge=item, user_knowledge=user,
                       schema=replace(self.schema, knowledge_dim=item.shape[1]))

    def with_item_codes(self, codes: np.ndarray, prefix: str = "sid") -> CTRData:
        """A copy whose items carry one more categorical field per column of ``codes``
        (n_items, L), integers >= 0 such as the levels of semantic IDs: field
        ``f"{prefix}{l}"`` holds ``codes[:, l] + 1`` (0 stays "unknown")."""
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[0] != self.schema.n_items \
                or not np.issubdtype(codes.dtype, np.integer) or (codes < 0).any():
            raise DataError(f"item codes must be non-negative integers of shape "
                            f"({self.schema.n_items}, L), not {codes.dtype} {codes.shape}")
        names = [f"{prefix}{level}" for level in range(codes.shape[1])]
        taken = [n for n in names if n in self.schema.item_fields]
        if taken:
            raise DataError(f"the items already have a field {taken[0]!r}")
        fields = {**self.schema.item_fields,
                  **{n: int(codes[:, k].max(initial=0)) + 2 for k, n in enumerate(names)}}
        table = np.concatenate([self.item_table, codes.astype(np.int64) + 1], axis=1)
        return replace(self, item_table=table, schema=replace(self.schema, item_fields=fields))

    def without_knowledge(self) -> CTRData:
        """A copy without knowledge vectors (what a model with prestored vectors serves from)."""
        return replace(self, item_knowledge=None, user_knowledge=None)

    def batch(self, index: np.ndarray) -> dict[str, torch.Tensor]:
        """Tensors of the samples at ``index``; shapes in comments (B = len(index))."""
        index = np.asarray(index, dtype=np.int64)
        u, i = self.user[index], self.item[index]
        out = {"user": torch.from_numpy(u),                                   # (B,)
               "item": torch.from_numpy(i),                                   # (B,)
               "user_fields": torch.from_numpy(self.user_table[u]),           # (B, Fu)
               "item_fields": torch.from_numpy(self.item_table[i]),           # (B, Fi)
               "genres": torch.from_numpy(self.item_genres[i]),               # (B, G)
               "hist_items": torch.from_numpy(self.hist_items[index]),        # (B, H)
               "hist_ratings": torch.from_numpy(self.hist_ratings[index]),    # (B, H)
               "label": torch.from_numpy(self.label[index])}                  # (B,)
        if self.has_knowledge:
            out["user_knowledge"] = torch.from_numpy(self.user_knowledge[u])  # (B, K)
            out["item_knowledge"] = torch.from_numpy(self.item_knowledge[i])  # (B, K)
        return out


def history_index(user: np.ndarray, timestamp: np.ndarray, indptr: np.ndarray,
                  history_len: int) -> tuple[np.ndarray, np.ndarray]:
    """For events sorted by (user, timestamp): the positions of each event's history.

    Returns ``idx`` (n, H) int64 and ``valid`` (n, H) bool: row ``k`` lists the last ``H``
    events of the same user with a timestamp strictly below event ``k``'s, oldest first,
    left-padded (``valid`` false, ``idx`` 0).
    """
    n = len(user)
    new_group = np.ones(n, dtype=bool)           # first event of a (user, timestamp) group
    new_group[1:] = (user[1:] != user[:-1]) | (timestamp[1:] != timestamp[:-1])
    end = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))        # exclusive end
    idx = end[:, None] - history_len + np.arange(history_len)                # (n, H)
    valid = idx >= indptr[user][:, None]
    return np.where(valid, idx, 0), valid


def _codes(values: pl.Series) -> tuple[np.ndarray, int]:
    """Codes 1..V in sorted order of the distinct values, 0 for null; and V + 1."""
    vocab = values.drop_nulls().unique().sort()
    lookup = pl.DataFrame({"v": vocab, "code": np.arange(1, len(vocab) + 1)})
    codes = (pl.DataFrame({"v": values}).join(lookup, on="v", how="left", maintain_order="left")
             ["code"].fill_null(0).to_numpy().astype(np.int64))
    return codes, len(vocab) + 1


def _user_table(ds: Dataset, cfg: CTRDataConfig) -> tuple[np.ndarray, dict[str, int]]:
    f = ds.user_features
    cols, sizes = [], {}
    if "age" in f.columns:
        age = f["age"].cast(pl.Float64, strict=False).to_numpy()
        code = np.where(np.isnan(age), 0, np.searchsorted(AGE_BINS, np.nan_to_num(age),
                                                          side="right") + 1)
        cols.append(code.astype(np.int64))
        sizes["age"] = len(AGE_BINS) + 2
    for name, series in (("gender", f["gender"] if "gender" in f.columns else None),
                         ("occupation", f["occupation"] if "occupation" in f.columns else None),
                         ("zip", f["zip_code"].str.slice(0, cfg.zip_prefix)
                          if "zip_code" in f.columns else None)):
        if series is not None:
            code, size = _codes(series.cast(pl.String))
            cols.append(code)
            sizes[name] = size
    table = np.stack(cols, 1) if cols else np.zeros((ds.n_users, 0), np.int64)
    return table, sizes


def _item_tables(ds: Dataset) -> tuple[np.ndarray, dict[str, int], np.ndarray, int]:
    f = ds.item_features
    table, sizes = np.zeros((ds.n_items, 0), np.int64), {}
    if "year" in f.columns:
        code, size = _codes(f["year"])
        table, sizes = code[:, None], {"year": size}
    if "genres" not in f.columns:
        return table, sizes, np.zeros((ds.n_items, 1), np.int64), 1
    long = (f.select(pl.col("genres").fill_null([])).with_row_index("row")
            .explode("genres").drop_nulls("genres"))
    code, n_genres = _codes(long["genres"])
    rows = long["row"].to_numpy().astype(np.int64)
    slot = np.arange(len(rows)) - np.searchsorted(rows, rows)      # position inside the list
    genres = np.zeros((ds.n_items, max(1, int(slot.max(initial=0)) + 1)), np.int64)
    genres[rows, slot] = code
    return table, sizes, genres, n_genres


def _split(user: np.ndarray, n_users: int, cfg: CTRDataConfig) -> np.ndarray:
    part = np.zeros(len(user), dtype=np.int8)
    if cfg.split == "user":
        order = np.random.default_rng(cfg.split_seed).permutation(n_users)
        n_test = int(round(n_users * cfg.test_fraction))
        n_valid = int(round(n_users * cfg.valid_fraction))
        user_part = np.zeros(n_users, dtype=np.int8)
        user_part[order[:n_test]] = TEST
        user_part[order[n_test:n_test + n_valid]] = VALID
        return user_part[user]
    counts = np.bincount(user, minlength=n_users)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(len(user)) - first[user]                         # position among samples
    m = counts[user]
    n_test = np.where(m >= 3, np.maximum(1, np.round(m * cfg.test_fraction)), 0)
    n_valid = np.where(m >= 3, np.maximum(1, np.round(m * cfg.valid_fraction)), 0)
    part[pos >= m - n_test] = TEST
    part[(pos >= m - n_test - n_valid) & (pos < m - n_test)] = VALID
    return part


def load_ctr_dataset(name: str, **options: Any) -> Dataset:
    """A data set as the CTR task reads it: no k-core filtering (rare items stay in, they are
    where knowledge can help), repeated (user, item) pairs reduced to the first. ``options``:
    the reader options of a path (``format``, ``separator``, ``encoding``, side files...)."""
    return load_dataset(name, preprocessing=Preprocessing(), **options)


def profile_events(inter: Interactions, limit: int) -> np.ndarray:
    """Bool per event: in its user's *profile* -- the first ``min((n + 1) // 2, limit)`` of
    the user's ``n`` time-ordered events (see the module docstring)."""
    profile_len = np.minimum((inter.lengths() + 1) // 2, limit)
    return inter.positions() < profile_len[inter.user]


def profile_split(ds: Dataset, cfg: CTRDataConfig | None = None) -> Split:
    """The profile events as the training part, every CTR sample held out (test): the split
    that LLM user knowledge for the CTR task is generated from, so that no prompt can show a
    sample's rating (``llmrec knowledge generate --history ctr-profile``)."""
    cfg = cfg or CTRDataConfig()
    part = np.where(profile_events(ds.interactions, cfg.profile_events), TRAIN, TEST)
    return Split(ds.interactions, part, "ctr-profile", {"profile_events": cfg.profile_events})


def ctr_store_name(dataset: str, cfg: CTRDataConfig | None = None) -> str:
    """Name of the knowledge store built from :func:`profile_split` (one per profile size, so
    knowledge from another cut -- which could show CTR labels -- is never picked up)."""
    cfg = cfg or CTRDataConfig()
    return f"{dataset}-ctr-profile{cfg.profile_events}"


def build_ctr_data(ds: Dataset, cfg: CTRDataConfig | None = None) -> CTRData:
    """CTR samples, features and split of ``ds`` (see the module docstring)."""
    cfg = cfg or CTRDataConfig()
    inter = ds.interactions
    if np.isnan(inter.rating).all():
        raise DataError(f"{ds.name} has no ratings; CTR labels need them (rating >= "
                        f"{cfg.click_threshold} is a click)")
    is_sample = ~profile_events(inter, cfg.profile_events)
    idx, valid = history_index(inter.user, inter.timestamp, inter.indptr, cfg.history_len)
    idx, valid = idx[is_sample], valid[is_sample]
    stars = np.clip(np.nan_to_num(inter.rating, nan=0).round(), 0, 5).astype(np.int64)
    user = inter.user[is_sample].astype(np.int64)
    user_table, user_sizes = _user_table(ds, cfg)
    item_table, item_sizes, genres, n_genres = _item_tables(ds)
    schema = CTRSchema(ds.n_users, ds.n_items, user_sizes, item_sizes, n_genres,
                       cfg.history_len)
    label = (np.nan_to_num(inter.rating[is_sample], nan=-np.inf)
             >= cfg.click_threshold).astype(np.float32)
    part = _split(user, ds.n_users, cfg)
    counts = np.bincount(part, minlength=3)
    meta = {"dataset": ds.name, "config": asdict(cfg), "samples": int(len(label)),
            "positive_rate": round(float(label.mean()), 4),
            "profile_events": int((~is_sample).sum()),
            "train": int(counts[0]), "valid": int(counts[1]), "test": int(counts[2])}
    return CTRData(schema, user, inter.item[is_sample].astype(np.int64), label,
                   inter.timestamp[is_sample],
                   np.where(valid, inter.item[idx], ds.n_items).astype(np.int64),
                   np.where(valid, stars[idx], 0), part, user_table, item_table, genres,
                   profile=inter.select(~is_sample), meta=meta,
                   item_titles=tuple(str(t) for t in ds.item_titles()))


def training_part(ds: Dataset, split: Split) -> Dataset:
    """``ds`` restricted to the training events of a sequential run's ``split``: what a ranker
    that serves the run may learn from (no user's validation or test event is in it)."""
    return replace(ds, interactions=split.train)


def next_item_data(data: CTRData, negatives: int = 4, seed: int = 0) -> CTRData:
    """Implicit-feedback samples for the serving task ("what does the user watch next"):
    every sample event of ``data`` becomes a positive (label 1, whatever its rating) and gets
    ``negatives`` items drawn uniformly from those the user has no event with (profile or
    sample) as negatives (label 0) with the same history and part; the history's ratings are
    dropped (set to 0, the padding code), since a served request carries none.

    Sampled negatives for implicit feedback as in BPR (Rendle et al. 2009) and YouTube's
    candidate ranking (Covington et al. 2016); the positive's features and history are shared.
    """
    if negatives < 1:
        raise ConfigError(f"negatives must be >= 1, not {negatives}")
    rng = np.random.default_rng(seed)
    n, n_items = len(data), data.schema.n_items
    users = [data.user]
    items = [data.item]
    if data.profile is not None:
        users.append(data.profile.user.astype(np.int64))
        items.append(data.profile.item.astype(np.int64))
    seen = np.unique(np.concatenate(users) * n_items + np.concatenate(items))    # sorted keys
    neg = rng.integers(0, n_items, size=(n, negatives))
    owner = np.repeat(data.user, negatives).reshape(n, negatives)
    for _ in range(100):                          # redraw negatives the user has an event with
        key = owner * n_items + neg
        pos = np.searchsorted(seen, key).clip(max=len(seen) - 1)
        clash = seen[pos] == key
        if not clash.any():
            break
        neg[clash] = rng.integers(0, n_items, size=int(clash.sum()))
    rows = np.concatenate([np.arange(n), np.repeat(np.arange(n), negatives)])
    out = data.take(rows)
    label = np.concatenate([np.ones(n, np.float32), np.zeros(n * negatives, np.float32)])
    meta = {**data.meta, "objective": "next-item", "negatives": negatives,
            "positive_rate": round(float(label.mean()), 4)}
    return replace(out, item=np.concatenate([data.item, neg.reshape(-1)]).astype(np.int64),
                   label=label, hist_ratings=np.zeros_like(out.hist_ratings), meta=meta)
