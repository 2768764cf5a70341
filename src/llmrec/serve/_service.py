"""The request path, free of HTTP: retrieve -> rank -> re-rank -> explain.

:class:`Service` answers with plain dicts (what the HTTP layer returns as JSON) and raises
:class:`RequestError` (naming the offending field) for requests it cannot serve.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any, NamedTuple

import numpy as np

from ._artifacts import Artifacts
from ._channels import CHANNELS, Query, needs_forward, retrieve, search, sequential_scores
from ._rank import blend, mmr, stored_history


class RequestError(Exception):
    """A request the service refuses: ``status`` (4xx), the ``field`` at fault, a message."""

    def __init__(self, status: int, field: str, message: str):
        super().__init__(message)
        self.status, self.field, self.message = status, field, message


class Work(NamedTuple):
    """A model forward a request needs: ``kind`` "sequential" or "rank", its arguments."""

    kind: str
    args: tuple


Plan = Generator[Work, Any, dict[str, Any]]


def run_now(service: Service, plan: Plan) -> dict[str, Any]:
    """Drive a request :meth:`Service.plan`, running each forward it asks for on its own."""
    return run_together(service, [plan])[0]


def run_together(service: Service, plans: Sequence[Plan]) -> list[dict[str, Any]]:
    """Drive several request plans in lockstep, each kind of forward of all of them in one
    :meth:`Service.run_work` call (what :class:`~._batch.MicroBatcher` does for concurrent
    requests, without an event loop)."""
    out: list[dict[str, Any]] = [{} for _ in plans]
    works: dict[int, Work] = {}
    for k, plan in enumerate(plans):
        try:
            works[k] = next(plan)
        except StopIteration as done:
            out[k] = done.value
    while works:
        kinds: dict[str, list[int]] = {}
        for k, work in works.items():
            kinds.setdefault(work.kind, []).append(k)
        following: dict[int, Work] = {}
        for kind, keys in kinds.items():
            for k, result in zip(keys, service.run_work(kind, [works[k].args for k in keys])):
                try:
                    following[k] = plans[k].send(result)
                except StopIteration as done:
                    out[k] = done.value
        works = following
    return out


DETAILS_CACHED = 100_000           # items whose explanation detail a worker keeps

REASONS = {"sequential": "fits your recent history (last: {last})",
           "ann": "similar to {similar}, which you watched",
           "popularity": "popular: {count} users watched it"}


class Service:
    def __init__(self, art: Artifacts):
        self.art = art
        ds = art.dataset
        self.item_ids = ds.items.ids
        inter = ds.interactions
        self._ratings = inter.rating
        self._indptr = inter.indptr
        self._details: dict[int, tuple[str, str]] = {}

    def warm_up(self, users: int = 16, batches: Sequence[int] = (1, 2, 4, 8)) -> None:
        """Answer explicit histories (the stored histories of the first ``users`` users, cut
        to 5, 20 and 50 items) alone and in batches before taking traffic (each worker, at
        start-up): the worker's memory grows to its working size here instead of in the
        first seconds of load (+8% RSS in a first 6 s load test of explicit histories, flat
        after), and no request pays a first call's costs."""
        ds = self.art.dataset
        histories = []
        for k, u in enumerate(range(min(users, ds.n_users))):
            items = stored_history(ds, u)[0][-(5, 20, 50)[k % 3]:]
            histories.append([str(self.item_ids[i]) for i in items])
        for size in batches:
            for lo in range(0, len(histories), size):
                run_together(self, [self.plan(history=h, diversity=0.3)
                                    for h in histories[lo:lo + size]])

    # -- lookups ----------------------------------------------------------------------------
    def item_index(self, item_id: object, field: str = "item_id", status: int = 404) -> int:
        """Dense index of a raw item id; unknown ids are refused naming ``field`` (404 for a
        path, 422 for a body field)."""
        try:
            return self.art.dataset.items.index(item_id)
        except KeyError:
            raise RequestError(status, field, f"unknown item {str(item_id)!r}") from None

    def item(self, item_id: object) -> dict[str, Any]:
        i = self.item_index(item_id)
        text = self.art.knowledge.get(self.item_ids[i])
        return {**self._item_card(i), "popularity": int(self.art.popularity[i]),
                "knowledge": text, "explanation_source": "knowledge" if text else "metadata"}

    def _item_card(self, i: int) -> dict[str, Any]:
        return {"item_id": str(self.item_ids[i]), "title": self.art.titles[i],
                "year": self.art.years[i], "genres": self.art.genres[i]}

    def user(self, user_id: str, limit: int = 50) -> dict[str, Any]:
        ds = self.art.dataset
        if user_id not in ds.users:
            raise RequestError(404, "user_id", f"unknown user {user_id!r}")
        u = ds.users.index(user_id)
        lo, hi = int(self._indptr[u]), int(self._indptr[u + 1])
        items, ratings = ds.interactions.item[lo:hi], self._ratings[lo:hi]
        stamps = ds.interactions.timestamp[lo:hi]
        recent = [{**self._item_card(int(i)),
                   "rating": None if np.isnan(r) else float(r), "timestamp": int(t)}
                  for i, r, t in zip(items[::-1][:limit], ratings[::-1][:limit],
                                     stamps[::-1][:limit])]
        return {"user_id": user_id, "interactions": hi - lo, "history": recent}

    def users(self, limit: int, offset: int) -> dict[str, Any]:
        ds = self.art.dataset
        ids = ds.users.ids[offset:offset + limit].tolist()
        lengths = ds.interactions.lengths()
        return {"total": ds.n_users, "users": [
            {"user_id": u, "interactions": int(lengths[offset + k])} for k, u in enumerate(ids)]}

    def similar(self, item_id: object, n: int) -> dict[str, Any]:
        i = self.item_index(item_id)
        allowed = np.ones(self.art.n_items, dtype=bool)
        allowed[i] = False
        items, scores = search(self.art, self.art.vectors[i:i + 1], n, allowed)
        return {"item": self._item_card(i), "vectors": self.art.vector_source,
                "similar": [{**self._item_card(int(j)), "score": round(float(s), 6)}
                            for j, s in zip(items, scores)]}

    # -- recommendations ---------------------------------------------------------------------
    def _allowed(self, history: np.ndarray, exclude_seen: bool, exclude: Sequence[str],
                 genres: Sequence[str], year_min: int | None, year_max: int | None
                 ) -> np.ndarray:
        art = self.art
        allowed = np.ones(art.n_items, dtype=bool)
        if exclude_seen and len(history):
            allowed[history] = False
        for k, x in enumerate(exclude):
            allowed[self.item_index(x, f"exclude[{k}]", 422)] = False
        if genres:
            masks = []
            for k, g in enumerate(genres):
                m = art.genre_items.get(g.strip().lower())
                if m is None:
                    raise RequestError(422, f"filters.genres[{k}]",
                                       f"unknown genre {g!r}; genres are "
                                       f"{', '.join(sorted({x for gs in art.genres for x in gs}))}")
                masks.append(m)
            allowed &= np.logical_or.reduce(masks)
        if year_min is not None or year_max is not None:
            years = np.array([y if y is not None else -1 for y in art.years])
            ok = years >= 0
            if year_min is not None:
                ok &= years >= year_min
            if year_max is not None:
                ok &= years <= year_max
            allowed &= ok
        return allowed

    def recommend(self, **request: Any) -> dict[str, Any]:
        """One request, computed now (no batching): see :meth:`plan` for the arguments."""
        return run_now(self, self.plan(**request))

    def plan(self, *, user_id: str | None = None, history: Sequence[str] | None = None,
             n: int = 10, exclude_seen: bool = True, exclude: Sequence[str] = (),
             genres: Sequence[str] = (), year_min: int | None = None,
             year_max: int | None = None, diversity: float | None = None,
             weights: dict[str, float] | None = None) -> Plan:
        """The request path as a generator: it yields each model forward it needs as a
        :class:`Work` (the sequential model on an explicit history, the CTR ranker on the
        candidates), receives the result, and returns the response. :func:`run_now` runs the
        forwards one by one; :class:`~._batch.MicroBatcher` batches those of concurrent
        requests."""
        art, ds = self.art, self.art.dataset
        user = ds.users.index(user_id) if user_id is not None and user_id in ds.users else None
        if history is not None:
            idx = [self.item_index(x, f"history[{k}]", 422) for k, x in enumerate(history)]
            hist = np.asarray(idx, dtype=np.int64)
            ratings = np.zeros(len(hist), dtype=np.float32)
            source = "request"
        elif user is not None:
            hist, ratings = stored_history(ds, user)
            source = "stored"
        else:
            hist, ratings, source = np.zeros(0, np.int64), np.zeros(0, np.float32), "none"
        w = dict(art.config.weights)
        if weights:
            w.update(weights)
        if not any(v > 0 for v in w.values()):
            raise RequestError(422, "weights", "at least one channel needs a weight > 0")
        allowed = self._allowed(hist, exclude_seen, exclude, genres, year_min, year_max)
        query = Query(hist, allowed, user, source == "stored")
        seq_scores = None
        if w.get("sequential", 0) > 0 and needs_forward(art, query):
            seq_scores = yield Work("sequential", (hist, user))
        cands = retrieve(art, query, w, max(art.config.candidates, n), seq_scores)
        score, ranker = cands.fused.astype(np.float64), "fused"
        items = cands.items
        weight = art.config.ctr_weight
        if art.ranker is not None and weight > 0 and len(items):
            ctr = art.ranker.stored_scores(user, items) if source == "stored" else None
            if ctr is None:
                ctr = yield Work("rank", (user, hist, ratings, items))
            ctr = blend(cands.fused, ctr, weight)
            order = np.lexsort((np.arange(len(items)), -cands.fused, -ctr))
            items, score = items[order], ctr[order]
            cands_terms, origin = cands.terms[order], cands.origin[order]
            ranker = art.ranker.model.name
        else:
            cands_terms, origin = cands.terms, cands.origin
        div = art.config.diversity if diversity is None else diversity
        pool = min(len(items), max(3 * n, 50)) if div > 0 else min(len(items), n)
        rel = score[:pool].copy()
        if not np.isfinite(rel).all():       # items the CTR model does not know: least relevant
            ok = np.isfinite(rel)
            rel[~ok] = rel[ok].min() - 1.0 if ok.any() else 0.0
        picks = mmr(items[:pool], rel, art.vectors, n, div)
        cold = user is None and not len(hist)
        results = [self._result(int(items[p]), float(score[p]), CHANNELS[origin[p]],
                                cands_terms[p], hist, rank + 1) for rank, p in enumerate(picks)]
        return {"user_id": user_id, "known_user": user is not None,
                "cold_start": "popularity" if cold else ("history" if user is None else None),
                "history_source": source, "history_length": int(len(hist)),
                "ranker": ranker, "diversity": div, "weights": w,
                "explanations": "knowledge" if art.knowledge else "metadata",
                "items": results}

    def run_work(self, kind: str, args: list[tuple]) -> list[Any]:
        """The results of many :class:`Work` items of one kind, in one call: the sequential
        model's scores (n_items,) float32 of each ``(history, user)``, or the CTR ranker's
        click probabilities of each ``(user, history, ratings, candidates)``."""
        if kind == "rank":
            return self.art.ranker.score_many(args)
        return sequential_scores(self.art, args)

    def _result(self, i: int, score: float, origin: str, terms: np.ndarray,
                hist: np.ndarray, rank: int) -> dict[str, Any]:
        channels = {c: round(float(t), 6) for c, t in zip(CHANNELS, terms) if t > 0}
        text, source = self._explain(i, origin, hist)
        return {"rank": rank, **self._item_card(i),
                "score": round(score, 6) if np.isfinite(score) else None,
                "channel": origin, "channels": channels,
                "explanation": text, "explanation_source": source}

    def _detail(self, i: int) -> tuple[str, str]:
        """What an explanation says of item ``i`` itself, and its source (computed once)."""
        found = self._details.get(i)
        if found is None:
            art = self.art
            knowledge = art.knowledge.get(str(self.item_ids[i]))
            if knowledge:
                found = ("; ".join(line.strip() for line in knowledge.splitlines()
                                   if line.strip()), "knowledge")
            else:
                parts = [", ".join(art.genres[i])] if art.genres[i] else []
                if art.years[i]:
                    parts.append(str(art.years[i]))
                found = (" · ".join(parts), "metadata")
            if len(self._details) >= DETAILS_CACHED:      # bounded: start again
                self._details.clear()
            self._details[i] = found
        return found

    def _explain(self, i: int, origin: str, hist: np.ndarray) -> tuple[str, str]:
        art = self.art
        if origin == "ann" and len(hist):
            recent = hist[-art.config.ann_history:]
            j = int(recent[np.argmax(art.vectors[recent] @ art.vectors[i])])
            reason = REASONS["ann"].format(similar=art.titles[j])
        elif origin == "sequential" and len(hist):
            reason = REASONS["sequential"].format(last=art.titles[int(hist[-1])])
        else:
            reason = REASONS["popularity"].format(count=int(art.popularity[i]))
        detail, source = self._detail(i)
        text = reason[0].upper() + reason[1:] + (f". {detail}" if detail else ".")
        limit = art.config.explanation_chars
        return (text if len(text) <= limit else text[:limit - 1].rstrip() + "…"), source
