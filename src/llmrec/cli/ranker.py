"""``llmrec ranker RUN_DIR``: train the CTR model that ``llmrec serve RUN_DIR`` ranks with.

    llmrec ranker RUN_DIR --model din --knowledge-source knowledge   # KAR: prestored LLM knowledge
    llmrec ranker RUN_DIR --model deepfm --knowledge-source none

The CTR samples come from the run's *training split* only (each user's events before their
validation and test targets), so that no stage of ``llmrec evaluate RUN_DIR --served`` sees a
target: neither split's target is ever a ranker sample or history item. Inside those events
the samples are split chronologically per user (so that every user the service knows was
seen in training); the model early-stops on validation AUC, its knowledge vectors (if any)
are prestored, and everything is written to RUN_DIR/ctr (no pickle), replacing a previous
ranker only once the new one is complete.

Objectives: ``rating`` (KAR's CTR task: label = rating >= 4 among rated items, with the
history's ratings as features) or ``next-item`` (the serving task: every event is a positive,
with ``--negatives`` items the user never touched as negatives; histories without ratings,
as a request carries none). ``llmrec serve`` uses a ranker only with a blend weight > 0
(``llmrec tune-serving RUN_DIR`` picks it on validation).
"""

from __future__ import annotations

import argparse

from ..errors import ConfigError
from ._common import non_negative_int, positive_int, seed_int, unit_interval


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ranker", help="train the CTR ranker that `llmrec serve RUN_DIR` uses")
    p.add_argument("run_dir")
    p.add_argument("--model", default="din", help="CTR model: deepfm, dcnv2, din (default din)")
    p.add_argument("--knowledge-source", choices=("none", "metadata", "knowledge"),
                   default="knowledge", help="knowledge vectors through the KAR adaptor: the "
                   "LLM knowledge store of the CTR task (llmrec knowledge generate --history "
                   "ctr-profile), the metadata-text stand-in, or none")
    p.add_argument("--encoder", choices=("minilm", "hashing"), default="minilm")
    p.add_argument("--objective", choices=("next-item", "rating"), default="next-item",
                   help="next-item: implicit feedback with sampled unseen negatives (what is "
                   "served; default); rating: rating >= 4 among rated items (KAR's CTR task)")
    p.add_argument("--negatives", type=positive_int, default=4,
                   help="sampled negatives per positive for --objective next-item")
    p.add_argument("--epochs", type=positive_int, default=20)
    p.add_argument("--seed", type=seed_int, default=42)
    p.add_argument("--dropout", type=unit_interval, default=0.2,
                   help="dropout of the model's MLPs (default 0.2)")
    p.add_argument("--threads", type=non_negative_int, default=0,
                   help="torch threads (0: all cores)")
    p.set_defaults(func=cmd_ranker)


def cmd_ranker(args: argparse.Namespace) -> int:
    from ..ctr import (CTR_MODELS, CTRDataConfig, build_ctr_data, ctr_metrics, fit_and_test,
                       knowledge_tables, next_item_data, training_part)
    from ..encode import ENCODERS
    from ..runs import open_run
    from ..serve import save_ctr_ranker
    from ..train import is_main

    if args.model not in CTR_MODELS:
        raise ConfigError(f"unknown CTR model {args.model!r}; choose from "
                          f"{', '.join(CTR_MODELS)}")
    if args.epochs < 1:
        raise ConfigError(f"--epochs must be >= 1, not {args.epochs}")
    if args.negatives < 1:
        raise ConfigError(f"--negatives must be >= 1, not {args.negatives}")
    run = open_run(args.run_dir)
    name = run.config.data.dataset
    ds = training_part(run.dataset, run.split)
    data = build_ctr_data(ds, CTRDataConfig(dataset=name, split="chronological"))
    if args.objective == "next-item":
        data = next_item_data(data, args.negatives, args.seed)
    knowledge = args.knowledge_source != "none"
    if knowledge:
        tables = knowledge_tables(ds, data, args.knowledge_source, ENCODERS[args.encoder](),
                                  progress=not args.quiet)
        data = tables.attach(data)
    model = CTR_MODELS[args.model](epochs=args.epochs, seed=args.seed, knowledge=knowledge,
                                   threads=args.threads, dropout=args.dropout)
    test, probs, _ = fit_and_test(model, data, progress=not args.quiet)
    if not is_main():                 # under torchrun: every rank trained, rank 0 saves
        return 0
    metrics = ctr_metrics(test.label, probs, test.user)
    folder = save_ctr_ranker(run.run_dir, model, data, ds, {
        "objective": args.objective, "history_ratings": args.objective == "rating",
        "negatives": args.negatives if args.objective == "next-item" else 0,
        "trained_on": "the run's training split"})
    print(f"{args.model} ({'knowledge: ' + args.knowledge_source if knowledge else 'no knowledge'}"
          f", {args.objective} objective) on {len(data.train):,} samples from the training "
          f"split of {name}; held-out last events per user: "
          + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
    print(f"ranker: {folder}  (llmrec serve {run.run_dir} ranks with it once "
          f"`llmrec tune-serving {run.run_dir}` gives it a blend weight, or with --ranker ctr)")
    return 0
