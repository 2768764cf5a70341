"""Tune what is served on validation: channel weights and the CTR blend weight.

Multi-channel retrieval fuses channels with weights (:mod:`._channels`); the seed paper on
multi-channel fusion for recommendation tunes such weights on validation with the
cross-entropy method and with Bayesian optimisation. Both are here, over the same objective:
validation NDCG@10 of the served list (replayed as in :mod:`._replay`).

Fast and exact: every channel's top-``candidates`` items and raw scores, and the CTR model's
score of each candidate, are computed once per validation user through the service's own
channel functions (:class:`ReplayCache`). A weight vector is then scored without running any
model: :meth:`ReplayCache.ranks` repeats the service's fusion (min-max per channel, weighted
sum in float32, ties by item index) and blend (:func:`~llmrec.serve._rank.blend`) on padded
arrays, and its lists equal the service's (a test checks this against ``Service.recommend``).

- Cross-entropy method (Rubinstein 1999; de Boer et al. 2005): a Gaussian over the weights in
  [0, 1]^d; each round samples ``population`` vectors, keeps the best ``elite`` fraction and
  refits mean and standard deviation to them (smoothed), keeping the best vector seen.
- Bayesian optimisation with optuna's Tree-structured Parzen Estimator (Bergstra et al. 2011),
  started from the built-in weights and each channel alone.

The chosen weights are the best vector on validation among both searches, the built-in
weights and every single channel: never worse on validation than the best single channel.
The CTR ranker costs a model forward per request, so it must earn its place: the best vector
that uses it is kept only if it beats the best vector without it on validation by a paired
Wilcoxon signed-rank test over users (p < ``alpha``, 0.05); otherwise the ranker weight is 0.
Tuning assumes ``diversity = 0`` (MMR re-ranking is not modelled).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data import EvalCases
from ..eval import metrics_from_ranks
from ._artifacts import Artifacts
from ._channels import CHANNEL_FUNCS, Query
from ._config import CHANNELS

C = len(CHANNELS)


@dataclass(eq=False)
class ReplayCache:
    """Per case: the union ``items`` (B, M) of every channel's candidates (pad -1), each
    channel's raw score ``raw`` (B, M, C) (NaN where it did not retrieve the item), the CTR
    score ``ctr`` (B, M) (NaN without a ranker) and ``target`` (B, M) bool."""

    items: np.ndarray
    raw: np.ndarray
    ctr: np.ndarray | None
    target: np.ndarray
    n_targets: np.ndarray

    @classmethod
    def build(cls, art: Artifacts, cases: EvalCases, k: int | None = None) -> ReplayCache:
        """Run every channel (and the ranker) once per case on the cut history."""
        k = k or art.config.candidates
        rows: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
        for j in range(len(cases)):
            hist = cases.history(j).astype(np.int64)
            user = int(cases.users[j])
            allowed = np.ones(art.n_items, dtype=bool)
            allowed[hist] = False
            q = Query(hist, allowed, user, False)
            parts = [CHANNEL_FUNCS[name](art, q, k) for name in CHANNELS]
            items = np.unique(np.concatenate([p[0] for p in parts]))
            raw = np.full((len(items), C), np.nan, np.float32)
            for c, (its, scores) in enumerate(parts):
                raw[np.searchsorted(items, its), c] = scores
            rows.append((items, raw, None))
        if art.ranker is not None:       # the service's own vectorised ranker path, in chunks
            asks = [(int(cases.users[j]), cases.history(j).astype(np.int64),
                     np.zeros(len(cases.history(j))), rows[j][0])
                    for j in range(len(rows)) if len(rows[j][0])]
            where = [j for j in range(len(rows)) if len(rows[j][0])]
            for lo in range(0, len(asks), 64):
                for j, s in zip(where[lo:lo + 64], art.ranker.score_many(asks[lo:lo + 64])):
                    rows[j] = (rows[j][0], rows[j][1], s)
        width = max(1, max(len(r[0]) for r in rows))
        B = len(rows)
        items = np.full((B, width), -1, np.int64)
        raw = np.full((B, width, C), np.nan, np.float32)
        ctr = np.full((B, width), np.nan, np.float64) if art.ranker is not None else None
        for j, (its, r, s) in enumerate(rows):
            items[j, :len(its)], raw[j, :len(its)] = its, r
            if ctr is not None and s is not None:
                ctr[j, :len(its)] = s
        target = np.zeros((B, width), bool)
        n_targets = np.diff(cases.target_indptr)
        for j in range(B):
            target[j] = np.isin(items[j], cases.targets(j)) & (items[j] >= 0)
        return cls(items, raw, ctr, target, n_targets)

    def order(self, weights: dict[str, float], ranker_weight: float = 0.0
              ) -> tuple[np.ndarray, np.ndarray]:
        """(B, M) candidate positions, served order first, with padding and items of no
        active channel last; and (B, M) bool: is a candidate (the service's fusion and blend,
        vectorised)."""
        w = np.array([weights.get(c, 0.0) for c in CHANNELS], np.float32)
        active = w > 0
        present = ~np.isnan(self.raw)                                         # (B, M, C)
        cand = (present & active).any(-1)                                     # (B, M)
        lo = np.where(present, self.raw, np.inf).min(1, keepdims=True)        # (B, 1, C)
        hi = np.where(present, self.raw, -np.inf).max(1, keepdims=True)
        span = hi - lo                                                        # float32
        with np.errstate(invalid="ignore", divide="ignore"):
            norm = np.where(span > 0, (self.raw - lo) / np.where(span > 0, span, 1),
                            np.float32(1.0))
        terms = np.where(present & active, w * norm, np.float32(0.0)).astype(np.float32)
        fused = terms[..., 0]
        for c in range(1, C):
            fused = fused + terms[..., c]                                     # float32, in order
        item_key = np.where(cand, self.items, np.iinfo(np.int64).max)
        fused_key = np.where(cand, -fused.astype(np.float64), np.inf)
        if ranker_weight > 0 and self.ctr is not None:
            final = self._blend(fused, cand, ranker_weight)
            return np.lexsort((item_key, fused_key, np.where(cand, -final, np.inf)),
                              axis=-1), cand
        return np.lexsort((item_key, fused_key), axis=-1), cand

    def _blend(self, fused: np.ndarray, cand: np.ndarray, weight: float) -> np.ndarray:
        ctr = np.where(cand, self.ctr, np.nan)
        scored = ~np.isnan(ctr).all(1, keepdims=True)     # rows the ranker applies to
        if weight >= 1.0:
            return np.where(scored, ctr, 0.0)
        finite = np.where(np.isfinite(ctr), ctr, np.nan)    # unknown items: lowest finite
        low = np.nanmin(np.where(scored, finite, 0.0), 1, keepdims=True)
        ctr = np.where(np.isnan(ctr) | np.isfinite(ctr), ctr, low)

        def norm(x: np.ndarray) -> np.ndarray:
            lo = np.nanmin(np.where(cand, x, np.nan), 1, keepdims=True)
            hi = np.nanmax(np.where(cand, x, np.nan), 1, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(hi > lo, (x - lo) / np.where(hi > lo, hi - lo, 1), 1.0)

        final = (1.0 - weight) * norm(fused.astype(np.float64)) + weight * norm(ctr)
        return np.where(scored, final, 0.0)

    def ranks(self, weights: dict[str, float], ranker_weight: float = 0.0,
              n: int = 20) -> np.ndarray:
        """(B, T) 1-based positions of the targets in the served lists of ``n`` items
        (``n + 1``: not served; 0: padding), as :func:`~llmrec.serve._replay.served_ranks`."""
        order, cand = self.order(weights, ranker_weight)
        B, M = order.shape
        pos = np.empty_like(order)
        np.put_along_axis(pos, order, np.arange(M)[None, :].repeat(B, 0), axis=-1)
        width = max(1, int(self.n_targets.max(initial=1)))
        out = np.zeros((B, width), np.int64)
        for j in range(B):
            found = np.sort(pos[j][self.target[j] & cand[j]] + 1)
            found = np.where(found <= n, found, n + 1)
            out[j, :self.n_targets[j]] = n + 1
            out[j, :len(found)] = found
        return out

    def per_user(self, weights: dict[str, float], ranker_weight: float = 0.0, k: int = 10,
                 n: int = 20) -> np.ndarray:
        """(B,) NDCG@``k`` of each case's served list."""
        import torch

        r = torch.from_numpy(self.ranks(weights, ranker_weight, n))
        return metrics_from_ranks(r, (k,))[f"ndcg@{k}"].numpy()

    def ndcg(self, weights: dict[str, float], ranker_weight: float = 0.0, k: int = 10,
             n: int = 20) -> float:
        return float(self.per_user(weights, ranker_weight, k, n).mean())


@dataclass
class Trial:
    weights: dict[str, float]
    ranker_weight: float
    score: float
    source: str


@dataclass
class TuneResult:
    best: Trial
    trials: list[Trial] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def best_of(self, source: str) -> Trial | None:
        own = [t for t in self.trials if t.source == source]
        return max(own, key=lambda t: t.score) if own else None


def _decode(x: np.ndarray, with_ranker: bool) -> tuple[dict[str, float], float]:
    w = np.clip(x[:C], 0.0, 1.0)
    top = w.max()
    w = w / top if top > 0 else w                    # scale-free: the largest weight is 1
    rw = float(np.clip(x[C], 0.0, 1.0)) if with_ranker else 0.0
    return {c: round(float(v), 4) for c, v in zip(CHANNELS, w)}, round(rw, 4)


def tune(cache: ReplayCache, *, trials: int = 120, seed: int = 0, k: int = 10, n: int = 20,
         methods: tuple[str, ...] = ("cem", "tpe"), start: dict[str, float] | None = None,
         start_ranker_weight: float = 0.0, alpha: float = 0.05) -> TuneResult:
    """Search channel weights (and the CTR blend weight when the cache has CTR scores) for
    validation NDCG@``k`` with each of ``methods`` (``trials`` evaluations each)."""
    with_ranker = cache.ctr is not None
    seen: dict[tuple, float] = {}
    log: list[Trial] = []

    def score(weights: dict[str, float], rw: float, source: str) -> float:
        if not any(v > 0 for v in weights.values()):
            return -1.0
        key = (tuple(weights[c] for c in CHANNELS), rw)
        if key not in seen:
            seen[key] = cache.ndcg(weights, rw, k, n)
        log.append(Trial(dict(weights), rw, seen[key], source))
        return seen[key]

    t0 = time.perf_counter()
    base = {"sequential": 1.0, "ann": 0.5, "popularity": 0.1}
    score(dict(start or base), start_ranker_weight if with_ranker else 0.0, "start")
    score(base, 0.0, "built-in")
    for c in CHANNELS:
        score({x: float(x == c) for x in CHANNELS}, 0.0, f"{c} alone")
    x0 = np.array([*(start or base).values(), start_ranker_weight if with_ranker else 0.0])
    # with a ranker, each method searches twice: channels only, then channels + blend weight,
    # so that the ranker is compared with the best weights found without it
    for ranked in ((False, True) if with_ranker else (False,)):
        d, tag = C + int(ranked), " + ranker" if ranked else ""
        if "cem" in methods:
            _cem(lambda x: score(*_decode(x, ranked), "cem" + tag), x0[:d], trials, seed)
        if "tpe" in methods:
            _tpe(lambda x: score(*_decode(x, ranked), "tpe" + tag), x0[:d], d, trials, seed,
                 ranked)
    best = max(log, key=lambda t: (t.score, -len(t.source)))
    info: dict[str, Any] = {"objective": f"ndcg@{k}", "with_ranker": with_ranker}
    if best.ranker_weight > 0:
        plain = max((t for t in log if t.ranker_weight == 0),
                    key=lambda t: (t.score, -len(t.source)))
        from ._replay import paired_test

        test = paired_test(cache.per_user(best.weights, best.ranker_weight, k, n),
                           cache.per_user(plain.weights, 0.0, k, n))
        info["ranker_test"] = {"with": dataclasses.asdict(best),
                               "without": dataclasses.asdict(plain), **test, "alpha": alpha}
        if not (test["mean_diff"] > 0 and test["wilcoxon_p"] < alpha):
            best = plain                            # the ranker did not earn its place
    info["ranker_used"] = best.ranker_weight > 0
    info.update(seconds=round(time.perf_counter() - t0, 1), evaluations=len(seen))
    return TuneResult(best, log, info)


def _cem(f, x0: np.ndarray, budget: int, seed: int, population: int = 20,
         elite: float = 0.25, smoothing: float = 0.7) -> None:
    """Cross-entropy method over [0, 1]^d (module docstring)."""
    rng = np.random.default_rng(seed)
    mean, std = np.clip(x0, 0, 1).astype(np.float64), np.full(len(x0), 0.35)
    n_elite = max(2, int(round(population * elite)))
    for _ in range(max(1, budget // population)):
        xs = np.clip(mean + std * rng.standard_normal((population, len(x0))), 0, 1)
        scores = np.array([f(x) for x in xs])
        top = xs[np.argsort(-scores)[:n_elite]]
        mean = smoothing * top.mean(0) + (1 - smoothing) * mean
        std = smoothing * top.std(0) + (1 - smoothing) * std + 1e-3


def _tpe(f, x0: np.ndarray, d: int, budget: int, seed: int, with_ranker: bool) -> None:
    """Bayesian optimisation with optuna's TPE sampler, seeded with the start vector and
    each channel alone."""
    try:
        import optuna
    except ImportError:
        from ..errors import LlmrecError
        raise LlmrecError("tuning with TPE needs optuna: pip install 'llmrec[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = [f"w_{c}" for c in CHANNELS] + (["ranker_weight"] if with_ranker else [])
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial(dict(zip(names, np.clip(x0[:d], 0, 1).tolist())))
    for c in range(C):
        study.enqueue_trial({nm: float(j == c) for j, nm in enumerate(names)})
    study.optimize(lambda t: f(np.array([t.suggest_float(nm, 0.0, 1.0) for nm in names])),
                   n_trials=budget)
