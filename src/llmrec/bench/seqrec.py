"""Compare sequential recommenders on one split over several seeds (the demo and the benchmark).

Every (model, seed) is an ordinary run folder, so re-running a comparison reuses finished runs
and resumes interrupted ones.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._io import atomic_write_text, write_json
from .._table import format_table
from ..runs import load_config, train_run

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
                 command: str) -> tuple[Path, Path]:
    folder = Path(folder)
    summary = summarize(records)
    write_json(folder / "results.json", {"title": title, "command": command,
                                         "date": time.strftime("%Y-%m-%d"),
                                         "summary": summary, "runs": records})
    md = (f"# {title}\n\n`{command}` ({time.strftime('%Y-%m-%d')})\n\n"
          f"{summary_table(summary, markdown=True)}\n")
    atomic_write_text(folder / "results.md", md)
    return folder / "results.json", folder / "results.md"
