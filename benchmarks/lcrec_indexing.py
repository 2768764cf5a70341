"""The indexing study of "How to Index Item IDs" with an LLM: LC-Rec on ML-100K with random,
sequential, collaborative and semantic item indices, the same fine-tuning budget each, one
Markdown table.

    llmrec tokenize --dataset ml-100k --method rqkmeans --input text --levels 3 \
        --codebook-size 32 --collisions sinkhorn --output runs/ids-ml100k-semantic
    python benchmarks/lcrec_indexing.py --semantic runs/ids-ml100k-semantic \
        --max-steps 400 --users 943 --out runs/lcrec-indexing

Each variant is one ``benchmarks/lcrec_budget.py`` run in ``OUT/<kind>`` (resumable: rerun the
same command and finished variants are read back from their ``result.json``, unfinished ones
continue their fine-tuning from the last checkpoint). Extra arguments after ``--`` go to every
``lcrec_budget.py`` run (e.g. ``-- --init random``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--semantic", help="a `llmrec tokenize` folder (RQ-KMeans of item text)")
    ap.add_argument("--max-steps", type=int, default=400)
    ap.add_argument("--max-time", type=float, default=0.0)
    ap.add_argument("--users", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("rest", nargs="*", help="arguments for lcrec_budget.py (after --)")
    args = ap.parse_args()
    kinds = {"random": "random", "sequential": "sequential", "collaborative": "collaborative"}
    if args.semantic:
        kinds["semantic"] = args.semantic
    rows = []
    for kind, ids in kinds.items():
        out = Path(args.out) / kind
        if not (out / "result.json").exists():
            subprocess.run([sys.executable, str(HERE / "lcrec_budget.py"), "--ids", ids,
                            "--max-steps", str(args.max_steps), "--max-time",
                            str(args.max_time or 10 ** 7), "--users", str(args.users),
                            "--out", str(out), *args.rest], check=True)
        rows.append({"kind": kind, **json.loads((out / "result.json").read_text())})
    print("| indices | steps | train s | tokens/s | users | hit@10 | ndcg@10 | recall@20 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['kind']} | {r['steps']} | {r['train_seconds']:.0f} | "
              f"{r['tokens_per_s']:.0f} | {r['test_users']} | {r['hit@10']:.4f} | "
              f"{r['ndcg@10']:.4f} | {r['recall@20']:.4f} |")


if __name__ == "__main__":
    main()
