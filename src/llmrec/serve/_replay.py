"""Replay a run's validation or test split through the service: what users are really served.

``llmrec evaluate RUN_DIR --served`` sends every evaluated user of the split to the in-process
:class:`~llmrec.serve.Service` (retrieve -> rank -> re-rank) as a request carrying the user id
*and an explicit history cut at the split*: for test, the user's train + valid events; for
validation, the train events. Nothing of the target part reaches any stage:

- the sequential channel runs the model on the cut history (the scores prestored at load are
  computed from the *full* stored history, so replay loads without them, and never reads
  them: an explicit history is never served from prestored scores);
- the ANN query is built from the cut history; popularity is the model's training counts;
- the CTR ranker sees the cut history (without ratings: a request carries none) and was
  trained on the run's training split only (``llmrec ranker``), so neither the validation
  nor the test target was ever a training sample.

Seen items are excluded (the service's ``exclude_seen``, i.e. ``llmrec evaluate``'s
``mask = "history"``); the served list has ``n`` items and the metrics (NDCG, Recall, MRR at
every ``k <= n``) are computed from the target's position in it, which for ``k <= n`` is the
same number a full ranking gives: replaying the sequential channel alone reproduces
``llmrec evaluate``'s metrics of the run (a test checks they are equal).

A paired test over users (Wilcoxon signed-rank and paired t-test on per-user NDCG@10,
``scipy.stats``) compares two served variants, e.g. the served default against the retrieval
model alone.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import EvalCases
from ..errors import ConfigError
from ..eval import metrics_from_ranks
from ._artifacts import Artifacts, load_artifacts
from ._config import CHANNELS, ServeConfig
from ._rank import CTR_FOLDER
from ._service import Service

SERVE_FILE = "serve.toml"        # tuned serving config inside a run folder (llmrec tune-serving)
SPLITS = ("test", "valid")


@dataclass(frozen=True)
class Variant:
    """One way of serving: channel weights and the CTR blend weight (0 = no ranker)."""

    name: str
    weights: dict[str, float]
    ranker_weight: float = 0.0

    def key(self) -> tuple:
        return (tuple(round(self.weights.get(c, 0.0), 9) for c in CHANNELS),
                round(self.ranker_weight, 9))


def run_serve_config(run_dir: str | Path, path: str | Path | None = None) -> ServeConfig:
    """The config ``llmrec serve RUN_DIR`` uses: ``path``, else ``RUN_DIR/serve.toml`` (written
    by ``llmrec tune-serving``) when it exists, else the built-in defaults."""
    if path is None and (Path(run_dir).expanduser() / SERVE_FILE).exists():
        path = Path(run_dir).expanduser() / SERVE_FILE
    return ServeConfig.load(path)


def replay_artifacts(run_dir: str | Path, cfg: ServeConfig | None = None) -> Artifacts:
    """Artifacts for replay: no prestored user scores (they saw the full history) and the
    run's CTR model loaded whenever it has one (variants choose whether to use it)."""
    cfg = cfg or run_serve_config(run_dir)
    has_ctr = (Path(run_dir).expanduser() / CTR_FOLDER / "model.json").exists()
    return load_artifacts(run_dir, dataclasses.replace(
        cfg, prestore_users=False, ranker="ctr" if has_ctr else "fused",
        ranker_weight=cfg.ranker_weight))


def with_variant(art: Artifacts, v: Variant) -> Artifacts:
    """The same loaded artifacts serving with ``v``'s weights (shares every array)."""
    if v.ranker_weight > 0 and art.ranker is None:
        raise ConfigError(f"{v.name}: ranker weight {v.ranker_weight} but the run has no CTR "
                          "ranker (train one: llmrec ranker RUN_DIR)")
    cfg = dataclasses.replace(art.config, weights=dict(v.weights),
                              ranker="ctr" if v.ranker_weight > 0 else "fused",
                              ranker_weight=v.ranker_weight if v.ranker_weight > 0 else None)
    return dataclasses.replace(art, config=cfg)


def split_cases(art: Artifacts, split: str) -> EvalCases:
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, not {split!r}")
    s = art.run.split
    return s.test_cases() if split == "test" else s.valid_cases()


def served_ranks(service: Service, cases: EvalCases, n: int) -> np.ndarray:
    """(B, T) 1-based positions of each case's targets in its served list of ``n`` items;
    ``n + 1`` for a target not served, 0 = padding (more targets in other rows)."""
    ids = service.item_ids
    users = service.art.dataset.users.ids
    width = max(1, int(np.diff(cases.target_indptr).max(initial=1)))
    out = np.zeros((len(cases), width), dtype=np.int64)
    for k in range(len(cases)):
        hist = cases.history(k)
        served = service.recommend(user_id=str(users[cases.users[k]]),
                                   history=ids[hist].tolist(), n=n, exclude_seen=True,
                                   diversity=0.0)
        pos = {r["item_id"]: r["rank"] for r in served["items"]}
        for j, t in enumerate(cases.targets(k)):
            out[k, j] = pos.get(str(ids[t]), n + 1)
    return out


def list_metrics(ranks: np.ndarray, ks: tuple[int, ...]) -> dict[str, Any]:
    """Means (and ``per_case`` arrays) of the metrics of ``llmrec.eval`` from (B, T) ranks."""
    per = {k: v.numpy() for k, v in metrics_from_ranks(torch.from_numpy(ranks), ks).items()}
    out: dict[str, Any] = {k: float(v.mean()) if len(v) else 0.0 for k, v in per.items()}
    out["cases"] = len(ranks)
    out["per_case"] = per
    return out


def replay(art: Artifacts, split: str, variants: list[Variant], n: int = 20,
           ks: tuple[int, ...] = (5, 10, 20), progress=None) -> dict[str, dict[str, Any]]:
    """Metrics of each variant served on ``split`` (module docstring); identical variants
    are served once."""
    if any(k > n for k in ks):
        raise ConfigError(f"cut-offs {ks} need a served list of at least {max(ks)} items "
                          f"(n = {n})")
    cases = split_cases(art, split)
    done: dict[tuple, dict[str, Any]] = {}
    out: dict[str, dict[str, Any]] = {}
    for v in variants:
        if v.key() not in done:
            t0 = time.perf_counter()
            m = list_metrics(served_ranks(Service(with_variant(art, v)), cases, n), ks)
            m["seconds"] = round(time.perf_counter() - t0, 2)
            done[v.key()] = m
            if progress:
                progress(v, m)
        out[v.name] = done[v.key()]
    return out


def paired_test(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Paired comparison of per-user scores ``a`` vs ``b``: mean difference, Wilcoxon
    signed-rank and paired t-test p-values (two-sided; 1.0 where every pair is equal)."""
    from scipy import stats

    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    out = {"users": int(len(d)), "mean_a": float(np.mean(a)), "mean_b": float(np.mean(b)),
           "mean_diff": float(d.mean()), "better": int((d > 0).sum()),
           "worse": int((d < 0).sum())}
    if not np.any(d != 0):
        return {**out, "wilcoxon_p": 1.0, "ttest_p": 1.0}
    out["wilcoxon_p"] = float(stats.wilcoxon(a, b).pvalue)
    out["ttest_p"] = float(stats.ttest_rel(a, b).pvalue)
    return out


def standard_variants(art: Artifacts, served: ServeConfig) -> list[Variant]:
    """The rows of ``llmrec evaluate --served``: each channel alone (the sequential one is
    the retrieval model), the built-in fused weights, the old CTR-ordered cascade when the
    run has a ranker, and what ``llmrec serve RUN_DIR`` serves now."""
    base = ServeConfig()
    rows = [Variant(f"{c} alone" + (" (the retrieval model)" if c == "sequential" else ""),
                    {x: float(x == c) for x in CHANNELS}) for c in CHANNELS]
    rows.append(Variant("fused, built-in weights", dict(base.weights)))
    if art.ranker is not None:
        rows.append(Variant(f"fused + {art.ranker.model.name} ranker, CTR order (weight 1)",
                            dict(base.weights), 1.0))
    rw = served.ctr_weight if art.ranker is not None else 0.0
    rows.append(Variant("served default", dict(served.weights), rw))
    return rows


def served_evaluation(run_dir: str | Path, split: str = "test", n: int = 20,
                      ks: tuple[int, ...] = (5, 10, 20), config: str | Path | None = None,
                      extra: list[Variant] = (), progress=None,
                      art: Artifacts | None = None) -> dict[str, Any]:
    """``llmrec evaluate RUN_DIR --served``: :func:`standard_variants` (+ ``extra``) served on
    ``split``, and the paired test of the served default against the retrieval model alone."""
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, not {split!r}")
    if n < 1:
        raise ConfigError(f"--n must be >= 1, not {n}")
    served = run_serve_config(run_dir, config)
    art = art or replay_artifacts(run_dir, served)
    variants = standard_variants(art, served) + list(extra)
    rows = replay(art, split, variants, n, ks, progress)
    seq, default = variants[0].name, "served default"
    paired = paired_test(rows[default]["per_case"]["ndcg@10"], rows[seq]["per_case"]["ndcg@10"]
                         ) if 10 in ks else None
    source = (str(config) if config else
              str(Path(run_dir).expanduser() / SERVE_FILE)
              if (Path(run_dir).expanduser() / SERVE_FILE).exists() else "built-in defaults")
    return {"run_dir": str(Path(run_dir).expanduser()), "split": split, "n": n, "ks": list(ks),
            "users": rows[seq]["cases"], "served_config": source,
            "served_weights": served.weights,
            "served_ranker_weight": served.ctr_weight if art.ranker is not None else 0.0,
            "ranker": art.ranker.describe() if art.ranker is not None else None,
            "variants": {v.name: {"weights": v.weights, "ranker_weight": v.ranker_weight}
                         for v in variants},
            "rows": rows, "paired_default_vs_sequential": paired}


def served_table(result: dict[str, Any], markdown: bool = False) -> str:
    """The rows of :func:`served_evaluation` as a table a person reads."""
    from .._table import format_table

    ks = result["ks"]
    names = [f"{m}@{k}" for k in ks for m in ("ndcg", "recall", "mrr")]
    rows = []
    for name, m in result["rows"].items():
        v = result["variants"][name]
        w = "/".join(f"{v['weights'].get(c, 0.0):g}" for c in CHANNELS)
        rows.append([name, w, f"{v['ranker_weight']:g}" if v["ranker_weight"] else "-",
                     *[m[x] for x in names]])
    return format_table(["served", "weights seq/ann/pop", "ranker w", *names], rows,
                        markdown=markdown)


def paired_line(p: dict[str, float] | None, what: str = "served default") -> str:
    if not p:
        return "paired test: needs ndcg@10 (add 10 to --ks)"
    return (f"{what} vs the retrieval model alone, per-user NDCG@10 over {p['users']} "
            f"users: {p['mean_a']:.4f} vs {p['mean_b']:.4f} (diff {p['mean_diff']:+.4f}; "
            f"better for {p['better']}, worse for {p['worse']}); Wilcoxon p = "
            f"{p['wilcoxon_p']:.3g}, paired t-test p = {p['ttest_p']:.3g}")
