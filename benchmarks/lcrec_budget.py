"""LC-Rec on ML-100K at a CPU budget: fine-tune for ``--max-time`` seconds, then full-ranking
metrics on the test cases of the first ``--users`` test users (a labelled subset, or all 943).

    python benchmarks/lcrec_budget.py --init pretrained --max-time 1200 --users 200 \
        --out runs/lcrec-budget-pretrained
    python benchmarks/lcrec_budget.py --init random ...      # the random-init control
    python benchmarks/lcrec_budget.py --ids random|sequential|collaborative|TOKENIZE_FOLDER ...

The fine-tuning run lives in ``OUT/finetune`` (resumable: run the same command with a larger
``--max-time`` and it continues from the last checkpoint, since ``max_time`` counts all
sessions together). Prints one JSON line: fine-tuning steps, tokens/s, seconds, examples,
inference ms per user, and recall/ndcg/hit@10,20 on the subset (history mask, the project's
leave-one-out split, every catalogue item ranked).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--init", default="pretrained", choices=("pretrained", "random"))
    ap.add_argument("--ids", default="collaborative")
    ap.add_argument("--lm", default="", help="causal LM folder/.gguf ('' = packaged SmolLM2)")
    ap.add_argument("--mode", default="lora", choices=("lora", "full"))
    ap.add_argument("--max-time", type=float, default=1200.0)
    ap.add_argument("--max-steps", type=int, default=0, help="0: no limit besides epochs")
    ap.add_argument("--epochs", type=int, default=1, help="length of the LR schedule")
    ap.add_argument("--samples-per-user", type=int, default=1)
    ap.add_argument("--tasks", default="seq,item2index,index2item,fusion")
    ap.add_argument("--max-seq-len", type=int, default=20)
    ap.add_argument("--learning-rate", type=float, default=1e-3)
    ap.add_argument("--beam-size", type=int, default=20)
    ap.add_argument("--users", type=int, default=200, help="test users scored (0 = all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from llmrec.eval import evaluate
    from llmrec.models import LCRec
    from llmrec.runs import load_config, prepare

    cfg = load_config(model="lcrec", dataset="ml-100k")
    ds, split = prepare(cfg)
    out = Path(args.out)
    model = LCRec(lm=args.lm, init=args.init, ids=args.ids, mode=args.mode,
                  max_time=args.max_time, max_steps=args.max_steps, epochs=args.epochs,
                  samples_per_user=args.samples_per_user, tasks=args.tasks.split(","),
                  max_seq_len=args.max_seq_len, learning_rate=args.learning_rate,
                  beam_size=args.beam_size, threads=args.threads, seed=args.seed,
                  scenario="movie", save_every=20)
    model.prepare(ds, split)
    model.fit(split.train, run_dir=out, progress=False)
    info = dict(model.fit_info)
    test = split.test_cases()
    n = len(test) if not args.users else min(args.users, len(test))
    cases = test.subset(np.arange(n))
    t0 = time.perf_counter()
    metrics = evaluate(model, cases, ks=(10, 20), mask="history", batch_size=64)
    seconds = time.perf_counter() - t0
    row = {"init": args.init, "ids": args.ids, "mode": args.mode, "steps": info["steps"],
           "total_steps": info["total_steps"], "examples": info["examples"],
           "train_seconds": info["train_seconds"], "tokens": info["tokens"],
           "tokens_per_s": info["tokens_per_s"], "loss": info["loss"],
           "trainable_parameters": info["trainable_parameters"],
           "test_users": n, "of_test_users": len(test),
           "infer_ms_per_user": round(1000 * seconds / n, 1),
           **{k: round(float(v), 4) for k, v in metrics.items()
              if isinstance(v, (float, int)) and "@" in k}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(row, indent=1) + "\n")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
