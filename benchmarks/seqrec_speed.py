"""Speed of the foundation models on ML-100K: SASRec time to its best validation epoch, and
full-ranking evaluation of all 943 test users.

    python benchmarks/seqrec_speed.py                      # SASRec defaults, all cores
    python benchmarks/seqrec_speed.py --threads 1 --seed 43

Trains into a fresh temporary folder (never a cache hit). Prints the load average before and
after, because other jobs on the machine change every number here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch

from llmrec._table import format_table
from llmrec.eval import evaluate
from llmrec.runs import load_config, open_run, train_run


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="sasrec")
    p.add_argument("--dataset", default="ml-100k")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=0, help="0 = all cores (the default)")
    p.add_argument("--eval-repeats", type=int, default=5)
    args = p.parse_args()
    load_before = os.getloadavg()[0]
    cfg = load_config(model=args.model, dataset=args.dataset,
                      sets=[f"model.seed={args.seed}", f"model.threads={args.threads}"])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = train_run(cfg, output=tmp, progress=False)
        wall = time.perf_counter() - t0
        run = open_run(tmp)
        cases = run.split.test_cases()
        evaluate(run.model, cases)                          # warm-up
        times = []
        for _ in range(args.eval_repeats):
            t = time.perf_counter()
            evaluate(run.model, cases)
            times.append(time.perf_counter() - t)
    m = result.metrics
    rows = [
        ["model", args.model], ["threads", args.threads or torch.get_num_threads()],
        ["seed", args.seed], ["best epoch", m["best_epoch"]],
        ["seconds to best epoch", f"{m['seconds_to_best']:.0f}"],
        ["train seconds (incl. patience)", f"{m['train_seconds']:.0f}"],
        ["wall seconds (load, train, evaluate, save)", f"{wall:.0f}"],
        ["test ndcg@10", f"{m['test']['ndcg@10']:.4f}"],
        [f"evaluate {len(cases)} users, median of {args.eval_repeats} (s)",
         f"{statistics.median(times):.3f}"],
        ["load average before / after", f"{load_before:.1f} / {os.getloadavg()[0]:.1f}"],
    ]
    print(format_table(["measure", "value"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
