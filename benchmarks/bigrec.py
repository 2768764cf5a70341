"""BIGRec on ML-100K with the packaged SmolLM2-135M + LoRA: cost and quality on a user subset.

    python benchmarks/bigrec.py --steps 60 --users 100 --out runs/bigrec-bench [--threads 1]
        [--max-items 5] [--variant finetuned|zero-shot|random] [--gamma 0 1 5]

Trains (resumable: the same command on the same --out continues an interrupted run from its
last checkpoint in OUT/VARIANT/lm/), then scores the test cases of the first ``--users`` users
(by user index; all 943 with --users 0) with full ranking and the history mask, exactly as
``llmrec evaluate`` does for every model, and prints one JSON line: fine-tuning tokens/s,
seconds per step and per epoch, generation ms per user, NDCG/HR@10 for each ``--gamma``, and
popularity (Pop) on the same users. The grounding with each gamma reuses the same generated
titles (generation is memoised), so extra gammas cost no generation.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--users", type=int, default=200, help="0: every test user")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-items", type=int, default=5, help="history titles per prompt")
    ap.add_argument("--variant", choices=("finetuned", "zero-shot", "random"),
                    default="finetuned")
    ap.add_argument("--gamma", type=float, nargs="+", default=[0.0, 1.0, 5.0])
    ap.add_argument("--out", default="runs/bigrec-bench")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from llmrec.eval import evaluate
    from llmrec.models import BIGRec, Pop
    from llmrec.runs import load_config, prepare

    cfg = load_config(model="bigrec", dataset="ml-100k")
    ds, split = prepare(cfg)
    options = dict(max_steps=args.steps, max_items=args.max_items, threads=args.threads,
                   learning_rate=5e-4,
                   batch_size=8, micro_batch_size=4, warmup_steps=10, max_new_tokens=32,
                   generate_batch_size=16)
    if args.variant == "zero-shot":
        options["finetune"] = False
    if args.variant == "random":
        options["init"] = "random"      # same architecture, adapter and budget
    out = Path(args.out) / args.variant
    model = BIGRec(**options)
    model.prepare(ds, split)
    t0 = time.perf_counter()
    model.fit(split.train, run_dir=out, progress=True)
    fit_seconds = time.perf_counter() - t0
    cases = split.test_cases()
    index = np.arange(len(cases)) if not args.users else np.arange(min(args.users, len(cases)))
    sub = cases.subset(index)
    t1 = time.perf_counter()
    model.generate(sub.histories(0, len(sub)), progress=True)
    gen_seconds = time.perf_counter() - t1
    result = {"variant": args.variant, "users": len(sub), "steps": args.steps,
              "threads": args.threads, "fit_seconds": round(fit_seconds, 1),
              "fit_info": model.fit_info,
              "generate_ms_per_user": round(1000 * gen_seconds / len(sub), 1)}
    info = model.fit_info
    if info.get("finetune_steps"):
        per_step = info["finetune_seconds"] / max(info["finetune_steps"]
                                                  - (info.get("resumed_from") or 0), 1)
        steps_per_epoch = math.ceil(info["examples"] / options["batch_size"])
        result.update(seconds_per_step=round(per_step, 2), steps_per_epoch=steps_per_epoch,
                      epoch_seconds=round(per_step * steps_per_epoch, 1))
    for gamma in args.gamma:
        model.config.gamma = gamma
        m = evaluate(model, sub, (10, 20), "history", batch_size=64)
        result[f"gamma={gamma:g}"] = {k: round(v, 4) for k, v in m.items()
                                      if k in ("ndcg@10", "hit@10", "ndcg@20", "hit@20")}
    pop = Pop().fit(split.train, progress=False)
    m = evaluate(pop, sub, (10, 20), "history")
    result["pop"] = {k: round(v, 4) for k, v in m.items()
                     if k in ("ndcg@10", "hit@10", "ndcg@20", "hit@20")}
    texts = model.generate(sub.histories(0, 5))
    result["examples"] = [{"generated": t, "target": model.titles[int(sub.targets(k)[0])]}
                          for k, t in enumerate(texts)]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
