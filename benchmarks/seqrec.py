"""Sequential recommenders on one split, several seeds: the README's results table.

    python benchmarks/seqrec.py --dataset ml-100k --seeds 42,43,44
    python benchmarks/seqrec.py --dataset ml-1m --models sasrec --seeds 42

Each (model, seed) is a normal run folder under $LLMREC_HOME/runs (re-running reuses finished
runs and resumes interrupted ones). Model options come from benchmarks/configs/DATASET/MODEL.toml
when that file exists (frozen configs: date, command and expected figures in their comments),
else from the model's defaults. Prints a table; writes results.json/.md to --output.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from llmrec._io import llmrec_home
from llmrec.bench.seqrec import (compare, significance, significance_text, summarize,
                                 summary_table, write_report)

HERE = Path(__file__).parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dataset", default="ml-100k")
    p.add_argument("--models", default="pop,gru4rec,sasrec,bert4rec")
    p.add_argument("--seeds", default="42,43,44")
    p.add_argument("--set", dest="sets", action="append", default=[])
    p.add_argument("--output", help="default: $LLMREC_HOME/bench/seqrec-DATASET")
    p.add_argument("--baseline", help="model the others are tested against (default: the first)")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    models = args.models.split(",")
    configs = {m: HERE / "configs" / args.dataset / f"{m}.toml" for m in models}
    configs = {m: f for m, f in configs.items() if f.exists()}
    records = compare(models, args.dataset, [int(s) for s in args.seeds.split(",")],
                      config_files=configs, sets=args.sets, progress=args.progress)
    out = Path(args.output) if args.output else llmrec_home() / "bench" / f"seqrec-{args.dataset}"
    command = "python benchmarks/seqrec.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    json_path, md_path = write_report(out, records, f"Sequential recommenders on {args.dataset}",
                                      command, baseline=args.baseline)
    print(summary_table(summarize(records)))
    print("\n" + significance_text(significance(records, args.baseline)))
    print(f"\n{json_path}\n{md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
