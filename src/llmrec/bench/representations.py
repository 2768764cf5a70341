"""Which item representation wins, at what cost (RecBench's question) on one split.

Variants, all trained on the same leave-one-out split of the same 5-core data, evaluated by the
same full-ranking metrics with seen items masked:

- ``sasrec-id``: SASRec with a unique learned ID embedding per item;
- ``sasrec-text``: SASRec over frozen text vectors of the item metadata (no ID table; an MLP
  projects them), so any item with a text can be recommended;
- ``sasrec-id+text``: both, summed;
- ``sasrec-id+knowledge``: as ``sasrec-id+text``, the text being the item metadata followed by
  the item's stored LLM knowledge (``llmrec knowledge generate``; items only are needed);
- ``tiger-rqkmeans`` / ``tiger-rqvae``: TIGER over semantic IDs of the same text vectors;
- ``tiger-random``: TIGER over random IDs of the same shape (the control: semantics or not).

Columns: NDCG@10 and Recall@10 over all test users; the same over the *cold* test cases, whose
target item has at most ``cold_max_count`` training interactions; cost: trainable parameters,
training seconds (to the early-stopping end), and inference milliseconds per user
(``score`` of all test histories in batches of 256, one thread). Every (variant, seed) result is
stored under the report folder and reused when the benchmark is run again with the same
settings.
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_write_text, content_hash, llmrec_home, write_json
from .._table import format_table
from ..errors import ConfigError

log = logging.getLogger(__name__)

VARIANTS = ("sasrec-id", "sasrec-text", "sasrec-id+text", "sasrec-id+knowledge",
            "tiger-rqkmeans", "tiger-rqvae", "tiger-random")
METRICS = ("ndcg@10", "recall@10")


@dataclass
class RepresentationBenchConfig:
    dataset: str = "ml-100k"
    seeds: tuple[int, ...] = (42, 43, 44)
    variants: tuple[str, ...] = VARIANTS
    cold_max_count: int = 20
    sasrec: dict[str, Any] = field(default_factory=lambda: {"threads": 1})
    tiger: dict[str, Any] = field(default_factory=lambda: {
        "embedding_size": 64, "ffn_size": 128, "max_seq_len": 20, "samples_per_user": 16,
        "epochs": 30, "patience": 5, "threads": 1})
    id_levels: int = 3
    id_codebook_size: int = 32
    rqvae_epochs: int = 100

    def __post_init__(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise ConfigError(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
        if not self.seeds:
            raise ConfigError("at least one seed is needed")


def _data(cfg: RepresentationBenchConfig):
    from ..data import Preprocessing, leave_one_out, load_dataset
    from ..tokenize.dataset import text_vectors

    ds = load_dataset(cfg.dataset, preprocessing=Preprocessing(user_core=5, item_core=5))
    split = leave_one_out(ds.interactions)
    return ds, split, text_vectors(ds)


def _model(variant: str, seed: int, cfg: RepresentationBenchConfig, vectors: np.ndarray,
           split: Any, ds: Any):
    from ..models import SASRec, TIGER
    from ..tokenize.dataset import tokenize_items

    if variant.startswith("sasrec-"):
        item_input = variant[len("sasrec-"):].replace("knowledge", "text")
        model = SASRec(**{**cfg.sasrec, "item_input": item_input, "seed": seed})
        if variant.endswith("knowledge"):
            from ..tokenize.dataset import text_vectors

            vectors = text_vectors(ds, knowledge=True)
        return model.set_item_vectors(vectors) if model.config.item_input != "id" else model
    method = {"tiger-rqkmeans": "rq-kmeans", "tiger-rqvae": "rq-vae",
              "tiger-random": "random"}[variant]
    opts: dict[str, Any] = {"levels": cfg.id_levels, "codebook_size": cfg.id_codebook_size,
                            "seed": seed}
    if method == "rq-vae":
        opts["epochs"] = cfg.rqvae_epochs
    ids = tokenize_items(ds, split.train, method, "text", **opts)
    model = TIGER(**{**cfg.tiger, "seed": seed})
    model.fit_info["ids_diagnostics"] = ids.diagnostics
    return model.set_semantic_ids(ids)


def _resolved(variant: str, cfg: RepresentationBenchConfig) -> dict[str, Any]:
    """The variant's full model options, defaults included (a change of a model's defaults
    must not reuse results stored under the old ones)."""
    from ..config import to_dict
    from ..models import SASRec, TIGER

    if variant.startswith("sasrec"):
        return to_dict(SASRec.config_class(**cfg.sasrec))
    return {**to_dict(TIGER.config_class(**cfg.tiger)), "levels": cfg.id_levels,
            "codebook": cfg.id_codebook_size, "rqvae_epochs": cfg.rqvae_epochs}


def _latency_ms(model: Any, histories: list[np.ndarray]) -> float:
    t0 = time.perf_counter()
    with torch.no_grad():
        for start in range(0, len(histories), 256):
            model.score(histories[start:start + 256])
    return 1000 * (time.perf_counter() - t0) / len(histories)


def run_one(variant: str, seed: int, cfg: RepresentationBenchConfig, data: tuple,
            progress: bool = False) -> dict[str, Any]:
    from ..eval import evaluate

    ds, split, vectors = data
    model = _model(variant, seed, cfg, vectors, split, ds)
    ids_diag = model.fit_info.pop("ids_diagnostics", None)
    t0 = time.perf_counter()
    model.fit(split.train, split.valid_cases(), progress=progress)
    wall = time.perf_counter() - t0
    test = split.test_cases()
    result = evaluate(model, test, ks=(10,), per_case=True)
    counts = split.train.item_counts()[test.target_items]
    cold = counts <= cfg.cold_max_count
    per = result.pop("per_case")
    record: dict[str, Any] = {
        "variant": variant, "seed": seed,
        **{m: result[m] for m in METRICS},
        **{f"cold_{m}": float(per[m][cold].mean()) if cold.any() else None for m in METRICS},
        "cold_cases": int(cold.sum()), "cases": len(test),
        "parameters": int(sum(p.numel() for p in model.module.parameters()
                              if p.requires_grad)),
        "train_seconds": model.fit_info.get("train_seconds", round(wall, 2)),
        "best_epoch": model.fit_info.get("best_epoch"),
        "latency_ms_per_user": _latency_ms(model, test.histories()),
    }
    if ids_diag is not None:
        record["ids"] = {"collision_rate": ids_diag.get("collision_rate"),
                         "levels": ids_diag.get("n_levels"),
                         "reconstruction_error": ids_diag.get("reconstruction_error")}
    return record


def run_representation_bench(cfg: RepresentationBenchConfig, output: str | Path | None = None,
                             *, command: str = "llmrec bench representations",
                             progress: bool = False) -> dict[str, Any]:
    """Run (or reuse) every (variant, seed); write results.json, results.md and chart.png."""
    folder = Path(output) if output else llmrec_home() / "bench" / "representations"
    torch.set_num_threads(1)
    data = _data(cfg)
    records = []
    for variant in cfg.variants:
        for seed in cfg.seeds:
            key = content_hash({"variant": variant, "seed": seed, "dataset": cfg.dataset,
                                "cold": cfg.cold_max_count, "model": _resolved(variant, cfg)})
            path = folder / "runs" / f"{variant}-{seed}-{key[:12]}.json"
            if path.exists():
                import json
                record = json.loads(path.read_text())
            else:
                log.info("%s seed %d: training", variant, seed)
                record = run_one(variant, seed, cfg, data, progress)
                write_json(path, record)
            log.info("%s seed %d: ndcg@10 %.4f (cold %s), %.0f s", variant, seed,
                     record["ndcg@10"], record["cold_ndcg@10"], record["train_seconds"])
            records.append(record)
    summary = summarize(records)
    n_cold = records[0]["cold_cases"] if records else 0
    report = {"title": f"Item representations on {cfg.dataset}: ID, text, semantic ID",
              "command": command, "date": time.strftime("%Y-%m-%d"), "config": asdict(cfg),
              "protocol": f"5-core, leave-one-out, full ranking, seen items masked; cold = "
                          f"test targets with <= {cfg.cold_max_count} training interactions "
                          f"({n_cold} of {records[0]['cases'] if records else 0} users)",
              "summary": summary, "runs": records}
    write_json(folder / "results.json", report)
    atomic_write_text(folder / "results.md", report_markdown(report))
    paths = [str(folder / "results.json"), str(folder / "results.md")]
    chart = write_chart(summary, folder / "chart.png", report["title"])
    if chart:
        paths.append(str(chart))
    report["paths"] = paths
    return report


def _mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0}


COLUMNS = ("ndcg@10", "recall@10", "cold_ndcg@10", "cold_recall@10", "parameters",
           "train_seconds", "latency_ms_per_user")


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for variant in dict.fromkeys(r["variant"] for r in records):
        runs = [r for r in records if r["variant"] == variant]
        row: dict[str, Any] = {"variant": variant, "seeds": [r["seed"] for r in runs]}
        for col in COLUMNS:
            values = [float(r[col]) for r in runs if r.get(col) is not None]
            if values:
                row[col] = _mean_std(values)
        out.append(row)
    return out


def summary_table(summary: list[dict[str, Any]], markdown: bool = False) -> str:
    headers = ["variant", "seeds", "NDCG@10", "Recall@10", "cold NDCG@10", "cold Recall@10",
               "params", "train s", "ms/user"]
    digits = (4, 4, 4, 4, 0, 0, 2)
    rows = []
    for row in summary:
        cells: list[Any] = [row["variant"], len(row["seeds"])]
        for col, d in zip(COLUMNS, digits):
            v = row.get(col)
            cells.append("" if v is None else _fmt(v, d))
        rows.append(cells)
    return format_table(headers, rows, markdown=markdown)


def _fmt(v: dict[str, float], digits: int) -> str:
    mean = f"{v['mean']:,.{digits}f}"
    return mean if v["std"] == 0 else f"{mean} ± {v['std']:,.{digits}f}"


def report_markdown(report: dict[str, Any]) -> str:
    return (f"# {report['title']}\n\n`{report['command']}` ({report['date']})\n\n"
            f"{report['protocol']}.\n\n{summary_table(report['summary'], markdown=True)}\n")


def write_chart(summary: list[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Bars of NDCG@10 (all users and cold) per variant; ``None`` without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed (pip install 'llmrec[bench]'): no chart")
        return None
    names = [r["variant"] for r in summary]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 3, 4))
    for offset, col, label in ((-0.2, "ndcg@10", "all users"),
                               (0.2, "cold_ndcg@10", "cold targets")):
        means = [r.get(col, {}).get("mean", 0.0) for r in summary]
        stds = [r.get(col, {}).get("std", 0.0) for r in summary]
        ax.bar(x + offset, means, 0.4, yerr=stds, capsize=3, label=label)
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylabel("NDCG@10 (full ranking)")
    ax.set_title(title, fontsize=10)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path
