"""What a user prompt may say about users: their TRAINING history, nothing else.

:class:`TrainHistory` is the only door through which user data reaches a prompt. It is built
from a :class:`~llmrec.data.Split` and keeps the training events only (``split.train``); the
held-out (valid/test) items of each user are kept apart, for one purpose: every renderer
returns the items it named, and :meth:`TrainHistory.check` raises :class:`LeakError` if one of
them is held out for a user the prompt is about. Renderers take a ``TrainHistory``, never an
``Interactions``, so valid/test events cannot be passed in by mistake.

A held-out item is one in the user's valid/test part that is not also in their training part
(with repeat consumption, the earlier training event of the same item is legitimately seen).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..data import TRAIN, Dataset, Split
from ._facts import display_titles


class LeakError(AssertionError):
    """A prompt about a user named an item held out (valid/test) for that user: a bug."""


@dataclass(frozen=True)
class Rendered:
    """Prompt text plus the item indices it names (for the leakage check)."""

    text: str
    items: tuple[int, ...]


class TrainHistory:
    """Each user's training events of a split, in time order, with item display data."""

    def __init__(self, dataset: Dataset, split: Split, scenario: str = "movie") -> None:
        if not isinstance(split, Split):
            raise TypeError(f"TrainHistory needs a Split, not {type(split).__name__}")
        train = split.train
        if len(train) != int(np.count_nonzero(split.part == TRAIN)):
            raise LeakError("split.train holds events outside the training part")
        self.train, self.scenario = train, scenario
        self.n_users = train.n_users
        self.titles = display_titles(dataset)
        feats = dataset.item_features
        self.genres: list[list[str]] = [list(g or []) for g in (
            feats["genres"].to_list() if "genres" in feats.columns else [None] * train.n_items)]
        years = feats["year"].to_list() if "year" in feats.columns else [None] * train.n_items
        self.decades = [f"{int(y) // 10 * 10}s" if y else None for y in years]
        held = split.interactions.select(split.part != TRAIN)
        self._held = [np.setdiff1d(held.sequence(u), train.sequence(u))
                      for u in range(self.n_users)]

    # -- the training events ----------------------------------------------------------------
    def items(self, user: int) -> np.ndarray:
        return self.train.item[self.train.indptr[user]:self.train.indptr[user + 1]]

    def ratings(self, user: int) -> np.ndarray:
        return self.train.rating[self.train.indptr[user]:self.train.indptr[user + 1]]

    def users_with_history(self) -> np.ndarray:
        return np.flatnonzero(self.train.lengths() > 0)

    def held_out(self, user: int) -> np.ndarray:
        """Items held out for ``user`` (checks only; never rendered)."""
        return self._held[user]

    def check(self, users: Iterable[int], rendered: Rendered) -> None:
        """Raise :class:`LeakError` if ``rendered`` names an item held out for ``users``."""
        named = np.asarray(rendered.items, dtype=np.int64)
        for u in users:
            bad = np.intersect1d(named, self._held[u])
            if len(bad):
                raise LeakError(f"prompt for user index {u} names held-out item index "
                                f"{int(bad[0])} ({self.titles[bad[0]]!r})")

    # -- renderers --------------------------------------------------------------------------
    def user_prompt(self, user: int, last: int, top_genres: int, top_eras: int) -> Rendered:
        """The last ``last`` rated items with ratings, then genre/era shares of all of them."""
        items, ratings = self.items(user), self.ratings(user)
        shown = items[-last:]
        lines = [self._header(ratings)] + self._item_lines(shown, ratings[-last:])
        lines += self._shares(items, top_genres, top_eras)
        lines.append(f"{len(items)} {self.scenario}s in total")
        return Rendered("\n".join(lines), tuple(int(i) for i in shown))

    def partition_prompt(self, user: int, start: int, stop: int) -> Rendered:
        """Items ``start:stop`` of the user's training history (one LIBER partition)."""
        items, ratings = self.items(user)[start:stop], self.ratings(user)[start:stop]
        lines = [self._header(ratings)] + self._item_lines(items, ratings)
        lines += self._shares(items, 3, 2)
        return Rendered("\n".join(lines), tuple(int(i) for i in items))

    def cluster_prompt(self, members: Sequence[int], top_titles: int, min_raters: int,
                       top_genres: int, top_eras: int) -> Rendered:
        """A summary of a group's training events; names no item held out for any member."""
        items = np.concatenate([self.items(u) for u in members])
        ratings = np.concatenate([self.ratings(u) for u in members])
        excluded = np.unique(np.concatenate([np.zeros(0, np.int64)]
                                            + [self._held[u] for u in members]))
        lines = [f"A group of {len(members)} users with {len(items)} ratings."]
        lines += self._shares(items, top_genres, top_eras)
        best, worst = _ranked_items(items, ratings, excluded, min_raters, top_titles)
        if best:
            lines.append("Most liked by the group: " + ", ".join(self.titles[i] for i, _ in best))
        if worst:
            lines.append("Least liked by the group: " + ", ".join(self.titles[i] for i, _ in worst))
        named = tuple(int(i) for i, _ in best + worst)
        return Rendered("\n".join(lines), named)

    def _header(self, ratings: np.ndarray) -> str:
        what = "watched" if np.isnan(ratings).all() else "rated"
        return f"{self.scenario.capitalize()}s {what}, oldest first:"

    def _item_lines(self, items: np.ndarray, ratings: np.ndarray) -> list[str]:
        return [self.titles[i] + ("" if np.isnan(r) else f": {rating_word(r)}")
                for i, r in zip(items.tolist(), ratings.tolist())]

    def _shares(self, items: np.ndarray, top_genres: int, top_eras: int) -> list[str]:
        out = []
        genres = Counter(g for i in items.tolist() for g in self.genres[i])
        if genres and top_genres:
            out.append("Favourite genres: " + ", ".join(k for k, _ in
                                                       genres.most_common(top_genres)))
        eras = Counter(d for i in items.tolist() if (d := self.decades[i]))
        if eras and top_eras:
            out.append("Mostly from the " + " and ".join(k for k, _ in eras.most_common(top_eras)))
        return out


RATING_WORDS = {1: "hated", 2: "disliked", 3: "okay", 4: "liked", 5: "loved"}


def rating_word(rating: float) -> str:
    """A 1-5 star rating as a word (small models read words better than digits)."""
    return RATING_WORDS.get(int(rating), f"{rating:g}") if float(rating).is_integer() \
        else f"{rating:g}"


def _ranked_items(items: np.ndarray, ratings: np.ndarray, excluded: np.ndarray,
                  min_raters: int, top: int) -> tuple[list[tuple[int, float]],
                                                      list[tuple[int, float]]]:
    """(most liked, least liked) items of a group: mean rating among >= min_raters raters."""
    keep = ~np.isin(items, excluded) & ~np.isnan(ratings)
    items, ratings = items[keep], ratings[keep]
    if len(items) == 0:
        return [], []
    uniq, inv, counts = np.unique(items, return_inverse=True, return_counts=True)
    means = np.bincount(inv, weights=ratings) / counts
    ok = np.flatnonzero(counts >= min_raters)
    if len(ok) == 0:
        return [], []
    best_first = ok[np.lexsort((uniq[ok], -counts[ok], -means[ok]))]   # high mean, many raters
    worst_first = ok[np.lexsort((uniq[ok], -counts[ok], means[ok]))]   # low mean, many raters
    best = [(int(uniq[j]), float(means[j])) for j in best_first[:top]]
    taken = {i for i, _ in best}
    worst = [(int(uniq[j]), float(means[j])) for j in worst_first[:max(1, top // 3)]
             if means[j] < 3.0 and int(uniq[j]) not in taken]
    return best, worst
