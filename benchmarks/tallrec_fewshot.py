"""TALLRec's few-shot claim on ML-100K CTR: LLM click models against DIN trained on the same
64 / 256 / 1,024 samples -- the script behind ``llmrec bench fewshot``; prints the table.

    python benchmarks/tallrec_fewshot.py --output /tmp/fs/run \
        --models din,tallrec,tallrec-random,reclora --sizes 64,256,1024
    python benchmarks/tallrec_fewshot.py --output /tmp/fs/run --table-only   # finished cells

Resumable: a finished (model, size) cell is kept in ``<output>/<model>-<size>/result.json``
and an interrupted fine-tuning resumes from ``<output>/<model>-<size>/finetune``; re-running
the same command continues. Measured figures, machine and dates: docs/results/tallrec.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from llmrec.bench.fewshot import FewShotConfig, fewshot_table, run_fewshot


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", required=True)
    p.add_argument("--models", default="din,tallrec,tallrec-random,reclora")
    p.add_argument("--sizes", default="64,256,1024")
    p.add_argument("--eval-samples", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--table-only", action="store_true",
                   help="print the finished cells of --output, train nothing")
    a = p.parse_args()
    if a.table_only:
        rows = [json.loads(f.read_text()) for f in sorted(Path(a.output).glob("*/result.json"))]
        rows.sort(key=lambda r: (r["size"], r["model"]))
        print(fewshot_table({"rows": rows}))
        return
    cfg = FewShotConfig(models=tuple(a.models.split(",")),
                        sizes=tuple(int(s) for s in a.sizes.split(",")),
                        eval_samples=a.eval_samples, threads=a.threads)
    report = run_fewshot(cfg, a.output)
    print(report["note"])
    print(fewshot_table(report))


if __name__ == "__main__":
    main()
