"""Test scores of a sequential run that is still training (or was stopped), from the weights
with the best validation score so far (``best.safetensors``, which the trainer writes on every
improvement): what the run would report if it stopped now.

    python benchmarks/seqrec_best_so_far.py RUN_DIR [RUN_DIR ...]

Reads the run's config and data, rebuilds the model, loads the best weights and ranks all items
for every test user, masked (the run's policy) and unmasked. The validation score is recomputed
too and must equal the best one in ``train_log.jsonl`` (a check that the weights and data are
the run's). Single-threaded, so it can share the machine with the training jobs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from llmrec._table import format_table
from llmrec.config import read_toml
from llmrec.errors import LlmrecError
from llmrec.models import MODELS
from llmrec.models._sequence import SequentialRecommender
from llmrec.runs import EvalConfig, RunConfig, prepare, score_run
from llmrec.train._checkpoint import load_weights


def best_so_far(run_dir: Path) -> dict:
    for name in ("config.toml", "best.safetensors", "train_log.jsonl"):
        if not (run_dir / name).exists():
            raise LlmrecError(f"{run_dir}: no {name} (not a sequential run that has validated)")
    cfg = RunConfig.from_dict(read_toml(run_dir / "config.toml"))
    model = MODELS[cfg.model](cfg.model_config)
    if not isinstance(model, SequentialRecommender):
        raise LlmrecError(f"{run_dir}: {cfg.model} is not a sequential model")
    _, split = prepare(cfg)
    model.n_items = split.train.n_items
    model.popularity = torch.from_numpy(split.train.item_counts().astype(np.float32))
    model.module = model._build()
    load_weights(run_dir / "best.safetensors", model.module)
    model.module.eval()
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    best = max(log, key=lambda r: r["valid_ndcg@10"])
    masked = score_run(model, split, cfg.eval)                   # evaluate() runs without grad
    unmasked = score_run(model, split, EvalConfig(cfg.eval.ks, "none", cfg.eval.batch_size))
    return {"run": run_dir.name, "seed": cfg.model_config.seed, "epochs": len(log),
            "best epoch": best["epoch"], "logged valid": best["valid_ndcg@10"],
            "valid ndcg@10": masked["valid"]["ndcg@10"],
            "test ndcg@10": masked["test"]["ndcg@10"],
            "test recall@10": masked["test"]["recall@10"],
            "unmasked ndcg@10": unmasked["test"]["ndcg@10"],
            "unmasked recall@10": unmasked["test"]["recall@10"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        rows = [best_so_far(d) for d in args.run_dirs]
    except LlmrecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for r in rows:
        if abs(r["valid ndcg@10"] - r["logged valid"]) > 1e-4:
            print(f"error: {r['run']}: validation {r['valid ndcg@10']:.4f} is not the logged "
                  f"{r['logged valid']:.4f}; the weights or data are not the run's",
                  file=sys.stderr)
            return 1
    keys = [k for k in rows[0] if k != "logged valid"]
    table = [[f"{r[k]:.4f}" if isinstance(r[k], float) else str(r[k]) for k in keys]
             for r in rows]
    if len(rows) > 1:
        table.append(["mean", "", "", ""] + [f"{np.mean([r[k] for r in rows]):.4f}"
                                               for k in keys[4:]])
    print(format_table(keys, table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
