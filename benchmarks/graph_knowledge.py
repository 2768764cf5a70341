"""Knowledge on graphs, ML-100K: do AutoGraph's knowledge factor nodes or RLMRec's profile
alignment lift LightGCN, and is a lift the knowledge's content (a shuffled control)?

    python benchmarks/graph_knowledge.py --seeds 42,43,44 [--variants ...] [--output DIR] [--set k=v]

Variants (same split, same LightGCN settings from benchmarks/configs/ml-100k/lightgcn.toml):

- ``lightgcn``: the backbone alone (AutoGraph with ``use_factors = false`` is exactly it);
- ``autograph-text``: factor nodes from metadata text -- item vectors are the packaged
  sentence encoder's vectors of each item's title/year/genres; a user's vector is the mean of
  the vectors of that user's *training* items (nothing of validation or test);
- ``autograph-text-shuffled``: the same vectors dealt to the wrong items (a seeded permutation
  of the item rows; user vectors recomputed from the permuted items): same factor sizes, no
  content -- the control a real lift must beat;
- ``autograph-knowledge``: item text followed by the stored LLM item knowledge
  (``llmrec knowledge generate`` first; skipped with a note when the store lacks it);
- ``rlmrec-text``, ``rlmrec-text-shuffled``, ``rlmrec-knowledge``: RLMRec-Con (contrastive
  alignment of LightGCN's vectors with the same profile vectors) instead of factor nodes.

Full ranking on the test split, seen items masked; per-user NDCG@10 of every variant is tested
against ``lightgcn`` (paired Wilcoxon, bootstrap CI, Holm over the table). Resumable: finished
(variant, seed) results are kept in ``results.json``; a killed training resumes from its
checkpoint in ``runs/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from llmrec._io import llmrec_home, write_json
from llmrec._table import format_table
from llmrec.config import read_toml
from llmrec.data import Preprocessing, leave_one_out, load_dataset
from llmrec.errors import LlmrecError
from llmrec.eval import evaluate
from llmrec.models import AutoGraph, RLMRec
from llmrec.models.autograph import mean_vectors
from llmrec.stats import significance_rows, significance_table
from llmrec.tokenize.dataset import text_vectors

VARIANTS = ("lightgcn", "autograph-text", "autograph-text-shuffled", "autograph-knowledge",
            "rlmrec-text", "rlmrec-text-shuffled", "rlmrec-knowledge")
DEFAULT = ("lightgcn", "autograph-text", "autograph-text-shuffled", "rlmrec-text",
           "rlmrec-text-shuffled")
FROZEN = Path(__file__).parent / "configs" / "ml-100k" / "lightgcn.toml"


def vectors_for(variant: str, ds, split, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    if variant == "lightgcn":
        return None
    items = text_vectors(ds, "minilm", knowledge=variant.endswith("-knowledge"))
    if variant.endswith("-shuffled"):
        items = items[np.random.default_rng(seed).permutation(len(items))]
    return mean_vectors(items, split.train), items


def run_one(variant: str, seed: int, ds, split, options: dict, rlmrec_options: dict,
            out: Path) -> dict:
    vectors = vectors_for(variant, ds, split, seed)
    if variant.startswith("rlmrec"):
        model = RLMRec(**{**options, **rlmrec_options, "seed": seed})
    else:
        model = AutoGraph(**{**options, "seed": seed, "use_factors": vectors is not None})
    if vectors is not None:
        model.set_knowledge(*vectors)
    t0 = time.perf_counter()
    model.fit(split.train, split.valid_cases(), run_dir=out / "runs" / f"{variant}-{seed}")
    test = evaluate(model, split.test_cases(), ks=(10,), per_case=True)
    return {"variant": variant, "seed": seed, "ndcg@10": test["ndcg@10"],
            "recall@10": test["recall@10"], "per_user_ndcg@10": test["per_case"]["ndcg@10"],
            "best_epoch": model.fit_info["best_epoch"],
            "relation_weights": model.fit_info.get("relation_weights", {}),
            "train_seconds": round(time.perf_counter() - t0, 1)}


def imported(variant: str, seed: int, run_dir: str, split) -> dict:
    """A finished run folder's model, scored on this script's test cases."""
    from llmrec.models import load_model

    meta = json.loads((Path(run_dir) / "metrics.json").read_text())
    if meta.get("seed") != seed:
        sys.exit(f"graph_knowledge.py: {run_dir} is seed {meta.get('seed')}, not {seed}")
    model = load_model(Path(run_dir) / "model")
    test = evaluate(model, split.test_cases(), ks=(10,), per_case=True)
    return {"variant": variant, "seed": seed, "ndcg@10": test["ndcg@10"],
            "recall@10": test["recall@10"],
            "per_user_ndcg@10": np.asarray(test["per_case"]["ndcg@10"]).tolist(),
            "best_epoch": meta.get("best_epoch"), "relation_weights": {},
            "train_seconds": meta.get("train_seconds"), "imported_from": str(run_dir)}


def report(results: list[dict], seeds: list[int]) -> str:
    by = {(r["variant"], r["seed"]): r for r in results}
    rows = []
    for v in VARIANTS:
        mine = [by[(v, s)] for s in seeds if (v, s) in by]
        if not mine:
            continue
        n = np.array([r["ndcg@10"] for r in mine])
        rc = np.array([r["recall@10"] for r in mine])
        rows.append([v, str(len(mine)), f"{n.mean():.4f} ± {n.std():.4f}",
                     f"{rc.mean():.4f} ± {rc.std():.4f}",
                     f"{np.mean([r['train_seconds'] for r in mine]):.0f}"])
    text = format_table(["variant", "seeds", "ndcg@10", "recall@10", "train s"], rows,
                        markdown=True)
    pairs = []
    for v in VARIANTS[1:]:
        common = [s for s in seeds if (v, s) in by and ("lightgcn", s) in by]
        if common:
            a = np.concatenate([by[("lightgcn", s)]["per_user_ndcg@10"] for s in common])
            b = np.concatenate([by[(v, s)]["per_user_ndcg@10"] for s in common])
            pairs.append((v, "ndcg@10", a, b))
    if pairs:
        text += ("\n\nPaired over users x seeds against lightgcn:\n\n"
                 + significance_table(significance_rows(pairs), "lightgcn", markdown=True))
    return text


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="42,43,44")
    p.add_argument("--variants", default=",".join(DEFAULT))
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model option, e.g. --set levels=2")
    p.add_argument("--kd-weight", type=float, default=0.1, help="rlmrec: alignment weight")
    p.add_argument("--import-run", action="append", default=[], metavar="VARIANT:SEED:RUN_DIR",
                   help="record a finished `llmrec train` run (same data and split) as that "
                   "variant and seed instead of training it, e.g. lightgcn:42:RUN_DIR of "
                   "benchmarks/configs/ml-100k/lightgcn.toml (autograph without factors is "
                   "exactly lightgcn)")
    p.add_argument("--output", help="default: $LLMREC_HOME/bench/autograph-ml-100k")
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        sys.exit(f"autograph.py: unknown variant(s) {unknown}; choose from {VARIANTS}")
    frozen = read_toml(FROZEN)
    options = {k: v for k, v in frozen["model"].items() if k != "name"}
    for item in args.sets:
        key, _, value = item.partition("=")
        options[key] = json.loads(value) if value[:1] in "0123456789-[{tf" else value
    torch.set_num_threads(int(options.get("threads", 1)))
    out = (Path(args.output) if args.output
           else llmrec_home() / "bench" / "graph-knowledge-ml-100k")
    out.mkdir(parents=True, exist_ok=True)
    ds = load_dataset("ml-100k", preprocessing=Preprocessing(user_core=5, item_core=5))
    split = leave_one_out(ds.interactions)
    path = out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else []
    done = {(r["variant"], r["seed"]) for r in results}
    for spec in args.import_run:
        variant, seed, run_dir = spec.split(":", 2)
        if (variant, int(seed)) not in done:
            results.append(imported(variant, int(seed), run_dir, split))
            done.add((variant, int(seed)))
            write_json(path, results)
    for seed in seeds:
        for v in variants:
            if (v, seed) in done:
                continue
            try:
                r = run_one(v, seed, ds, split, options, {"kd_weight": args.kd_weight}, out)
            except LlmrecError as e:
                print(f"{v} seed {seed}: skipped ({e})", flush=True)
                continue
            r["per_user_ndcg@10"] = np.asarray(r["per_user_ndcg@10"]).tolist()
            results.append(r)
            write_json(path, results)
            print(f"{v} seed {seed}: ndcg@10 {r['ndcg@10']:.4f} ({r['train_seconds']:.0f} s)",
                  flush=True)
    for r in results:
        r["per_user_ndcg@10"] = np.asarray(r["per_user_ndcg@10"])
    print(report(results, seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
