"""Controls for the knowledge benchmark: is a lift *knowledge*, or something else?

``--control rating-histogram`` (rating bias): the metadata stand-in's user text lists the
profile's rated titles *with their stars*, so a user vector can carry how generously the user
rates -- the strongest single signal for a user never seen in training (KAR's user split). This
control replaces the knowledge tables by that signal alone: the user vector is the 5-bin
histogram of the user's profile ratings (no text, no encoder), the item side is left out
(``knowledge_kinds = ["user"]``). If it matches the text-vector lift, the lift is rating bias.

``--control shuffled`` (content): the benchmark's own knowledge vectors (``--source``), rows
permuted among items and among users (seed 0), so every entity gets another one's knowledge
with the same distribution. If the real knowledge does not beat this, its content is not what
the backbone uses (only its extra capacity or noise).

Baselines (no knowledge, and the real knowledge) are read from the main benchmark's report
(same configs and seeds, so the same runs).

    python benchmarks/ctr_knowledge_controls.py [--control shuffled] [--models dcnv2,din]
"""
from __future__ import annotations

import argparse
import json
import statistics

import numpy as np

from llmrec._io import llmrec_home
from llmrec._table import format_table
from llmrec.ctr import CTR_MODELS, auc, build_ctr_data, ctr_metrics
from llmrec.ctr import knowledge_tables, load_ctr_dataset
from llmrec.encode import ENCODERS


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="deepfm,dcnv2,din")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--control", choices=["rating-histogram", "shuffled"],
                   default="rating-histogram")
    p.add_argument("--source", choices=["metadata", "knowledge"], default="knowledge",
                   help="shuffled: which knowledge vectors to shuffle")
    p.add_argument("--baseline", default=str(llmrec_home() / "bench/knowledge/results.json"))
    args = p.parse_args()
    ds = load_ctr_dataset("ml-100k")
    data = build_ctr_data(ds)
    n_users, n_items = data.schema.n_users, data.schema.n_items
    if args.control == "shuffled":
        tables = knowledge_tables(ds, data, args.source, ENCODERS["minilm"](), progress=False)
        rng = np.random.default_rng(0)
        kdata = data.with_knowledge(tables.item[rng.permutation(n_items)],
                                    tables.user[rng.permutation(n_users)])
        kinds = ["user", "item"]
    else:
        prof = data.profile
        stars = np.clip(np.nan_to_num(prof.rating).round().astype(int), 1, 5) - 1
        hist = np.zeros((n_users, 5), np.float32)
        np.add.at(hist, (prof.user, stars), 1.0)
        hist /= np.maximum(hist.sum(1, keepdims=True), 1)
        kdata = data.with_knowledge(np.zeros((n_items, 5), np.float32), hist)
        kinds = ["user"]
    counts = np.bincount(data.train.item, minlength=data.schema.n_items)
    base = json.loads(open(args.baseline).read())
    rows = []
    for name in args.models.split(","):
        aucs, rare_aucs = [], []
        for seed in range(42, 42 + args.seeds):
            model = CTR_MODELS[name](epochs=20, batch_size=1024, learning_rate=2e-3, threads=1,
                                     seed=seed, knowledge=True, knowledge_kinds=kinds)
            model.fit(kdata.train, kdata.valid, progress=False)
            test = kdata.test
            probs = model.predict(test)
            rare = counts[test.item] < 20
            aucs.append(ctr_metrics(test.label, probs, test.user)["auc"])
            rare_aucs.append(auc(test.label[rare], probs[rare]))
        seeds = range(42, 42 + args.seeds)
        ref = {(r["model"], r["seed"]): r for r in base["runs"] if not r["knowledge"]}
        real = {(r["model"], r["seed"]): r for r in base["runs"] if r["knowledge"]}
        lift = [a - ref[(name, s)]["test"]["auc"] for a, s in zip(aucs, seeds)]
        real_lift = [real[(name, s)]["test"]["auc"] - ref[(name, s)]["test"]["auc"]
                     for s in seeds if (name, s) in real]
        rows.append([name, f"{statistics.fmean(aucs):.4f}", _mean_std(lift),
                     _mean_std(real_lift) if real_lift else "—",
                     f"{statistics.fmean(rare_aucs):.4f}"])
        print(rows[-1], flush=True)
    print({"rating-histogram": "control: user vector = histogram of the user's profile ratings "
                               "(no text)",
           "shuffled": f"control: the benchmark's {args.source} vectors, rows shuffled among "
                       "items and among users"}[args.control])
    print(f"real knowledge: {base['knowledge']['label']} ({args.baseline})")
    print(format_table(["model", "AUC", "ΔAUC control", "ΔAUC real knowledge",
                        "AUC rare items"], rows))


def _mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):+.4f} ± {std:.4f}"


if __name__ == "__main__":
    main()
