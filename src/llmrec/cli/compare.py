"""``llmrec compare RUN_A RUN_B [...]``: are the differences between runs real? (paired tests)"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import print_json, seed_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="paired significance tests of runs against a baseline "
                       "over users (Wilcoxon, t-test, bootstrap CI, Holm)")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders (same data and split)")
    p.add_argument("--baseline", help="the run the others are compared with (default: the "
                   "first)")
    p.add_argument("--metrics", help="comma-separated per-user metrics (default: "
                   "ndcg@10,recall@10)")
    p.add_argument("--part", default="test", choices=["test", "valid", "test_unmasked",
                                                      "test_masked"],
                   help="which evaluation to compare (default: test)")
    p.add_argument("--n-boot", type=int, default=10_000, help="bootstrap resamples (>= 100)")
    p.add_argument("--seed", type=seed_int, default=0, help="bootstrap seed")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from .._table import format_table
    from ..errors import ConfigError
    from ..stats import compare_runs, significance_table

    if args.n_boot < 100:
        raise ConfigError(f"--n-boot must be >= 100, not {args.n_boot}")
    metrics = None
    if args.metrics is not None:
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        if not metrics:
            raise ConfigError(f"--metrics expects names like ndcg@10,recall@10, not "
                              f"{args.metrics!r}")
    report = compare_runs(args.runs, args.baseline, metrics, args.part, n_boot=args.n_boot,
                          seed=args.seed)
    if args.json:
        print_json(report)
        return 0
    names = [Path(r).name for r in report["runs"]]
    label = dict(zip(report["runs"], names if len(set(names)) == len(names)
                     else report["runs"]))
    base = label[report["baseline"]]
    print(f"{report['part']} metrics of {report['users']} users (mask {report['mask']}); "
          f"baseline {base}")
    print(format_table(["run", *report["metrics"]],
                       [[label[r], *[report["means"][r][m] for m in report["metrics"]]]
                        for r in report["runs"]]))
    rows = [{**r, "model": label[r["model"]]} for r in report["rows"]]
    print(f"\ndiff = run - {base} per user; two-sided Wilcoxon signed-rank and paired t-test; "
          f"{report['bootstrap']['resamples']}-resample percentile bootstrap CI (seed "
          f"{report['bootstrap']['seed']}); {report['correction']}; d_z = mean/sd of the "
          "differences")
    print(significance_table(rows, base))
    return 0
