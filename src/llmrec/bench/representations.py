"""Which item representation wins, at what cost (RecBench's question) on one split.

Variants, all trained on the same leave-one-out split of the same 5-core data, evaluated by the
same full-ranking metrics with seen items masked:

- ``sasrec-id``: SASRec with a unique learned ID embedding per item;
- ``sasrec-text``: SASRec over frozen text vectors of the item metadata (no ID table; an MLP
  projects them), so any item with a text can be recommended;
- ``sasrec-id+text``: both, summed;
- ``sasrec-id+knowledge``: as ``sasrec-id+text``, the text being the item metadata followed by
  the item's stored LLM knowledge (``llmrec knowledge generate``; items only are needed;
  stored results are keyed by these vectors, so new knowledge means new runs);
- ``tiger-rqkmeans`` / ``tiger-rqvae``: TIGER over semantic IDs of the same text vectors;
- ``tiger-pq``: TIGER over product-quantized codes (MOTOR-style: parallel, not residual, levels);
- ``tiger-random``: TIGER over random IDs of the same shape (the control: semantics or not);
  ``tiger-sequential`` and ``tiger-collaborative``: the other indexing baselines of "How to
  Index Item IDs" (time of first appearance; spectral clustering of co-occurrence), not run by
  default;
- ``tiger-das``: TIGER over DAS codes (the same text vectors quantised by an RQ-VAE trained
  with contrastive alignment to the training co-occurrence; :mod:`llmrec.tokenize._das`), not
  run by default.

The CTR side (``ctr-*``) trains one CTR backbone (``ctr_model``, default DIN) on the CTR task of
``llmrec bench knowledge`` (rating >= 4 is a click, KAR's user split 8:1:1, no k-core), with the
item represented as

- ``ctr-id``: its ID (plus year and genres, as always);
- ``ctr-id+text``: ID + KAR's adaptor over MiniLM vectors of the item's metadata text and the
  user's profile events' titles (no LLM);
- ``ctr-id+knowledge``: ID + KAR's adaptor over the stored LLM knowledge of item and user
  (``llmrec knowledge generate --history ctr-profile``);
- ``ctr-id+semantic-id``: ID + the item's RQ-KMeans codes as ``id_levels`` more categorical
  fields (items with similar texts share embeddings of a code);
- ``ctr-id+random-id``: ID + random codes of the same shape (the control: capacity, not meaning);
- ``ctr-id+das-id``: ID + DAS codes (text aligned with the profile interactions' co-occurrence),
  not run by default.

Columns there: test AUC, logloss, GAUC; AUC on *rare* items (fewer than ``rare_items`` training
samples: the CTR task's cold-start view); parameters, training seconds, and inference ms per
1,000 samples from prestored vectors. CTR runs are shared with ``llmrec bench knowledge``
(``$LLMREC_HOME/bench/ctr-runs``).

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

from .._io import atomic_write_text, content_hash, llmrec_home, read_json_file, write_json
from .._table import format_table
from ..config import to_dict
from ..errors import ConfigError

log = logging.getLogger(__name__)

TIGER_METHODS = {"tiger-rqkmeans": "rq-kmeans", "tiger-rqvae": "rq-vae", "tiger-pq": "pq",
                 "tiger-das": "das",
                 "tiger-random": "random", "tiger-sequential": "sequential",
                 "tiger-collaborative": "collaborative"}
SEQ_VARIANTS = ("sasrec-id", "sasrec-text", "sasrec-id+text", "sasrec-id+knowledge",
                *TIGER_METHODS)
CTR_VARIANTS = ("ctr-id", "ctr-id+text", "ctr-id+knowledge", "ctr-id+semantic-id",
                "ctr-id+random-id", "ctr-id+das-id")
VARIANTS = SEQ_VARIANTS + CTR_VARIANTS
DEFAULT_VARIANTS = tuple(v for v in VARIANTS if v not in (
    "tiger-sequential", "tiger-collaborative", "tiger-das", "ctr-id+das-id"))
METRICS = ("ndcg@10", "recall@10")


@dataclass
class RepresentationBenchConfig:
    dataset: str = "ml-100k"
    seeds: tuple[int, ...] = (42, 43, 44)
    variants: tuple[str, ...] = DEFAULT_VARIANTS
    cold_max_count: int = 20
    sasrec: dict[str, Any] = field(default_factory=lambda: {"threads": 1})
    tiger: dict[str, Any] = field(default_factory=lambda: {
        "embedding_size": 64, "ffn_size": 128, "max_seq_len": 20, "samples_per_user": 16,
        "epochs": 30, "patience": 5, "threads": 1})
    id_levels: int = 3
    id_codebook_size: int = 32
    rqvae_epochs: int = 100
    ctr_model: str = "din"
    ctr_epochs: int = 20
    rare_items: int = 20
    encoder: str = "minilm"         # text encoder of every text vector ("hashing": tests)
    load_options: dict[str, Any] = field(default_factory=dict)  # reader options of a path

    def __post_init__(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise ConfigError(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
        if not self.seeds:
            raise ConfigError("at least one seed is needed")
        from ..ctr import CTR_MODELS
        from ..encode import ENCODERS

        if self.encoder not in ENCODERS:
            raise ConfigError(f"unknown encoder {self.encoder!r}; choose from "
                              f"{', '.join(ENCODERS)}")
        if self.ctr_model not in CTR_MODELS:
            raise ConfigError(f"unknown CTR model {self.ctr_model!r}; choose from "
                              f"{', '.join(CTR_MODELS)}")


def load_bench_config(path: str | Path | None = None,
                      overrides: dict[str, Any] | None = None) -> RepresentationBenchConfig:
    """Settings from a TOML file (top-level keys are the fields of
    :class:`RepresentationBenchConfig`; ``[sasrec]`` and ``[tiger]`` tables update the default
    model options), then ``overrides``; unknown keys and bad values are one-line errors."""
    from ..config import from_dict, read_toml
    from ..models import SASRec, TIGER

    raw = {**(read_toml(path) if path else {}), **(overrides or {})}
    defaults = RepresentationBenchConfig()
    for name in ("sasrec", "tiger"):
        if isinstance(raw.get(name), dict):
            raw[name] = {**getattr(defaults, name), **raw[name]}
    try:
        cfg = from_dict(RepresentationBenchConfig, raw)
        from_dict(SASRec.config_class, cfg.sasrec, "sasrec")             # check the options
        from_dict(TIGER.config_class, cfg.tiger, "tiger")
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}" if path else str(e)) from None
    return cfg


def _data(cfg: RepresentationBenchConfig):
    from ..data import Preprocessing, leave_one_out, load_dataset
    from ..tokenize.dataset import text_vectors

    ds = load_dataset(cfg.dataset, preprocessing=Preprocessing(user_core=5, item_core=5),
                      **cfg.load_options)
    split = leave_one_out(ds.interactions)
    return ds, split, text_vectors(ds, cfg.encoder)


def _model(variant: str, seed: int, cfg: RepresentationBenchConfig, vectors: np.ndarray,
           split: Any, ds: Any):
    from ..models import SASRec, TIGER
    from ..tokenize import semantic_ids
    from ..tokenize.dataset import QUANTIZERS, tokenize_items

    if variant.startswith("sasrec-"):
        item_input = variant[len("sasrec-"):].replace("knowledge", "text")
        model = SASRec(**{**cfg.sasrec, "item_input": item_input, "seed": seed})
        return model.set_item_vectors(vectors) if model.config.item_input != "id" else model
    method = TIGER_METHODS[variant]
    opts: dict[str, Any] = {"levels": cfg.id_levels, "codebook_size": cfg.id_codebook_size,
                            "seed": seed}
    if method in ("rq-vae", "das"):
        opts["epochs"] = cfg.rqvae_epochs
    if method in QUANTIZERS:              # the text vectors every variant shares
        ids = semantic_ids(vectors, method, collisions="level", **opts)
    elif method == "das":                 # the same vectors, aligned with training co-occurrence
        from ..tokenize import cooccurrence

        cooc = cooccurrence(split.train.user, split.train.item, ds.n_items)
        ids = semantic_ids({"vectors": vectors, "cooccurrence": cooc}, method,
                           collisions="level", **opts)
    else:
        ids = tokenize_items(ds, split.train, method, **opts)
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
        # per-user values for the significance table (cold: NaN for users whose target is not)
        "per_user": {"user": test.users.tolist(),
                     **{m: per[m].tolist() for m in METRICS},
                     **{f"cold_{m}": np.where(cold, per[m], np.nan).tolist() for m in METRICS}},
    }
    if ids_diag is not None:
        record["ids"] = {"collision_rate": ids_diag.get("collision_rate"),
                         "levels": ids_diag.get("n_levels"),
                         "reconstruction_error": ids_diag.get("reconstruction_error")}
    return record


def _ctr_config(cfg: RepresentationBenchConfig):
    from ..ctr import CTRDataConfig
    from .knowledge import KnowledgeBenchConfig

    return KnowledgeBenchConfig(dataset=cfg.dataset, models=(cfg.ctr_model,), seeds=cfg.seeds,
                                encoder=cfg.encoder, user_mode="individual",
                                data=CTRDataConfig(dataset=cfg.dataset), epochs=cfg.ctr_epochs,
                                rare_items=cfg.rare_items)


def run_ctr_variants(cfg: RepresentationBenchConfig, variants: tuple[str, ...],
                     progress: bool = False) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every (CTR variant, seed) of ``variants``; returns the records and the data protocol.

    Runs go through :func:`llmrec.bench.knowledge.run_cached`, so they are shared with (and keyed
    like) ``llmrec bench knowledge``; semantic and random codes add their hash to the key.
    """
    from ..ctr import CTR_MODELS
    from .._io import array_hash
    from ..ctr import build_ctr_data, knowledge_tables, load_ctr_dataset
    from .knowledge import measure_latency, run_cached
    from ..encode import ENCODERS
    from ..tokenize.dataset import tokenize_items

    kcfg = _ctr_config(cfg)
    ds = load_ctr_dataset(cfg.dataset, **cfg.load_options)
    base = build_ctr_data(ds, kcfg.data)
    runs = llmrec_home() / "bench" / "ctr-runs"
    base_key = {"data": array_hash(base.user, base.item, base.label, base.hist_items,
                                    base.part),
                "data_config": to_dict(kcfg.data), "rare_items": kcfg.rare_items}
    records = []
    for variant in variants:
        data, knowledge, key, label = base, False, {**base_key, "knowledge": None}, None
        if variant in ("ctr-id+text", "ctr-id+knowledge"):
            source = "metadata" if variant == "ctr-id+text" else "knowledge"
            tables = knowledge_tables(ds, base, source, ENCODERS[cfg.encoder](),
                                      progress=progress)
            data, knowledge = tables.attach(base), True
            key["knowledge"] = {"source": source, "encoder": tables.encoder,
                                "vectors": array_hash(tables.item, tables.user)}
        for seed in cfg.seeds:
            if variant in ("ctr-id+semantic-id", "ctr-id+random-id", "ctr-id+das-id"):
                method = {"ctr-id+semantic-id": "rq-kmeans", "ctr-id+random-id": "random",
                          "ctr-id+das-id": "das"}[variant]
                extra = {"epochs": cfg.rqvae_epochs} if method == "das" else {}
                ids = tokenize_items(ds, base.profile, method, "text", encoder=cfg.encoder,
                                     levels=cfg.id_levels, codebook_size=cfg.id_codebook_size,
                                     seed=seed, **extra)
                codes = ids.codes[:, :cfg.id_levels]        # the item id already tells apart
                data, label = base.with_item_codes(codes), variant[len("ctr-id+"):]
                key = {**base_key, "knowledge": None,
                       "item_codes": {"method": method, "codes": array_hash(codes)}}
            record = run_cached(cfg.ctr_model, knowledge, seed, data, data, kcfg, runs, key,
                                progress, label=label)
            model = CTR_MODELS[cfg.ctr_model](knowledge=knowledge).build(data.schema)
            records.append({
                "variant": variant, "seed": seed, **record["test"],
                "rare_auc": record["rare_auc"], "rare_samples": record["rare_samples"],
                "parameters": int(sum(p.numel() for p in model.module.parameters())),
                "train_seconds": record["train_seconds"], "best_epoch": record["best_epoch"],
                "latency_ms_per_1000": measure_latency(cfg.ctr_model, knowledge, data,
                                                       kcfg)["served"]})
            log.info("%s seed %d: AUC %.4f (rare items %.4f)", variant, seed,
                     records[-1]["auc"], records[-1]["rare_auc"])
    return records, base.meta


def run_representation_bench(cfg: RepresentationBenchConfig, output: str | Path | None = None,
                             *, command: str = "llmrec bench representations",
                             progress: bool = False) -> dict[str, Any]:
    """Run (or reuse) every (variant, seed); write results.json, results.md and chart.png."""
    folder = Path(output) if output else llmrec_home() / "bench" / "representations"
    torch.set_num_threads(1)
    seq_variants = tuple(v for v in cfg.variants if v in SEQ_VARIANTS)
    ctr_variants = tuple(v for v in cfg.variants if v in CTR_VARIANTS)
    data = _data(cfg) if seq_variants else None
    records = []
    for variant in seq_variants:
        inputs, knowledge = data, None
        if variant.endswith("+knowledge"):       # metadata + stored LLM knowledge, encoded
            from ..tokenize import array_hash
            from ..tokenize.dataset import text_vectors

            ds, split, _ = data
            inputs = (ds, split, text_vectors(ds, cfg.encoder, knowledge=True))
            knowledge = array_hash(inputs[2])    # new knowledge in the store: new runs
        for seed in cfg.seeds:
            key = content_hash({"variant": variant, "seed": seed, "dataset": cfg.dataset,
                                "cold": cfg.cold_max_count, "encoder": cfg.encoder,
                                "model": _resolved(variant, cfg),
                                **({"load": cfg.load_options} if cfg.load_options else {}),
                                **({"knowledge": knowledge} if knowledge else {})})
            path = folder / "runs" / f"{variant}-{seed}-{key[:12]}.json"
            if path.exists():
                record = read_json_file(path, "delete it to run that variant again")
            else:
                log.info("%s seed %d: training", variant, seed)
                record = run_one(variant, seed, cfg, inputs, progress)
                write_json(path, record)
            log.info("%s seed %d: ndcg@10 %.4f (cold %s), %.0f s", variant, seed,
                     record["ndcg@10"], record["cold_ndcg@10"], record["train_seconds"])
            records.append(record)
    ctr_records, ctr_protocol = (run_ctr_variants(cfg, ctr_variants, progress)
                                 if ctr_variants else ([], None))
    summary = summarize(records)
    sig = significance(records)
    records = [{k: v for k, v in r.items() if k != "per_user"} for r in records]
    ctr_summary = summarize(ctr_records, CTR_COLUMNS)
    n_cold = records[0]["cold_cases"] if records else 0
    report = {"title": f"Item representations on {cfg.dataset}: ID, text, semantic ID",
              "command": command, "date": time.strftime("%Y-%m-%d"), "config": asdict(cfg),
              "protocol": f"5-core, leave-one-out, full ranking, seen items masked; cold = "
                          f"test targets with <= {cfg.cold_max_count} training interactions "
                          f"({n_cold} of {records[0]['cases'] if records else 0} users)",
              "summary": summary, "significance": sig, "runs": records,
              "ctr_protocol": ctr_protocol and _ctr_protocol(ctr_protocol, cfg),
              "ctr_summary": ctr_summary, "ctr_runs": ctr_records}
    write_json(folder / "results.json", report)
    atomic_write_text(folder / "results.md", report_markdown(report))
    paths = [str(folder / "results.json"), str(folder / "results.md")]
    chart = write_chart(summary, folder / "chart.png", report["title"], ctr_summary)
    if chart:
        paths.append(str(chart))
    report["paths"] = paths
    return report


def _ctr_protocol(meta: dict[str, Any], cfg: RepresentationBenchConfig) -> str:
    return (f"CTR on {cfg.dataset} ({cfg.ctr_model.upper()}, {cfg.ctr_epochs} epochs at most): "
            f"rating >= {meta['config']['click_threshold']:g} is a click, no k-core, split "
            f"`{meta['config']['split']}` ({meta['train']:,} / {meta['valid']:,} / "
            f"{meta['test']:,} samples); rare = items with fewer than {cfg.rare_items} "
            f"training samples")


def _mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0}


COLUMNS = ("ndcg@10", "recall@10", "cold_ndcg@10", "cold_recall@10", "parameters",
           "train_seconds", "latency_ms_per_user")
CTR_COLUMNS = ("auc", "logloss", "gauc", "rare_auc", "parameters", "train_seconds",
               "latency_ms_per_1000")


def summarize(records: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS
              ) -> list[dict[str, Any]]:
    """Mean and std over seeds of every column, per variant (in order of appearance)."""
    out = []
    for variant in dict.fromkeys(r["variant"] for r in records):
        runs = [r for r in records if r["variant"] == variant]
        row: dict[str, Any] = {"variant": variant, "seeds": [r["seed"] for r in runs]}
        for col in columns:
            values = [float(r[col]) for r in runs if r.get(col) is not None]
            if values:
                row[col] = _mean_std(values)
        out.append(row)
    return out


def significance(records: list[dict[str, Any]], n_boot: int = 10_000) -> dict[str, Any]:
    """Every variant against the first, per user (as :func:`llmrec.bench.seqrec.significance`:
    each user's value averaged over the seeds shared with the baseline, tested over users, Holm
    over the table). Records cached before per-user values were kept are left out."""
    from ..stats import significance_rows

    kept = [r for r in records if "per_user" in r]
    variants = list(dict.fromkeys(r["variant"] for r in kept))
    out: dict[str, Any] = {"baseline": variants[0] if variants else None, "rows": [],
                           "skipped_runs": len(records) - len(kept)}
    if len(variants) < 2:
        return out
    runs = {(r["variant"], r["seed"]): r["per_user"] for r in kept}
    pairs = []
    for metric in ("ndcg@10", "recall@10", "cold_ndcg@10", "cold_recall@10"):
        for variant in variants[1:]:
            seeds = [s for (v, s) in runs if v == variant and (variants[0], s) in runs]
            users = {tuple(runs[v, s]["user"]) for s in seeds for v in (variant, variants[0])}
            if not seeds or len(users) != 1:
                continue
            pairs.append((variant, metric,
                          np.mean([runs[variants[0], s][metric] for s in seeds], axis=0),
                          np.mean([runs[variant, s][metric] for s in seeds], axis=0)))
    out["rows"] = significance_rows(pairs, n_boot=n_boot)
    return out


def _table(summary: list[dict[str, Any]], columns: tuple[str, ...], headers: list[str],
           markdown: bool) -> str:
    """One row per variant: its name, seed count, then ``columns`` as mean ± std (4 decimals;
    parameters and seconds whole, latencies 2)."""
    digits = {"parameters": 0, "train_seconds": 0, "latency_ms_per_user": 2,
              "latency_ms_per_1000": 2}
    rows = [[row["variant"], len(row["seeds"])]
            + ["" if row.get(col) is None else _fmt(row[col], digits.get(col, 4))
               for col in columns] for row in summary]
    return format_table(["variant", "seeds", *headers], rows, markdown=markdown)


def summary_table(summary: list[dict[str, Any]], markdown: bool = False) -> str:
    return _table(summary, COLUMNS, ["NDCG@10", "Recall@10", "cold NDCG@10", "cold Recall@10",
                                     "params", "train s", "ms/user"], markdown)


def ctr_summary_table(summary: list[dict[str, Any]], markdown: bool = False) -> str:
    return _table(summary, CTR_COLUMNS, ["AUC", "logloss", "GAUC", "AUC rare items", "params",
                                         "train s", "infer ms/1k"], markdown)


def _fmt(v: dict[str, float], digits: int) -> str:
    mean = f"{v['mean']:,.{digits}f}"
    return mean if v["std"] == 0 else f"{mean} ± {v['std']:,.{digits}f}"


def report_markdown(report: dict[str, Any]) -> str:
    out = f"# {report['title']}\n\n`{report['command']}` ({report['date']})\n\n"
    if report["summary"]:
        out += (f"## Sequential recommendation\n\n{report['protocol']}.\n\n"
                f"{summary_table(report['summary'], markdown=True)}\n")
        sig = report.get("significance") or {}
        if sig.get("rows"):
            from ..stats import significance_table

            out += (f"\nAgainst {sig['baseline']}: per-user values averaged over shared seeds, "
                    "paired over users (cold rows: cold users only); two-sided Wilcoxon and "
                    "t-test, 95% bootstrap CI, Holm over the table, d_z.\n\n"
                    f"{significance_table(sig['rows'], sig['baseline'], markdown=True)}\n")
    if report.get("ctr_summary"):
        out += (f"\n## CTR\n\n{report['ctr_protocol']}.\n\n"
                f"{ctr_summary_table(report['ctr_summary'], markdown=True)}\n")
    return out


def _bars(ax: Any, summary: list[dict[str, Any]], columns: tuple[tuple[str, str], ...],
          ylabel: str, bottom: float = 0.0) -> None:
    names = [r["variant"] for r in summary]
    x = np.arange(len(names))
    for k, (col, label) in enumerate(columns):
        means = [r.get(col, {}).get("mean", bottom) for r in summary]
        stds = [r.get(col, {}).get("std", 0.0) for r in summary]
        ax.bar(x + (k - 0.5) * 0.4, np.subtract(means, bottom), 0.4, bottom=bottom, yerr=stds,
               capsize=3, label=label)
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)


def write_chart(summary: list[dict[str, Any]], path: Path, title: str,
                ctr_summary: list[dict[str, Any]] | None = None) -> Path | None:
    """Bars of NDCG@10 (all users and cold targets) per sequential variant and, beside them,
    of AUC (all and rare items) per CTR variant; ``None`` without matplotlib or results."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed (pip install 'llmrec[bench]'): no chart")
        return None
    panels = [(summary, (("ndcg@10", "all users"), ("cold_ndcg@10", "cold targets")),
               "NDCG@10 (full ranking)", 0.0), (ctr_summary or [], (
                   ("auc", "all samples"), ("rare_auc", "rare items")), "CTR AUC", 0.5)]
    panels = [p for p in panels if p[0]]
    if not panels:
        return None
    widths = [1.3 * len(p[0]) + 2 for p in panels]
    fig, axes = plt.subplots(1, len(panels), figsize=(sum(widths) + 1, 4.2), squeeze=False,
                             gridspec_kw={"width_ratios": widths})
    for ax, (rows, columns, ylabel, bottom) in zip(axes[0], panels):
        _bars(ax, rows, columns, ylabel, bottom)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path
