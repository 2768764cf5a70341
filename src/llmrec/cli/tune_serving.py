"""``llmrec tune-serving RUN_DIR``: tune the served cascade on validation, confirm on test.

    llmrec tune-serving RUN_DIR                    # CEM + TPE, 150 evaluations each
    llmrec serve RUN_DIR                           # now serves RUN_DIR/serve.toml

Replays the validation split through the service's channels (each user's history cut before
the validation target; see :mod:`llmrec.serve._replay`), searches the channel weights and,
when the run has a CTR ranker, its blend weight for validation NDCG@10 with the cross-entropy
method and optuna's TPE (:mod:`llmrec.serve._tune`), keeps the best of those, the built-in
weights and each channel alone, and writes it to ``RUN_DIR/serve.toml`` (with
``tuning.json`` beside it: every candidate's validation score). Then it serves the test split
with the chosen config through the real service and prints the paired test against the
retrieval model alone: the confirmation on data the tuning never saw.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..errors import ConfigError, LlmrecError
from ._common import positive_int, seed_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune-serving", help="tune channel weights and the ranker blend of "
                       "`llmrec serve RUN_DIR` on validation; writes RUN_DIR/serve.toml")
    p.add_argument("run_dir")
    p.add_argument("--trials", type=positive_int, default=150, help="evaluations per method")
    p.add_argument("--methods", default="cem,tpe", help="cem, tpe or both (default)")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--n", type=positive_int, default=20, help="served list length (default 20)")
    p.add_argument("--serve-config", help="serve TOML to start from (default: RUN_DIR/"
                   "serve.toml if present, else the built-in defaults); its other options "
                   "are kept in the written file")
    p.add_argument("--no-ranker", action="store_true",
                   help="tune the channel weights only (never use the run's CTR ranker)")
    p.add_argument("--output", help="where to write the tuned serve TOML (default RUN_DIR/"
                   "serve.toml, which llmrec serve RUN_DIR reads; tuning.json goes beside it)")
    p.add_argument("--no-test", action="store_true", help="skip the confirmation on test")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads")
    p.set_defaults(func=cmd_tune_serving)


def cmd_tune_serving(args: argparse.Namespace) -> int:
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    if not methods or set(methods) - {"cem", "tpe"}:
        raise ConfigError(f"--methods expects cem, tpe or cem,tpe, not {args.methods!r}")
    for name in ("trials", "n", "threads"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name} must be >= 1, not {getattr(args, name)}")
    if not 0 <= args.seed < 2**32:
        raise ConfigError(f"--seed must be in 0..2^32-1, not {args.seed}")
    try:
        import dataclasses

        from .._io import atomic_write_text, write_json
        from ..config import dumps_toml, to_dict
        from ..serve import (SERVE_FILE, ReplayCache, Variant, paired_line, replay,
                             replay_artifacts, run_serve_config, served_table, set_threads,
                             tune)
        from ..serve import split_cases
    except ImportError as e:
        raise LlmrecError(f"tune-serving needs the serve extras ({e.name} is missing): "
                          "pip install 'llmrec[serve,faiss,tune]'") from None
    set_threads(args.threads)
    run_dir = Path(args.run_dir).expanduser()
    output = Path(args.output).expanduser() if args.output else run_dir / SERVE_FILE
    if args.output and not output.parent.is_dir():
        raise ConfigError(f"--output {output}: folder {output.parent} does not exist")
    base = run_serve_config(run_dir, args.serve_config)
    art = replay_artifacts(run_dir, base)
    if args.no_ranker:
        art = dataclasses.replace(art, ranker=None)
    t0 = time.perf_counter()
    cache = ReplayCache.build(art, split_cases(art, "valid"), max(base.candidates, args.n))
    say = (lambda *a: None) if args.quiet else print
    say(f"validation replay cached: {len(cache.items)} users, channels "
        f"{'+ ' + art.ranker.model.name + ' ranker ' if art.ranker is not None else ''}"
        f"scored once ({time.perf_counter() - t0:.0f} s); searching with {', '.join(methods)}")
    result = tune(cache, trials=args.trials, seed=args.seed, n=args.n, methods=methods,
                  start=base.weights,
                  start_ranker_weight=base.ctr_weight if art.ranker is not None else 0.0)
    rows = [("start (current config)", result.best_of("start")),
            ("built-in weights", result.best_of("built-in")),
            *[(f"{c} alone", result.best_of(f"{c} alone")) for c in
              ("sequential", "ann", "popularity")],
            *[(f"best of {m.upper()}", result.best_of(m)) for m in methods],
            *[(f"best of {m.upper()} + ranker", result.best_of(f"{m} + ranker"))
              for m in methods],
            ("chosen", result.best)]
    from .._table import format_table

    table = format_table(
        ["validation", "sequential", "ann", "popularity", "ranker w", "ndcg@10", "found by"],
        [[name, t.weights["sequential"], t.weights["ann"], t.weights["popularity"],
          t.ranker_weight, t.score, t.source] for name, t in rows if t is not None])
    print(table)
    rt = result.info.get("ranker_test")
    if rt:
        print(f"ranker: best with it {rt['mean_a']:.4f} vs best without {rt['mean_b']:.4f} on "
              f"validation (Wilcoxon p = {rt['wilcoxon_p']:.3g}, paired t-test p = "
              f"{rt['ttest_p']:.3g}): " + ("kept" if result.info["ranker_used"] else
                                          f"not used (needs a gain with p < {rt['alpha']})"))
    best = result.best
    tuned = dataclasses.replace(
        base, weights=dict(best.weights), ranker="auto",
        ranker_weight=best.ranker_weight if art.ranker is not None else 0.0)
    raw = {k: v for k, v in to_dict(tuned).items() if k != "api_key"}
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    header = (f"# written by `llmrec tune-serving` on {stamp}: validation NDCG@10 "
              f"{best.score:.4f} (n = {args.n}; {result.info['evaluations']} weight vectors "
              f"by {', '.join(methods)}); see tuning.json\n")
    atomic_write_text(output, header + dumps_toml(raw))
    write_json(output.with_name(output.stem + ".tuning.json") if args.output
               else run_dir / "tuning.json", {
        "written": stamp, "objective": result.info["objective"], "n": args.n,
        "methods": list(methods), "trials_per_method": args.trials, "seed": args.seed,
        "ranker": art.ranker.describe() if art.ranker is not None else None,
        "chosen": dataclasses.asdict(best), "ranker_test": rt,
        "rows": {name: dataclasses.asdict(t) for name, t in rows if t is not None},
        "evaluations": result.info["evaluations"], "seconds": result.info["seconds"]})
    print(f"wrote {output}" + (f" (llmrec serve {run_dir} uses it)" if not args.output
                               else f" (llmrec serve {run_dir} --config {output})"))
    if args.no_test:
        return 0
    seq = Variant("sequential alone (the retrieval model)",
                  {"sequential": 1.0, "ann": 0.0, "popularity": 0.0})
    chosen = Variant("tuned (serve.toml)", dict(best.weights), tuned.ctr_weight
                     if art.ranker is not None else 0.0)
    test = replay(art, "test", [seq, chosen], args.n, (5, 10, 20))
    from ..serve import paired_test

    shown = {"ks": [5, 10, 20], "rows": test,
             "variants": {v.name: {"weights": v.weights, "ranker_weight": v.ranker_weight}
                          for v in (seq, chosen)}}
    print("test split, served through the service (never used for tuning):")
    print(served_table(shown))
    print(paired_line(paired_test(test[chosen.name]["per_case"]["ndcg@10"],
                                  test[seq.name]["per_case"]["ndcg@10"]), "tuned"))
    return 0
