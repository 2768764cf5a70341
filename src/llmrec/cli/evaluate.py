"""``llmrec evaluate RUN_DIR``: recompute the metrics of a finished run.

``--served`` replays the split through the serving path instead (retrieve -> rank -> re-rank,
each user's history cut at the split; see :mod:`llmrec.serve._replay`) and prints each channel
alone, the built-in fusion, the CTR-ordered cascade when the run has a ranker, and what
``llmrec serve RUN_DIR`` serves now, with a paired test of the latter against the retrieval
model alone.
"""

from __future__ import annotations

import argparse

from ..errors import ConfigError, LlmrecError
from ..runs import evaluate_run, metrics_table
from ._common import positive_int, print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a trained run on its split (full ranking)")
    p.add_argument("run_dir")
    p.add_argument("--mask", choices=["history", "none"],
                   help="history-masking policy (default: the run's)")
    p.add_argument("--ks", help="cut-offs, e.g. 5,10,20 (default: the run's)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--served", action="store_true",
                   help="replay the split through the service (llmrec serve's path) with each "
                   "user's history cut at the split; seen items excluded")
    p.add_argument("--split", choices=["test", "valid"], default="test",
                   help="with --served: the split to replay (default test)")
    p.add_argument("--n", type=positive_int, default=None,
                   help="with --served: served list length (default: the largest cut-off)")
    p.add_argument("--serve-config", help="with --served: serve TOML to evaluate (default: "
                   "RUN_DIR/serve.toml if tuned, else the built-in defaults)")
    p.add_argument("--threads", type=positive_int, default=1, help="with --served: torch threads")
    p.set_defaults(func=cmd_evaluate)


def parse_ks(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        ks = tuple(int(k) for k in text.split(","))
    except ValueError:
        raise ConfigError(f"--ks expects integers like 5,10,20, not {text!r}") from None
    if any(k < 1 for k in ks):
        raise ConfigError(f"--ks: cut-offs must be >= 1, not {text!r}")
    return ks


def cmd_evaluate(args: argparse.Namespace) -> int:
    ks = parse_ks(args.ks)
    if args.served:
        return cmd_served(args, ks)
    if args.split != "test" or args.n is not None or args.serve_config:
        raise ConfigError("--split, --n and --serve-config go with --served")
    metrics = evaluate_run(args.run_dir, mask=args.mask, ks=ks)
    if args.json:
        print_json(metrics)
    else:
        shown = ks or tuple(sorted({int(k.split("@")[1]) for k in metrics["test"] if "@" in k}))
        print(metrics_table(metrics, shown))
    return 0


def cmd_served(args: argparse.Namespace, ks: tuple[int, ...] | None) -> int:
    if args.mask == "none":
        raise ConfigError("--served excludes seen items (as the service does); "
                          "--mask none does not apply")
    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, not {args.threads}")
    try:
        from ..serve import paired_line, served_evaluation, served_table, set_threads
    except ImportError as e:
        raise LlmrecError(f"--served needs the serve extras ({e.name} is missing): "
                          "pip install 'llmrec[serve,faiss,tune]'") from None
    set_threads(args.threads)
    ks = ks or (5, 10, 20)
    n = args.n if args.n is not None else max(ks)
    if n < max(ks):
        raise ConfigError(f"--n {n} is shorter than the largest cut-off {max(ks)}")

    def progress(v, m) -> None:
        if not args.quiet and not args.json:
            print(f"  served {v.name}: ndcg@10 {m.get('ndcg@10', float('nan')):.4f} "
                  f"({m['seconds']:.0f} s)", flush=True)

    result = served_evaluation(args.run_dir, args.split, n, ks, args.serve_config,
                               progress=progress)
    if args.json:
        for m in result["rows"].values():
            m.pop("per_case", None)
        print_json(result)
        return 0
    print(f"{args.split} split replayed through the service: {result['users']} users, "
          f"n = {n}, seen items excluded; served default from {result['served_config']}")
    print(served_table(result))
    print(paired_line(result["paired_default_vs_sequential"]))
    return 0
