"""``llmrec bench knowledge``: backbones with and without knowledge vectors, over seeds."""

from __future__ import annotations

import argparse
import shlex

from ._common import (add_data_options, int_range, load_options, non_negative_int,
                      positive_int, print_json, seed_int)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks that write Markdown and JSON reports")
    bsub = p.add_subparsers(dest="bench_command", required=True, parser_class=type(p))
    k = bsub.add_parser("knowledge", help="each CTR backbone with and without knowledge "
                        "vectors (KAR adaptor), mean ± std over seeds, with cost columns")
    k.add_argument("--dataset", default="ml-100k")
    k.add_argument("--models", default="deepfm,dcnv2,din", help="comma-separated CTR models")
    k.add_argument("--seeds", type=positive_int, default=3, help="number of seeds (42, 43, ...)")
    k.add_argument("--knowledge-source", choices=["metadata", "knowledge"], default="metadata",
                   help="metadata: item/user text stand-in (no LLM); knowledge: the LLM "
                   "knowledge store")
    k.add_argument("--user-mode", default="individual",
                   help="knowledge source: user knowledge mode (individual, collective, "
                   "incremental)")
    k.add_argument("--encoder", choices=["minilm", "hashing"], default="minilm")
    k.add_argument("--split", choices=["user", "chronological"], default="user",
                   help="user: KAR's split by user (8:1:1); chronological: per user in time")
    k.add_argument("--epochs", type=positive_int, default=20)
    k.add_argument("--output", help="report folder (default: $LLMREC_HOME/bench/knowledge)")
    k.add_argument("--json", action="store_true", help="print the JSON report")
    add_data_options(k)
    k.set_defaults(func=cmd_knowledge)
    f = bsub.add_parser("fewshot", help="LLM click models (TALLRec, RecLoRA, the random-init "
                        "control) against DIN trained on the same 64/256/1,024 CTR samples")
    f.add_argument("--dataset", default="ml-100k")
    f.add_argument("--models", default="din,tallrec",
                   help="comma-separated: din, tallrec, tallrec-random, reclora")
    f.add_argument("--sizes", default="64,256,1024", help="training-sample counts")
    f.add_argument("--eval-samples", type=positive_int, default=300,
                   help="size of the fixed random test subset every model is scored on")
    f.add_argument("--threads", type=positive_int, default=2)
    f.add_argument("--lm", default=None, metavar="PATH", help="base LM (default: the packaged "
                   "SmolLM2-135M-Instruct GGUF)")
    f.add_argument("--output", help="run folder (default: $LLMREC_HOME/bench/fewshot); "
                   "the same command continues an interrupted run")
    f.add_argument("--json", action="store_true", help="print the JSON report")
    f.set_defaults(func=cmd_fewshot)
    r = bsub.add_parser("representations", help="items as ID, text vectors, ID+text (SASRec) "
                        "and semantic vs random IDs (TIGER), and the same for CTR (DIN): "
                        "accuracy, cold start and cost")
    r.add_argument("--config", help="TOML file of benchmark settings (flags override it), e.g. "
                   "benchmarks/configs/ml-100k/representations.toml")
    r.add_argument("--dataset")
    r.add_argument("--seeds", type=positive_int, help="number of seeds (42, 43, ...; default 3)")
    r.add_argument("--variants", help="comma-separated subset (default: all but "
                   "tiger-sequential, tiger-collaborative, tiger-das and ctr-id+das-id)")
    r.add_argument("--ctr-model", help="CTR backbone of the ctr-* variants (default: din)")
    r.add_argument("--sasrec-epochs", type=positive_int, help="cap SASRec epochs (default: 200)")
    r.add_argument("--tiger-epochs", type=positive_int, help="cap TIGER epochs (default: 30)")
    r.add_argument("--patience", type=positive_int, help="early-stopping patience of every model")
    r.add_argument("--cold-max-count", type=non_negative_int,
                   help="cold test targets have at most this many training interactions "
                   "(default 20)")
    r.add_argument("--output", help="report folder (default: $LLMREC_HOME/bench/"
                   "representations)")
    r.add_argument("--json", action="store_true", help="print the JSON report")
    add_data_options(r)
    r.set_defaults(func=cmd_representations)
    m = bsub.add_parser("llmrank", help="LLMRank: an LLM re-ranks a trained run's candidates "
                        "zero-shot (candidate-based metrics, beside the run's own order)")
    m.add_argument("run_dir", help="a finished run folder (its model retrieves the candidates)")
    m.add_argument("--out", required=True, help="results folder (resumable: a rerun skips "
                   "finished users)")
    m.add_argument("--users", type=positive_int, help="a seeded subset of test users "
                   "(default: all)")
    m.add_argument("--candidates", type=int_range(2, 99), default=20,
                   help="candidates per user: the test item + N-1 retrieved (default 20)")
    m.add_argument("--bootstrap", type=positive_int, default=3,
                   help="rankings per user, each in another candidate order (default 3)")
    m.add_argument("--aggregation", choices=("borda", "rr"), default="borda")
    m.add_argument("--history", type=positive_int,
                   help="most recent training titles shown (default: the template's)")
    m.add_argument("--seed", type=seed_int, default=42)
    m.add_argument("--template", help="a prompt template TOML (default: the packaged one)")
    m.add_argument("--constrain", choices=("grammar", "json", "none"),
                   help="answer format control (default: grammar for local, none for openai)")
    m.add_argument("--backend", choices=("local", "openai"), default="local")
    m.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://localhost:8000/v1")
    m.add_argument("--model", help="served model name (openai) or a GGUF file (local)")
    m.add_argument("--api-key-env", help="name of the environment variable holding the key")
    m.add_argument("--threads", type=positive_int, help="llama.cpp threads (local)")
    m.add_argument("--slots", type=positive_int, help="requests in flight (default: 1 for "
                   "local, 8 for openai)")
    m.add_argument("--n-ctx", type=positive_int, default=2048, help="context per slot (local)")
    m.add_argument("--report-only", action="store_true", help="rewrite the report of --out "
                   "over its finished users, with no LLM (for a stopped or running job)")
    m.add_argument("--json", action="store_true", help="print the JSON report")
    m.set_defaults(func=cmd_llmrank)


def cmd_knowledge(args: argparse.Namespace) -> int:
    from ..bench.knowledge import KnowledgeBenchConfig, run_knowledge_bench, summary_table
    from ..ctr import CTRDataConfig

    if args.seeds < 1:
        from ..errors import ConfigError
        raise ConfigError(f"--seeds must be >= 1, not {args.seeds}")
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    cfg = KnowledgeBenchConfig(
        dataset=args.dataset, models=models, seeds=tuple(range(42, 42 + args.seeds)),
        source=args.knowledge_source, encoder=args.encoder, user_mode=args.user_mode,
        data=CTRDataConfig(dataset=args.dataset, split=args.split), epochs=args.epochs,
        load_options=load_options(args))
    command = ["llmrec", "bench", "knowledge", "--dataset", args.dataset, "--models",
               ",".join(models), "--seeds", str(args.seeds), "--knowledge-source",
               args.knowledge_source, "--user-mode", args.user_mode, "--encoder", args.encoder,
               "--split", args.split, "--epochs", str(args.epochs)]
    for flag, value in _data_flags(args):
        if value is not None:
            command += [flag, value]
    report = run_knowledge_bench(cfg, args.output, command=shlex.join(command),
                                 progress=not args.quiet)
    if args.json:
        print_json(report)
        return 0
    print(f"{report['title']} -- knowledge: {report['knowledge']['label']}")
    print(summary_table(report["summary"], report["knowledge"]["costs"], markdown=False))
    print(f"\nreport: {'  '.join(report['paths'])}")
    return 0


def cmd_fewshot(args: argparse.Namespace) -> int:
    from ..bench.fewshot import FewShotConfig, fewshot_table, run_fewshot
    from ..errors import ConfigError

    try:
        sizes = tuple(int(x) for x in args.sizes.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"--sizes must be comma-separated integers, not {args.sizes!r}") \
            from None
    cfg = FewShotConfig(dataset=args.dataset, sizes=sizes, eval_samples=args.eval_samples,
                        models=tuple(m.strip() for m in args.models.split(",") if m.strip()),
                        threads=args.threads, lm=args.lm)
    report = run_fewshot(cfg, args.output, progress=not getattr(args, "quiet", False))
    if args.json:
        print_json(report)
        return 0
    print(report["note"])
    print(fewshot_table(report))
    return 0


def cmd_representations(args: argparse.Namespace) -> int:
    from ..bench.representations import (ctr_summary_table, load_bench_config,
                                         run_representation_bench, summary_table)
    from ..errors import ConfigError

    for name in ("seeds", "sasrec_epochs", "tiger_epochs", "patience", "cold_max_count"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, not {value}")
    overrides: dict = {}
    if args.dataset:
        overrides["dataset"] = args.dataset
    if args.seeds:
        overrides["seeds"] = list(range(42, 42 + args.seeds))
    if args.variants:
        overrides["variants"] = [v.strip() for v in args.variants.split(",") if v.strip()]
    if args.cold_max_count:
        overrides["cold_max_count"] = args.cold_max_count
    if args.ctr_model:
        overrides["ctr_model"] = args.ctr_model
    if load_options(args):
        overrides["load_options"] = load_options(args)
    cfg = load_bench_config(args.config, overrides)
    if args.sasrec_epochs:
        cfg.sasrec["epochs"] = args.sasrec_epochs
    if args.tiger_epochs:
        cfg.tiger["epochs"] = args.tiger_epochs
    if args.patience:
        cfg.sasrec["patience"] = cfg.tiger["patience"] = args.patience
    command = ["llmrec", "bench", "representations"]
    for flag, value in (("--config", args.config), ("--dataset", args.dataset),
                        ("--seeds", args.seeds), ("--variants", args.variants),
                        ("--ctr-model", args.ctr_model), ("--sasrec-epochs", args.sasrec_epochs),
                        ("--tiger-epochs", args.tiger_epochs), ("--patience", args.patience),
                        ("--cold-max-count", args.cold_max_count),
                        *_data_flags(args)):
        if value is not None:
            command += [flag, str(value)]
    report = run_representation_bench(cfg, args.output, command=shlex.join(command),
                                      progress=not args.quiet)
    if args.json:
        print_json(report)
        return 0
    print(report["title"])
    if report["summary"]:
        print(f"\n{report['protocol']}\n{summary_table(report['summary'])}")
    if report["ctr_summary"]:
        print(f"\n{report['ctr_protocol']}\n{ctr_summary_table(report['ctr_summary'])}")
    print(f"\nreport: {'  '.join(report['paths'])}")
    return 0


def _data_flags(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    """The data options as given, for the report's command line."""
    return [(f"--{name.replace('_', '-')}", getattr(args, name))
            for name in ("format", "columns", "sep", "encoding", "items", "item_columns",
                         "users", "user_columns")]


def cmd_llmrank(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..bench.llmrank import LLMRankConfig, run_llmrank
    from ..errors import ConfigError
    from ..llm import make_backend

    run_dir = Path(args.run_dir).expanduser()
    if args.report_only:
        from ..bench.llmrank import report_from_folder
        return _print_llmrank(args, report_from_folder(args.out))
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: run folder not found")
    cfg = LLMRankConfig(candidates=args.candidates, bootstrap=args.bootstrap, users=args.users,
                        seed=args.seed, aggregation=args.aggregation, constrain=args.constrain,
                        max_history=args.history)
    slots = args.slots or (1 if args.backend == "local" else 8)
    if args.backend == "local":
        if args.base_url or args.api_key_env:
            raise ConfigError("--base-url/--api-key-env need --backend openai")
        llm = make_backend("local", model_path=args.model, threads=args.threads,
                           parallel=slots, n_ctx=args.n_ctx)
    else:
        if not args.base_url or not args.model:
            raise ConfigError("--backend openai needs --base-url and --model")
        llm = make_backend("openai", base_url=args.base_url, model=args.model,
                           api_key_env=args.api_key_env, concurrency=slots)
    command = ["llmrec", "bench", "llmrank", str(args.run_dir), "--out", args.out,
               "--candidates", str(args.candidates), "--bootstrap", str(args.bootstrap),
               "--aggregation", args.aggregation, "--seed", str(args.seed),
               "--backend", args.backend]
    for flag, value in (("--users", args.users), ("--history", args.history),
                        ("--template", args.template), ("--constrain", args.constrain),
                        ("--base-url", args.base_url), ("--model", args.model),
                        ("--threads", args.threads), ("--slots", args.slots)):
        if value is not None:
            command += [flag, str(value)]
    with llm:
        report = run_llmrank(run_dir, llm, cfg, args.out, template=args.template,
                             progress=not args.quiet, command=shlex.join(command))
    return _print_llmrank(args, report)


def _print_llmrank(args: argparse.Namespace, report: dict) -> int:
    from ..bench.llmrank import report_markdown

    if args.json:
        print_json(report)
        return 0
    print(report_markdown(report))
    print(f"report: {'  '.join(report['paths'])}")
    return 0
