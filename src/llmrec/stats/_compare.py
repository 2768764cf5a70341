"""Tables of paired comparisons against a baseline, with Holm correction over the table.

:func:`significance_rows` tests every (compared model, metric) pair with :func:`paired_test` and
corrects the Wilcoxon p-values of the whole table with Holm's step-down procedure (the family is
every comparison in the table). :func:`compare_runs` reads the per-user metrics of run folders
(``llmrec compare``); the bench report writers call :func:`significance_rows` directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._table import format_table
from ..errors import LlmrecError
from ._correct import holm
from ._paired import paired_test

DEFAULT_METRICS = ("ndcg@10", "recall@10")


def significance_rows(pairs: Sequence[tuple[str, str, Any, Any]], *, n_boot: int = 10_000,
                      seed: int = 0, confidence: float = 0.95) -> list[dict[str, Any]]:
    """``pairs``: (compared label, metric, baseline values, compared values), aligned per user.

    One row per pair: n, means, mean difference, bootstrap interval, Wilcoxon and t-test p,
    ``p_holm`` (Holm over the Wilcoxon p-values of all rows) and Cohen's d_z.
    """
    rows = []
    for label, metric, a, b in pairs:
        r = paired_test(a, b, n_boot=n_boot, seed=seed, confidence=confidence)
        rows.append({"metric": metric, "model": label, **r.to_dict()})
    for row, p in zip(rows, holm([r["p_wilcoxon"] for r in rows])):
        row["p_holm"] = p
    return rows


def _p(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.4f}" if v >= 1e-4 else f"{v:.1e}"


def _f(v: float | None, digits: int = 4, sign: bool = False) -> str:
    if v is None:
        return "n/a"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def significance_table(rows: Sequence[dict[str, Any]], baseline: str,
                       markdown: bool = False) -> str:
    """Rows of :func:`significance_rows` as a table a person reads."""
    level = int(round(100 * (rows[0]["confidence"] if rows else 0.95)))
    headers = ["metric", "model", "n", f"{baseline} (base)", "model mean", "diff",
               f"{level}% CI", "p wilcoxon", "p t-test", "p holm", "d_z"]
    cells = [[r["metric"], r["model"], str(r["n"]), _f(r["mean_a"]), _f(r["mean_b"]),
              _f(r["diff"], sign=True),
              "n/a" if r["ci_low"] is None else f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]",
              _p(r["p_wilcoxon"]), _p(r["p_ttest"]), _p(r["p_holm"]), _f(r["effect"], 3)]
             for r in rows]
    return format_table(headers, cells, markdown=markdown)


def _load(run_dir: str, part: str) -> tuple[dict[str, Any], Any]:
    from ..eval import read_per_user

    path = Path(run_dir).expanduser()
    if not (path / "run.json").exists():
        raise LlmrecError(f"{run_dir}: not a finished llmrec run (run.json missing)")
    return read_per_user(path, part)


def compare_runs(run_dirs: Sequence[str], baseline: str | None = None,
                 metrics: Sequence[str] | None = None, part: str = "test", *,
                 n_boot: int = 10_000, seed: int = 0,
                 confidence: float = 0.95) -> dict[str, Any]:
    """Compare runs against ``baseline`` (default: the first) on their per-user metrics.

    Refuses, with one line, runs evaluated on other data, another split, other users or another
    masking policy than the baseline, metrics a run lacks, and runs without per-user metrics.
    """
    runs = list(dict.fromkeys(run_dirs))
    if len(runs) < 2:
        raise LlmrecError("compare needs at least two different runs")
    baseline = runs[0] if baseline is None else baseline
    if baseline not in runs:
        raise LlmrecError(f"--baseline {baseline!r} is not one of the runs compared "
                          f"({', '.join(runs)})")
    loaded = {r: _load(r, part) for r in runs}
    base_meta, base = loaded[baseline]
    base_users = base["user_id"].to_list()
    for run, (meta, frame) in loaded.items():
        if run == baseline:
            continue
        if meta.get("split_hash") != base_meta.get("split_hash"):
            raise LlmrecError(f"{run}: evaluated on other data or another split than "
                              f"{baseline} (split hash {str(meta.get('split_hash'))[:12]} != "
                              f"{str(base_meta.get('split_hash'))[:12]}); compare runs of the "
                              "same data and split")
        if set(frame["user_id"].to_list()) != set(base_users):
            raise LlmrecError(f"{run}: per-user metrics cover other users than {baseline}; "
                              "compare runs of the same data and split")
        if meta.get("mask") != base_meta.get("mask"):
            raise LlmrecError(f"{run}: masking policy {meta.get('mask')!r} differs from "
                              f"{baseline}'s {base_meta.get('mask')!r}")
    available = [c for c in base.columns if c != "user_id"
                 and all(c in f.columns for _, f in loaded.values())]
    wanted = list(metrics) if metrics else [m for m in DEFAULT_METRICS if m in available]
    for m in wanted:
        lacking = [r for r, (_, f) in loaded.items() if m not in f.columns]
        if m in base.columns or len(lacking) < len(loaded):
            if m not in available:
                raise LlmrecError(f"metric {m!r} is missing from {lacking[0]}; metrics every "
                                  f"run has: {', '.join(available)}")
        elif m not in available:
            raise LlmrecError(f"unknown metric {m!r}; available: {', '.join(available)}")
    order = {u: i for i, u in enumerate(base_users)}
    aligned = {}
    for run, (_, frame) in loaded.items():
        index = np.argsort(np.array([order[u] for u in frame["user_id"].to_list()]))
        aligned[run] = {m: frame[m].to_numpy()[index] for m in wanted}
    pairs = [(run, m, aligned[baseline][m], aligned[run][m])
             for m in wanted for run in runs if run != baseline]
    rows = significance_rows(pairs, n_boot=n_boot, seed=seed, confidence=confidence)
    means = {run: {m: float(np.nanmean(aligned[run][m])) for m in wanted} for run in runs}
    return {"part": part, "mask": base_meta.get("mask"), "split_hash": base_meta.get("split_hash"),
            "baseline": baseline, "runs": runs, "metrics": wanted, "users": len(base_users),
            "means": means, "rows": rows, "bootstrap": {"resamples": n_boot, "seed": seed},
            "correction": f"holm over the {sum(r['p_wilcoxon'] is not None for r in rows)} "
                          "Wilcoxon p-values of the table"}
