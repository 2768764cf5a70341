"""A control for the knowledge benchmark: is the lift *knowledge*, or the user's rating bias?

The metadata stand-in's user text lists the profile's rated titles *with their stars*, so a
user vector can carry how generously the user rates -- the strongest single signal for a user
never seen in training (KAR's user split). This script replaces the knowledge tables by that
signal alone: the user vector is the 5-bin histogram of the user's profile ratings (no text,
no encoder), the item side is left out (``knowledge_kinds = ["user"]``). If this control
matches the text-vector lift, the lift is rating bias, not knowledge.

Baselines are read from the main benchmark's report (same configs and seeds, so the same runs).

    python benchmarks/ctr_knowledge_controls.py [--models dcnv2,din] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics

import numpy as np

from llmrec._io import llmrec_home
from llmrec._table import format_table
from llmrec.ctr import CTR_MODELS, auc, build_ctr_data, ctr_metrics
from llmrec.data import load_dataset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="deepfm,dcnv2,din")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--baseline", default=str(llmrec_home() / "bench/knowledge/results.json"))
    args = p.parse_args()
    data = build_ctr_data(load_dataset("ml-100k"))
    prof = data.profile
    n_users = data.schema.n_users
    stars = np.clip(np.nan_to_num(prof.rating).round().astype(int), 1, 5) - 1
    hist = np.zeros((n_users, 5), np.float32)
    np.add.at(hist, (prof.user, stars), 1.0)
    hist /= np.maximum(hist.sum(1, keepdims=True), 1)
    kdata = data.with_knowledge(np.zeros((data.schema.n_items, 5), np.float32), hist)
    counts = np.bincount(data.train.item, minlength=data.schema.n_items)
    base = json.loads(open(args.baseline).read())
    rows = []
    for name in args.models.split(","):
        aucs, rare_aucs = [], []
        for seed in range(42, 42 + args.seeds):
            model = CTR_MODELS[name](epochs=20, batch_size=1024, learning_rate=2e-3, threads=1,
                                     seed=seed, knowledge=True, knowledge_kinds=["user"])
            model.fit(kdata.train, kdata.valid, progress=False)
            test = kdata.test
            probs = model.predict(test)
            rare = counts[test.item] < 20
            aucs.append(ctr_metrics(test.label, probs, test.user)["auc"])
            rare_aucs.append(auc(test.label[rare], probs[rare]))
        ref = {(r["model"], r["seed"]): r for r in base["runs"] if not r["knowledge"]}
        lift = [a - ref[(name, s)]["test"]["auc"] for a, s in zip(aucs, range(42, 42 + args.seeds))]
        rows.append([name, f"{statistics.fmean(aucs):.4f}", f"{statistics.fmean(lift):+.4f} ± "
                     f"{statistics.stdev(lift) if len(lift) > 1 else 0:.4f}",
                     f"{statistics.fmean(rare_aucs):.4f}"])
        print(rows[-1], flush=True)
    print("control: user vector = histogram of the user's profile ratings (no text)")
    print(format_table(["model", "AUC", "ΔAUC vs base", "AUC rare items"], rows))


if __name__ == "__main__":
    main()
