"""``llmrec evaluate RUN_DIR``: recompute the metrics of a finished run."""

from __future__ import annotations

import argparse

from ..runs import evaluate_run, metrics_table
from ._common import print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a trained run on its split (full ranking)")
    p.add_argument("run_dir")
    p.add_argument("--mask", choices=["history", "none"],
                   help="history-masking policy (default: the run's)")
    p.add_argument("--ks", help="cut-offs, e.g. 5,10,20 (default: the run's)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    ks = None
    if args.ks:
        from ..errors import ConfigError
        try:
            ks = tuple(int(k) for k in args.ks.split(","))
        except ValueError:
            raise ConfigError(f"--ks expects integers like 5,10,20, not {args.ks!r}") from None
    metrics = evaluate_run(args.run_dir, mask=args.mask, ks=ks)
    if args.json:
        print_json(metrics)
    else:
        shown = ks or tuple(sorted({int(k.split("@")[1]) for k in metrics["test"] if "@" in k}))
        print(metrics_table(metrics, shown))
    return 0
