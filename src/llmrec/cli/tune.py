"""``llmrec tune --model M --dataset D --space space.toml --trials 30``: hyper-parameter search.

    llmrec tune --model sasrec --dataset ml-100k --space space.toml --trials 30
    llmrec tune --config base.toml --space space.toml --trials 30 --no-test
    llmrec train --config ~/.cache/llmrec/tune/sasrec-ml-100k-HASH/best.toml

Optuna TPE with median pruning on per-epoch validation NDCG@10; the study lives in SQLite in
the study folder, so an interrupted search resumes (run the same command) and several processes
started with the same arguments share one study. Trials read validation only; the best
configuration is then trained once as a normal run folder and scored on test.
"""

from __future__ import annotations

import argparse

from ..runs import load_config, metrics_table
from ._common import positive_float, positive_int, seed_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help="hyper-parameter search (Optuna) on validation; "
                       "writes best.toml, then trains it once and scores test")
    p.add_argument("--model", help="model to tune (or [model] name in --config)")
    p.add_argument("--dataset", help="registered name or a path (or [data] in --config)")
    p.add_argument("--config", help="base config TOML; the space's options are set on top")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one base option (repeatable), e.g. --set model.epochs=50")
    p.add_argument("--space", required=True, help="search space TOML ([model.<option>] tables)")
    p.add_argument("--trials", type=positive_int, default=30,
                   help="finished trials the study should hold (default 30)")
    p.add_argument("--timeout", type=positive_float,
                   help="stop starting new trials after this many s")
    p.add_argument("--study-dir", help="study folder (default: $LLMREC_HOME/tune/MODEL-DATA-HASH)")
    p.add_argument("--sampler-seed", type=seed_int, default=0, help="seed of the TPE sampler")
    p.add_argument("--no-test", action="store_true",
                   help="stop after the search: do not train the best configuration")
    p.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from ..errors import LlmrecError
    from ..models import MODELS
    from ..tune import load_space, tune

    try:
        import optuna  # noqa: F401
    except ImportError:
        raise LlmrecError("llmrec tune needs the tune extra (optuna): "
                          "pip install 'llmrec[tune]'") from None
    cfg = load_config(args.config, model=args.model, dataset=args.dataset, sets=args.sets)
    space = load_space(args.space, MODELS[cfg.model].config_class)
    result = tune(cfg, space, args.trials, study_dir=args.study_dir,
                  sampler_seed=args.sampler_seed, timeout=args.timeout,
                  final_test=not args.no_test, progress=not args.quiet)
    c = result.counts
    print(f"{cfg.model}: best validation ndcg@10 {result.best_value:.4f} (trial "
          f"{result.best_trial}; {c['complete']} complete, {c['pruned']} pruned, "
          f"{c['fail']} failed)")
    for key, value in sorted(result.best_params.items()):
        print(f"  {key} = {value!r}")
    print(f"best config: {result.best_config}  (llmrec train --config {result.best_config})")
    if result.final is not None:
        print(metrics_table(result.final.metrics, cfg.eval.ks))
        print(f"\nrun folder: {result.final.run_dir}")
    return 0
