"""Compare sequential recommenders on one split over several seeds (the demo and the benchmark).

Every (model, seed) is an ordinary run folder, so re-running a comparison reuses finished runs
and resumes interrupted ones (a finished run from before per-user metrics existed is evaluated
once more to write them).

Significance against a baseline (the first model, or ``baseline``): for every other model and
every metric column, each user's metric is averaged over the seeds the model shares with the
baseline (seed s of the model paired with seed s of the baseline), and the model's per-user
averages are tested against the baseline's over users with :func:`llmrec.stats.paired_test`
(Wilcoxon signed-rank, paired t-test, bootstrap CI of the mean difference, d_z); Holm's
correction runs over every comparison of the table. The unit is the user: seed-to-seed spread
of the means is the ``± std`` of the summary table, not part of the test.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_text, write_json
from .._table import format_table
from ..runs import evaluate_run, load_config, train_run

log = logging.getLogger(__name__)

COLUMNS = [("test", "ndcg@10"), ("test", "recall@10"), ("test", "mrr@10"),
           ("test_unmasked", "ndcg@10"), ("test_unmasked", "recall@10")]
COST = ["train_seconds", "seconds_to_best", "best_epoch"]


def compare(models: Sequence[str], dataset: str = "ml-100k", seeds: Sequence[int] = (42,), *,
            config_files: dict[str, str | Path] | None = None, sets: Sequence[str] = (),
            progress: bool = True) -> list[dict[str, Any]]:
    """Train each model once per seed; return one record per run."""
    records = []
    for model in models:
        for seed in seeds:
            cfg = load_config((config_files or {}).get(model), model=model, dataset=dataset,
                              sets=[*sets, f"model.seed={seed}"])
            t0 = time.perf_counter()
            result = train_run(cfg, progress=progress)
            if not (result.run_dir / "per_user" / "meta.json").exists():
                evaluate_run(result.run_dir)                 # an older run: write per_user/
            log.info("%s seed %d: test ndcg@10 %.4f (%s, %.0f s)", model, seed,
                     result.metrics["test"]["ndcg@10"],
                     "cached" if result.cached else "trained", time.perf_counter() - t0)
            records.append({"model": model, "seed": seed, "run_dir": str(result.run_dir),
                            "cached": result.cached, **result.metrics})
    return records


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds, per model (order kept)."""
    out = []
    for model in dict.fromkeys(r["model"] for r in records):
        runs = [r for r in records if r["model"] == model]
        row: dict[str, Any] = {"model": model, "seeds": [r["seed"] for r in runs]}
        for part, metric in COLUMNS:
            values = [r[part][metric] for r in runs if part in r]
            if values:
                row[f"{part}/{metric}"] = _mean_std(values)
        for key in COST:
            row[key] = _mean_std([float(r.get(key) or 0) for r in runs])
        out.append(row)
    return out


def _mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def _label(part: str, metric: str) -> str:
    return metric if part == "test" else f"{part.replace('test_', '')} {metric}"


def significance(records: list[dict[str, Any]], baseline: str | None = None, *,
                 n_boot: int = 10_000, seed: int = 0) -> dict[str, Any]:
    """Paired tests of every model against ``baseline`` (see the module docstring)."""
    from ..errors import ConfigError
    from ..eval import read_per_user
    from ..stats import significance_rows

    models = list(dict.fromkeys(r["model"] for r in records))
    baseline = baseline or (models[0] if models else None)
    if baseline is not None and baseline not in models:
        raise ConfigError(f"baseline {baseline!r} is not one of the models ({', '.join(models)})")
    out: dict[str, Any] = {"baseline": baseline, "rows": [], "method": (
        "per-user metric averaged over the seeds shared with the baseline, then paired over "
        "users: two-sided Wilcoxon signed-rank and t-test, 95% percentile bootstrap CI "
        f"({n_boot} resamples, seed {seed}), Holm over the table, d_z")}
    if len(models) < 2:
        return out
    runs = {(r["model"], r["seed"]): r["run_dir"] for r in records}
    cache: dict[tuple[str, str], Any] = {}

    def frame(run_dir: str, part: str):
        if (run_dir, part) not in cache:
            meta, f = read_per_user(run_dir, part)
            cache[run_dir, part] = (meta.get("split_hash"), f.sort("user_id"))
        return cache[run_dir, part]

    pairs = []
    for part, metric in COLUMNS:
        for model in models:
            if model == baseline:
                continue
            seeds = [s for (m, s) in runs if m == model and (baseline, s) in runs]
            if not seeds:
                continue
            a = [frame(runs[baseline, s], part) for s in seeds]
            b = [frame(runs[model, s], part) for s in seeds]
            if len({h for h, _ in a + b}) > 1 or any(
                    f["user_id"].to_list() != a[0][1]["user_id"].to_list() for _, f in a + b):
                raise ConfigError(f"{model} and {baseline} were evaluated on other data or "
                                  "another split; compare runs of the same data and split")
            a, b = [f for _, f in a], [f for _, f in b]
            pairs.append((model, _label(part, metric),
                          np.mean([f[metric].to_numpy() for f in a], axis=0),
                          np.mean([f[metric].to_numpy() for f in b], axis=0)))
    out["rows"] = significance_rows(pairs, n_boot=n_boot, seed=seed)
    for row in out["rows"]:
        row["seeds"] = [s for (m, s) in runs if m == row["model"] and (baseline, s) in runs]
    return out


def significance_text(sig: dict[str, Any], markdown: bool = False) -> str:
    """The significance table with a line saying how it was computed ('' if nothing to test)."""
    from ..stats import significance_table

    if not sig["rows"]:
        return ""
    return (f"Against {sig['baseline']}: {sig['method']}.\n\n"
            f"{significance_table(sig['rows'], sig['baseline'], markdown=markdown)}")


def summary_table(summary: list[dict[str, Any]], markdown: bool = False) -> str:
    headers = ["model", "seeds"] + [f"{'unmasked ' if p != 'test' else ''}{m}"
                                    for p, m in COLUMNS] + ["train s", "to best s", "best epoch"]
    rows = []
    for row in summary:
        cells: list[Any] = [row["model"], len(row["seeds"])]
        for part, metric in COLUMNS:
            v = row.get(f"{part}/{metric}")
            cells.append("" if v is None else _fmt(v, 4))
        cells += [_fmt(row[k], 0) for k in COST]
        rows.append(cells)
    return format_table(headers, rows, markdown=markdown)


def _fmt(v: dict[str, float], digits: int) -> str:
    if v["std"] == 0:
        return f"{v['mean']:.{digits}f}"
    return f"{v['mean']:.{digits}f} ± {v['std']:.{digits}f}"


def write_report(folder: str | Path, records: list[dict[str, Any]], title: str,
                 command: str, baseline: str | None = None) -> tuple[Path, Path]:
    folder = Path(folder)
    summary = summarize(records)
    sig = significance(records, baseline)
    write_json(folder / "results.json", {"title": title, "command": command,
                                         "date": time.strftime("%Y-%m-%d"),
                                         "summary": summary, "significance": sig,
                                         "runs": records})
    sig_md = significance_text(sig, markdown=True)
    md = (f"# {title}\n\n`{command}` ({time.strftime('%Y-%m-%d')})\n\n"
          f"{summary_table(summary, markdown=True)}\n" + (f"\n{sig_md}\n" if sig_md else ""))
    atomic_write_text(folder / "results.md", md)
    return folder / "results.json", folder / "results.md"
