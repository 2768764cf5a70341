"""``llmrec ranker RUN_DIR``: train the CTR model that ``llmrec serve RUN_DIR`` ranks with.

    llmrec ranker RUN_DIR --model din --knowledge-source knowledge   # KAR: prestored LLM knowledge
    llmrec ranker RUN_DIR --model deepfm --knowledge-source none

The CTR samples come from the run's data set without k-core filtering (see llmrec.ctr), split
chronologically per user so that every user the service knows was seen in training; the
model early-stops on validation AUC, its knowledge vectors (if any) are prestored, and
everything is written to RUN_DIR/ctr (no pickle), replacing a previous ranker only once the
new one is complete.
"""

from __future__ import annotations

import argparse

from ..errors import ConfigError
from ._common import non_negative_int, positive_int, seed_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ranker", help="train the CTR ranker that `llmrec serve RUN_DIR` uses")
    p.add_argument("run_dir")
    p.add_argument("--model", default="din", help="CTR model: deepfm, dcnv2, din (default din)")
    p.add_argument("--knowledge-source", choices=("none", "metadata", "knowledge"),
                   default="knowledge", help="knowledge vectors through the KAR adaptor: the "
                   "LLM knowledge store of the CTR task (llmrec knowledge generate --history "
                   "ctr-profile), the metadata-text stand-in, or none")
    p.add_argument("--encoder", choices=("minilm", "hashing"), default="minilm")
    p.add_argument("--epochs", type=positive_int, default=20)
    p.add_argument("--seed", type=seed_int, default=42)
    p.add_argument("--threads", type=non_negative_int, default=0,
                   help="torch threads (0: all cores)")
    p.set_defaults(func=cmd_ranker)


def cmd_ranker(args: argparse.Namespace) -> int:
    from ..ctr import CTR_MODELS, CTRDataConfig, build_ctr_data
    from ..ctr._bench import fit_and_test
    from ..ctr._data import load_ctr_dataset
    from ..ctr._knowledge import knowledge_tables
    from ..ctr._metrics import ctr_metrics
    from ..encode import ENCODERS
    from ..runs import open_run
    from ..serve import save_ctr_ranker

    if args.model not in CTR_MODELS:
        raise ConfigError(f"unknown CTR model {args.model!r}; choose from "
                          f"{', '.join(CTR_MODELS)}")
    if args.epochs < 1:
        raise ConfigError(f"--epochs must be >= 1, not {args.epochs}")
    run = open_run(args.run_dir)
    name = run.config.data.dataset
    ds = load_ctr_dataset(name)
    data = build_ctr_data(ds, CTRDataConfig(dataset=name, split="chronological"))
    knowledge = args.knowledge_source != "none"
    if knowledge:
        tables = knowledge_tables(ds, data, args.knowledge_source, ENCODERS[args.encoder](),
                                  progress=not args.quiet)
        data = tables.attach(data)
    model = CTR_MODELS[args.model](epochs=args.epochs, seed=args.seed, knowledge=knowledge,
                                   threads=args.threads)
    test, probs, _ = fit_and_test(model, data, progress=not args.quiet)
    metrics = ctr_metrics(test.label, probs, test.user)
    folder = save_ctr_ranker(run.run_dir, model, data, ds)
    print(f"{args.model} ({'knowledge: ' + args.knowledge_source if knowledge else 'no knowledge'}"
          f") on {len(data.train):,} {name} CTR samples; held-out last events per user: "
          + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
    print(f"ranker: {folder}  (llmrec serve {run.run_dir} ranks with it)")
    return 0
