"""The item attributes a conversation talks about: genre, decade, director, actor, title words.

A :class:`Catalog` is built from a :class:`~llmrec.data.Dataset` (the run's own data set, so
item indices are the model's)::

    item index   id     title        year  genre                    decade  director   actor
    0            "1"    "Toy Story"  1995  (Animation, Children's,  1990s   (m.0xxx,)  (m.0a, m.0b, ...)
                                            Comedy)

Director and actor come from RecBole-style ``.kg`` + ``.link`` files (Freebase triples
``film.film.directed_by`` / ``film.film.actor``), only with ``kg=True``. Their values are opaque
Freebase ids (``m.06pj8``): the files carry no names. Beware: the ``ml-100k.link`` shipped in
``recbole==1.2.1`` numbers items with MovieLens-1M ids (see ``llmrec.knowledge`` item facts),
so on ML-100K these attributes are internally consistent (the simulated user and the agent read
the same table) but not the films' real directors and casts. That is why ``kg`` is off by
default.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from ..data import Dataset, read_tsv
from ..errors import DataError

ATTRIBUTES = ("genre", "decade", "director", "actor")
KG_RELATIONS = {"director": "film.film.directed_by", "actor": "film.film.actor"}


def normalize(text: str) -> str:
    """Case-folded, accents removed, every run of non-alphanumerics one space."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text).split())


def words(text: str) -> list[str]:
    return normalize(text).split()


def title_core(title: str) -> str:
    """A title without a trailing ``(year)``, normalised (``"Godfather, The (1972)"`` ->
    ``"godfather the"``)."""
    return normalize(re.sub(r"\(\s*\d{4}\s*\)\s*$", "", title))


@dataclass
class Catalog:
    """Attributes per item index (see the module docstring). ``values(attr, i)`` is a tuple."""

    item_ids: list[str]
    titles: list[str]
    years: np.ndarray                                   # (n_items,) int, 0 = unknown
    attrs: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._index = {raw: i for i, raw in enumerate(self.item_ids)}
        self._title_words = [frozenset(words(t)) for t in self.titles]
        self._masks: dict[tuple[str, str], np.ndarray] = {}
        self._codes: dict[str, np.ndarray] = {}
        self._lookup: dict[str, dict[str, str]] = {}
        self._df: Counter[str] | None = None

    def title_df(self) -> Counter[str]:
        """In how many titles each normalised title word appears (cached)."""
        if self._df is None:
            self._df = Counter(w for t in self.titles for w in set(words(title_core(t))))
        return self._df

    def mask(self, attribute: str, value: str) -> np.ndarray:
        """(n_items,) bool: the item has ``value`` (cached)."""
        key = (attribute, value)
        if key not in self._masks:
            self._masks[key] = np.array([value in vs for vs in self.attrs[attribute]],
                                        dtype=bool)
        return self._masks[key]

    def spread(self, attribute: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flattened (item, value code, 1/len) per value of each item, an item without values
        counting as one value of its own (code 0) (cached)."""
        key = f"spread:{attribute}"
        if key not in self._codes:
            codes: dict[str, int] = {}
            rows = [(i, codes.setdefault(v, len(codes) + 1), 1.0 / len(vs))
                    for i, vs in enumerate(self.attrs[attribute]) for v in vs]
            rows += [(i, 0, 1.0) for i, vs in enumerate(self.attrs[attribute]) if not vs]
            arr = np.array(rows, dtype=np.float64).reshape(-1, 3)
            self._codes[key] = arr
        arr = self._codes[key]
        return arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2]

    def codes(self, attribute: str) -> np.ndarray:
        """(n_items,) int: one code per distinct value tuple of ``attribute`` (cached)."""
        if attribute not in self._codes:
            seen: dict[tuple[str, ...], int] = {}
            self._codes[attribute] = np.array(
                [seen.setdefault(vs, len(seen)) for vs in self.attrs[attribute]], dtype=np.int64)
        return self._codes[attribute]

    @classmethod
    def from_dataset(cls, dataset: Dataset, *, kg: bool = False) -> Catalog:
        feats = dataset.item_features
        n = dataset.n_items
        titles = [t or "" for t in (feats["title"].to_list() if "title" in feats.columns
                                    else dataset.items.ids.tolist())]
        years = np.array([y or 0 for y in (feats["year"].to_list() if "year" in feats.columns
                                           else [0] * n)], dtype=np.int64)
        genres = (feats["genres"].to_list() if "genres" in feats.columns else [None] * n)
        attrs: dict[str, list[tuple[str, ...]]] = {
            "genre": [tuple(g for g in (gs or []) if g) for gs in genres],
            "decade": [(f"{y // 10 * 10}s",) if y else () for y in years.tolist()],
        }
        if kg:
            attrs.update(_kg_people(dataset))
        return cls(dataset.items.ids.tolist(), titles, years, attrs)

    # -- lookups --------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def attributes(self) -> tuple[str, ...]:
        """The attributes this catalogue knows, in :data:`ATTRIBUTES` order."""
        return tuple(a for a in ATTRIBUTES if a in self.attrs)

    def index(self, item_id: str) -> int:
        """Item index of a raw id; KeyError with a readable message if unknown."""
        try:
            return self._index[str(item_id)]
        except KeyError:
            raise KeyError(f"unknown item id {item_id!r} ({self.n_items} items, e.g. "
                           f"{', '.join(self.item_ids[:3])})") from None

    def values(self, attribute: str, item: int) -> tuple[str, ...]:
        return self.attrs[attribute][item]

    def display(self, item: int) -> str:
        """``Title (year)``."""
        t, y = self.titles[item], int(self.years[item])
        return f"{t} ({y})" if y and f"({y})" not in t else t

    def vocabulary(self, attribute: str) -> list[str]:
        """Every value of ``attribute``, sorted."""
        key = f"vocabulary:{attribute}"
        if key not in self._lookup:
            self._lookup[key] = {v: v for v in sorted({v for vs in self.attrs[attribute]
                                                        for v in vs})}
        return list(self._lookup[key])

    def canonical(self, attribute: str, value: str) -> str | None:
        """The catalogue's spelling of ``value`` (case and punctuation ignored), or None."""
        key = f"canonical:{attribute}"
        if key not in self._lookup:
            self._lookup[key] = {normalize(v): v for v in self.vocabulary(attribute)}
        return self._lookup[key].get(normalize(value))

    # -- filters (vectorised over a set of item indices) ----------------------------------
    def has_all(self, items: np.ndarray, attribute: str, values: Iterable[str]) -> np.ndarray:
        """Mask over ``items``: the item has every one of ``values``."""
        out = np.ones(len(items), dtype=bool)
        for v in set(values):
            out &= self.mask(attribute, v)[items]
        return out

    def year_between(self, items: np.ndarray, low: int | None, high: int | None) -> np.ndarray:
        y = self.years[items]
        ok = y > 0
        if low is not None:
            ok &= y >= low
        if high is not None:
            ok &= y <= high
        return ok

    def title_has(self, items: np.ndarray, text: str) -> np.ndarray:
        """Mask: the item's title contains every word of ``text`` (normalised)."""
        want = set(words(text))
        return np.array([want <= self._title_words[i] for i in items.tolist()], dtype=bool)

    def ids(self, items: Sequence[int]) -> list[str]:
        return [self.item_ids[int(i)] for i in items]



def _kg_people(dataset: Dataset) -> dict[str, list[tuple[str, ...]]]:
    """``director`` and ``actor`` per item index from the data set's .kg and .link files."""
    extra = dataset.meta.get("extra_files", {})
    if "kg" not in extra or "link" not in extra:
        raise DataError(f"{dataset.name} has no knowledge graph (.kg and .link files); "
                        "use kg=False (--no-kg)")
    kg = read_tsv(extra["kg"], ["head", "relation", "tail"])
    link = read_tsv(extra["link"], ["item_id", "entity"])
    index = pl.DataFrame({"item_id": dataset.items.ids.tolist(),
                          "item": np.arange(dataset.n_items, dtype=np.int64)})
    linked = link.join(index, on="item_id")
    out = {}
    for attr, rel in KG_RELATIONS.items():
        rows = (kg.filter(pl.col("relation") == rel)
                  .join(linked, left_on="head", right_on="entity")
                  .select("item", "tail").unique().sort("item", "tail"))
        col: list[list[str]] = [[] for _ in range(dataset.n_items)]
        for item, tail in rows.iter_rows():
            col[item].append(tail)
        out[attr] = [tuple(c) for c in col]
    return out
