"""The knowledge benchmark: every backbone with and without knowledge vectors, over seeds.

For each (backbone, knowledge on/off, seed) one model is trained on the same CTR split with the
same hyper-parameters; the knowledge variant adds KAR's hybrid-expert adaptor over the
knowledge vectors. Test metrics are AUC, logloss, GAUC on all test samples and AUC on the
*rare-item* slice (items with fewer than ``rare_items`` training samples), where ID embeddings
know least and knowledge should matter most. Knowledge models are evaluated from prestored
augmented vectors (no encoder, no adaptor at inference). Inference latency per 1,000 samples
is measured once per table row, side by side at report time (it does not depend on weights).

Every finished run is kept as JSON under ``$LLMREC_HOME/bench/ctr-runs/``, named by a hash of
everything that determines it (data, model config, knowledge vectors), so re-running the
benchmark -- or another report sharing runs with it -- reuses finished runs and resumes
interrupted ones (trainer checkpoints). Only the report goes to the output folder.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from .._io import (array_hash, atomic_write_text, content_hash, llmrec_home, read_json_file,
                   write_json)
from ..config import to_dict
from ..ctr import (CTR_MODELS, CTRData, CTRDataConfig, CTRModel, auc, build_ctr_data,
                   ctr_metrics, fit_and_test, knowledge_tables, load_ctr_dataset)
from ..encode import ENCODERS

log = logging.getLogger(__name__)
ADAPTER_OPTIONS = {"num_shared_experts", "num_dedicated_experts", "expert_sizes",
                   "knowledge_kinds"}
SOURCE_LABELS = {"metadata": "metadata-text stand-in (no LLM)", "knowledge": "LLM knowledge"}


@dataclass
class KnowledgeBenchConfig:
    dataset: str = "ml-100k"
    models: tuple[str, ...] = ("deepfm", "dcnv2", "din")
    seeds: tuple[int, ...] = (42, 43, 44)
    source: Literal["metadata", "knowledge"] = "metadata"
    encoder: Literal["minilm", "hashing"] = "minilm"
    user_mode: str = "individual"         # knowledge source: which user knowledge to use
    data: CTRDataConfig = field(default_factory=CTRDataConfig)
    epochs: int = 20
    batch_size: int = 1024
    learning_rate: float = 2e-3
    threads: int = 1
    rare_items: int = 20
    latency_samples: int = 1000
    model_options: dict[str, Any] = field(default_factory=dict)   # e.g. {"dropout": 0.3}
    load_options: dict[str, Any] = field(default_factory=dict)    # reader options of a path


def latency_ms_per_1000(model: CTRModel, data: CTRData, n: int = 1000, repeats: int = 15
                        ) -> float:
    """Best-of-``repeats`` wall time of predicting ``n`` samples (features gathered from the
    tables, forward pass, sigmoid) in one batch, in ms per 1,000 samples. The minimum is the
    figure least disturbed by other jobs on the machine (``timeit``'s advice)."""
    sub = data.take(np.arange(min(n, len(data))))
    model.predict(sub)                                                   # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict(sub, batch_size=len(sub))
        times.append(time.perf_counter() - t0)
    return min(times) * 1e6 / len(sub)


def measure_latency(name: str, knowledge: bool, data: CTRData,
                    cfg: KnowledgeBenchConfig) -> dict[str, float]:
    """Inference latency of an (untrained: weights do not change the cost) model, measured
    side by side for every row of the table. Knowledge models: ``served`` from prestored
    augmented vectors, ``live`` running the adaptor on the stored knowledge vectors."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    options = {**_options(cfg, knowledge), "knowledge": knowledge, "threads": cfg.threads}
    model = CTR_MODELS[name](**options).build(data.schema)
    test = data.test
    out = {}
    if knowledge:
        out["live"] = round(latency_ms_per_1000(model, test, cfg.latency_samples), 3)
        model.prestore(data)
        test = test.without_knowledge()
    out["served"] = round(latency_ms_per_1000(model, test, cfg.latency_samples), 3)
    return out


def _options(cfg: KnowledgeBenchConfig, knowledge: bool) -> dict[str, Any]:
    """``cfg.model_options``, less the adaptor's options for a model without knowledge (so
    an adaptor ablation shares its baseline runs with the main benchmark)."""
    return {k: v for k, v in cfg.model_options.items() if knowledge or k not in ADAPTER_OPTIONS}


def run_cached(name: str, knowledge: bool, seed: int, base: CTRData, kdata: CTRData | None,
               cfg: KnowledgeBenchConfig, folder: Path, key_parts: dict, progress: bool,
               label: str | None = None) -> dict:
    """One (backbone, knowledge on/off, seed) run on ``kdata`` (knowledge) or ``base``, or its
    stored record: the record is named by a hash of the model config and ``key_parts`` (which
    must identify the data: samples, knowledge vectors, extra item fields)."""
    options = {"epochs": cfg.epochs, "batch_size": cfg.batch_size, "seed": seed,
               "learning_rate": cfg.learning_rate, "threads": cfg.threads,
               **_options(cfg, knowledge), "knowledge": knowledge}
    model = CTR_MODELS[name](**options)
    key = content_hash({"model": name, "config": to_dict(model.config), **key_parts,
                        "knowledge": key_parts["knowledge"] if knowledge else None})
    stem = f"{name}-{label or ('knowledge' if knowledge else 'base')}-{seed}-{key[:12]}"
    record_path = folder / f"{stem}.json"
    if record_path.exists():
        return {**read_json_file(record_path, f"delete it to run {stem} again"), "cached": True}
    data = kdata if knowledge else base
    test, probs, prestore_seconds = fit_and_test(model, data, run_dir=folder / stem,
                                                 progress=progress)
    counts = np.bincount(data.train.item, minlength=data.schema.n_items)
    rare = counts[test.item] < cfg.rare_items
    record = {"model": name, "knowledge": knowledge, "seed": seed, "key": key,
              "test": ctr_metrics(test.label, probs, test.user),
              "rare_auc": auc(test.label[rare], probs[rare]), "rare_samples": int(rare.sum()),
              "prestore_seconds": prestore_seconds, **model.fit_info}
    write_json(record_path, record)
    log.info("%s %s seed %d: test AUC %.4f (rare %.4f) in %.0f s", name,
             "+knowledge" if knowledge else "base", seed, record["test"]["auc"],
             record["rare_auc"], record["train_seconds"])
    return {**record, "cached": False}


def _mean_std(values: list[float]) -> dict[str, float]:
    values = [v for v in values if v is not None and not np.isnan(v)]
    if not values:
        return {"mean": float("nan"), "std": 0.0}
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def summarize(records: list[dict]) -> list[dict]:
    """Mean and std over seeds per (model, knowledge), with the paired AUC lift."""
    out = []
    for name in dict.fromkeys(r["model"] for r in records):
        base = {r["seed"]: r for r in records if r["model"] == name and not r["knowledge"]}
        for knowledge in (False, True):
            runs = [r for r in records if r["model"] == name and r["knowledge"] == knowledge]
            if not runs:
                continue
            row = {"model": name, "knowledge": knowledge, "seeds": [r["seed"] for r in runs],
                   "rare_samples": runs[0]["rare_samples"]}
            for metric in ("auc", "logloss", "gauc"):
                row[metric] = _mean_std([r["test"][metric] for r in runs])
            for key in ("rare_auc", "train_seconds", "best_epoch"):
                row[key] = _mean_std([r.get(key) for r in runs])
            if knowledge:
                row["auc_lift"] = _mean_std([r["test"]["auc"] - base[r["seed"]]["test"]["auc"]
                                             for r in runs if r["seed"] in base])
                row["rare_auc_lift"] = _mean_std([r["rare_auc"] - base[r["seed"]]["rare_auc"]
                                                  for r in runs if r["seed"] in base])
            out.append(row)
    return out


def _fmt(v: dict[str, float] | None, digits: int = 4, sign: bool = False) -> str:
    if v is None or np.isnan(v["mean"]):
        return "—"
    mean = f"{v['mean']:+.{digits}f}" if sign else f"{v['mean']:.{digits}f}"
    return mean if v["std"] == 0 else f"{mean} ± {v['std']:.{digits}f}"


def _encode_cost(costs: dict[str, Any]) -> str:
    """Seconds the knowledge vectors took to encode when they were made (cached or not)."""
    total = costs.get("encode_seconds_total")
    return f"{total:.0f}" if total is not None else f"{costs['encode_seconds']:.0f} (new only)"


def summary_table(summary: list[dict], costs: dict[str, Any], markdown: bool = True) -> str:
    from .._table import format_table

    headers = ["model", "knowledge", "AUC", "ΔAUC", "logloss", "GAUC", "AUC rare items",
               "ΔAUC rare", "LLM calls", "LLM tokens", "LLM call s", "encode s", "train s",
               "infer ms/1k"]
    rows = []
    for r in summary:
        k = r["knowledge"]
        rows.append([r["model"], "yes" if k else "no", _fmt(r["auc"]),
                     _fmt(r.get("auc_lift"), sign=True), _fmt(r["logloss"]), _fmt(r["gauc"]),
                     _fmt(r["rare_auc"]), _fmt(r.get("rare_auc_lift"), sign=True),
                     f"{costs['llm_calls']:,}" if k else "0",
                     f"{costs['llm_tokens']:,}" if k else "0",
                     f"{costs['generation_seconds']:.0f}" if k else "0",
                     _encode_cost(costs) if k else "0",
                     _fmt(r["train_seconds"], 0), f"{r['latency_ms_per_1000']['served']:.2f}"])
    return format_table(headers, rows, markdown=markdown)


def run_knowledge_bench(cfg: KnowledgeBenchConfig, output: str | Path | None = None, *,
                        command: str = "llmrec bench knowledge", progress: bool = True
                        ) -> dict[str, Any]:
    """Run (or reuse) every run of the benchmark; write results.json and results.md."""
    unknown = [m for m in cfg.models if m not in CTR_MODELS]
    if unknown:
        from ..errors import ConfigError
        raise ConfigError(f"unknown CTR model {unknown[0]!r}; choose from {', '.join(CTR_MODELS)}")
    folder = Path(output) if output else llmrec_home() / "bench" / "knowledge"
    ds = load_ctr_dataset(cfg.dataset, **cfg.load_options)
    base = build_ctr_data(ds, cfg.data)
    encoder = ENCODERS[cfg.encoder]()
    tables = knowledge_tables(ds, base, cfg.source, encoder, user_mode=cfg.user_mode,
                              progress=progress)
    kdata = tables.attach(base)
    key_parts = {"data": array_hash(base.user, base.item, base.label, base.hist_items,
                                     base.part),
                 "data_config": to_dict(cfg.data), "rare_items": cfg.rare_items,
                 "knowledge": {"source": cfg.source, "encoder": tables.encoder,
                               "vectors": array_hash(tables.item, tables.user)}}
    runs = llmrec_home() / "bench" / "ctr-runs"
    records = [run_cached(name, knowledge, seed, base, kdata, cfg, runs, key_parts, progress)
               for name in cfg.models for knowledge in (False, True) for seed in cfg.seeds]
    summary = summarize(records)
    for row in summary:
        row["latency_ms_per_1000"] = measure_latency(row["model"], row["knowledge"], kdata, cfg)
    report = {"title": f"Knowledge augmentation (KAR adaptor) on {cfg.dataset} CTR",
              "command": command, "date": time.strftime("%Y-%m-%d"), "config": to_dict(cfg),
              "protocol": base.meta, "knowledge": {"source": cfg.source,
                                                   "label": SOURCE_LABELS[cfg.source],
                                                   "encoder": tables.encoder,
                                                   "costs": tables.costs},
              "summary": summary, "runs": records}
    write_json(folder / "results.json", report)
    atomic_write_text(folder / "results.md", report_markdown(report))
    report["paths"] = [str(folder / "results.json"), str(folder / "results.md")]
    return report


def report_markdown(report: dict[str, Any]) -> str:
    p, k = report["protocol"], report["knowledge"]
    c = k["costs"]
    cfg = report["config"]
    encoder = k["encoder"].get("model", k["encoder"].get("kind"))
    return (f"# {report['title']}\n\n`{report['command']}` ({report['date']})\n\n"
            f"Knowledge: **{k['label']}**, encoder {encoder}; "
            f"{c['texts']:,} texts ({c['encoded']:,} encoded this run, {c['cache_hits']:,} from "
            f"the cache; coverage: items {c['item_coverage']:.1%}, users "
            f"{c['user_coverage']:.1%}). Data: {p['samples']:,} samples ({p['train']:,} / "
            f"{p['valid']:,} / {p['test']:,}), split `{p['config']['split']}`, positive rate "
            f"{p['positive_rate']:.3f}; {len(cfg['seeds'])} seeds, mean ± std. "
            f"Rare items: fewer than {cfg['rare_items']} training samples."
            + (f" Model options: `{cfg['model_options']}`." if cfg["model_options"] else "")
            + "\n\n"
            f"{summary_table(report['summary'], c)}\n"
            + ("\nLLM calls, tokens and call seconds count every record of the knowledge store "
               "(all user modes); call seconds add up the latencies of concurrent requests, so "
               "the generation's wall time is shorter with several decoding slots.\n"
               if k["source"] == "knowledge" else ""))
