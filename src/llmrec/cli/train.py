"""``llmrec train --model M --dataset D [--config x.toml] [--set section.key=value ...]``."""

from __future__ import annotations

import argparse

from ..models import MODELS
from ..runs import load_config, metrics_table, train_run
from ._common import add_data_options, data_sets, positive_int, seed_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train and evaluate a model; writes a run folder")
    p.add_argument("--model", help=f"one of: {', '.join(MODELS)} (or [model] name in --config)")
    p.add_argument("--dataset", help="registered name (ml-100k, ml-1m) or a path to data files")
    p.add_argument("--config", help="TOML file with [data], [model], [eval] sections")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one option, e.g. --set model.dropout=0.3 (repeatable)")
    p.add_argument("--seed", type=seed_int, help="shortcut for --set model.seed=N")
    p.add_argument("--epochs", type=positive_int, help="shortcut for --set model.epochs=N")
    p.add_argument("--output", help="run folder (default: $LLMREC_HOME/runs/MODEL-DATA-HASH)")
    p.add_argument("--force", action="store_true", help="retrain even if the run is finished")
    add_data_options(p)
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    sets = data_sets(args) + list(args.sets)
    if args.seed is not None:
        sets.append(f"model.seed={args.seed}")
    if args.epochs is not None:
        sets.append(f"model.epochs={args.epochs}")
    cfg = load_config(args.config, model=args.model, dataset=args.dataset, sets=sets)
    result = train_run(cfg, args.output, force=args.force, progress=not args.quiet)
    m = result.metrics
    if not m:                  # a torchrun rank other than 0: rank 0 reports and writes
        return 0
    state = "cached run (use --force to retrain)" if result.cached else "trained"
    print(f"{cfg.model} on {m['dataset']}: {state}; best epoch {m['best_epoch']}, "
          f"{m['train_seconds']:.1f} s training; history mask: {m['mask']}")
    print(metrics_table(m, cfg.eval.ks))
    print(f"\nrun folder: {result.run_dir}")
    return 0
