"""``llmrec bench fewshot``: LLM click models against DIN on a few training samples.

TALLRec's claim (Bao et al. 2023): fine-tuned on 64-1,024 samples, an LLM beats a
conventional CTR model trained on the same samples. The bench takes the CTR task of
``llmrec bench knowledge`` (same samples and user split, :func:`~llmrec.ctr.build_ctr_data`),
draws nested training subsets of ``sizes`` samples from its training part (a fixed
permutation: the 64 are inside the 256, inside the 1,024), trains every model of ``models`` on
each, and scores a *fixed random subset* of ``eval_samples`` test samples (the same subset for
every model; the report says so). Models:

- ``din``: DIN on the same samples, no validation data (fixed ``din_epochs``);
- ``tallrec``: TALLRec (LoRA on the packaged SmolLM2-135M);
- ``tallrec-random``: the control -- same architecture and LoRA, random weights;
- ``reclora``: RecLoRA (gated LoRA bank + long-short retrieval; its DIN is trained on the
  same samples).

An LLM model passes over ``max(1, ceil(min_passes / size))`` epochs (so the 64-sample run sees
as many prompts as the 256-sample one). Each (model, size) cell is written to
``<output>/<model>-<size>/result.json`` when done and skipped on a re-run; an interrupted
LLM fine-tuning resumes from its run folder. So the same command continues a run.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import llmrec_home, read_json_file, write_json
from .._table import format_table
from ..ctr import (CTRData, CTRDataConfig, DIN, LLM_CTR_MODELS, build_ctr_data, ctr_metrics,
                   load_ctr_dataset)
from ..errors import ConfigError

log = logging.getLogger(__name__)
MODELS = ("din", "tallrec", "tallrec-random", "reclora")


@dataclass
class FewShotConfig:
    dataset: str = "ml-100k"
    models: tuple[str, ...] = ("din", "tallrec")
    sizes: tuple[int, ...] = (64, 256, 1024)
    eval_samples: int = 300
    history_len: int = 30               # the data's history window (RecLoRA retrieves from it)
    sample_seed: int = 0
    seed: int = 0
    min_passes: int = 128
    din_epochs: int = 10
    threads: int = 2
    lm: str | None = None
    llm_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.models, self.sizes = tuple(self.models), tuple(self.sizes)
        bad = [m for m in self.models if m not in MODELS]
        if bad:
            raise ConfigError(f"unknown few-shot model {bad[0]!r}; choose from "
                              f"{', '.join(MODELS)}")
        if not self.sizes or min(self.sizes) < 2 or self.eval_samples < 2:
            raise ConfigError("sizes must be >= 2 and eval_samples >= 2")


def fewshot_data(cfg: FewShotConfig) -> tuple[CTRData, np.ndarray, CTRData]:
    """(the CTR data, a fixed permutation of its training samples, the test subset)."""
    data = build_ctr_data(load_ctr_dataset(cfg.dataset),
                          CTRDataConfig(dataset=cfg.dataset, history_len=cfg.history_len))
    train = data.train
    if max(cfg.sizes) > len(train):
        raise ConfigError(f"sizes up to {max(cfg.sizes)} but only {len(train)} training samples")
    rng = np.random.default_rng(cfg.sample_seed)
    order = rng.permutation(len(train))
    test = data.test
    pick = np.sort(rng.choice(len(test), min(cfg.eval_samples, len(test)), replace=False))
    return train, order, test.take(pick)


def _model(name: str, size: int, cfg: FewShotConfig):
    if name == "din":
        return DIN(epochs=cfg.din_epochs, batch_size=min(32, size), seed=cfg.seed,
                   threads=cfg.threads, patience=cfg.din_epochs)
    opts = {"lm": cfg.lm, "seed": cfg.seed, "threads": cfg.threads,
            "epochs": max(1, math.ceil(cfg.min_passes / size)), **cfg.llm_options}
    if name == "tallrec-random":
        return LLM_CTR_MODELS["tallrec"](**opts, init="random")
    return LLM_CTR_MODELS[name](**opts)


def run_cell(name: str, size: int, train: CTRData, test: CTRData, cfg: FewShotConfig,
             folder: Path, progress: bool = True) -> dict[str, Any]:
    done = folder / "result.json"
    if done.exists():
        return read_json_file(done, f"delete {folder} to run this cell again")
    torch.set_num_threads(cfg.threads)
    model = _model(name, size, cfg)
    t0 = time.perf_counter()
    model.fit(train, run_dir=folder, progress=progress)
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    probs = model.predict(test)
    score_s = time.perf_counter() - t1
    result = {"model": name, "size": size, **ctr_metrics(test.label, probs, test.user),
              "train_seconds": round(train_s, 1),
              "score_ms_per_sample": round(1000 * score_s / len(test), 1),
              "fit_info": model.fit_info, "test_samples": len(test),
              "positive_rate": round(float(test.label.mean()), 4)}
    write_json(done, result)
    log.info("%s @ %d: auc %.4f", name, size, result["auc"],
             extra={"event": "fewshot_cell", **{k: v for k, v in result.items()
                                                 if k != "fit_info"}})
    return result


def run_fewshot(cfg: FewShotConfig, output: str | Path | None = None,
                progress: bool = True) -> dict[str, Any]:
    out = Path(output) if output else llmrec_home() / "bench" / "fewshot"
    out.mkdir(parents=True, exist_ok=True)
    train, order, test = fewshot_data(cfg)
    rows = []
    for size in cfg.sizes:
        sub = train.take(np.sort(order[:size]))
        for name in cfg.models:
            rows.append(run_cell(name, size, sub, test, cfg, out / f"{name}-{size}", progress))
    report = {"config": asdict(cfg), "rows": rows, "test_subset": len(test),
              "note": f"metrics on a fixed random subset of {len(test)} test samples "
                      f"(seed {cfg.sample_seed}), the same for every model"}
    write_json(out / "report.json", report)
    return report


def fewshot_table(report: dict[str, Any]) -> str:
    rows = [[r["model"], r["size"], f"{r['auc']:.4f}", f"{r['logloss']:.4f}",
             f"{r['gauc']:.4f}", f"{r['train_seconds']:.0f}", f"{r['score_ms_per_sample']:.0f}"]
            for r in report["rows"]]
    return format_table(["model", "train samples", "AUC", "logloss", "GAUC", "train s",
                         "score ms/sample"], rows)
