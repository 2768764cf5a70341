"""``llmrec knowledge generate|show|stats``: LLM item/user knowledge in a SQLite store.

    llmrec knowledge generate --dataset ml-100k --mode individual --threads 1
    llmrec knowledge generate --backend openai --base-url http://localhost:8000/v1 \\
        --model Qwen/Qwen2.5-7B-Instruct --api-key-env OPENAI_API_KEY --constrain json
    llmrec knowledge show --item 1            llmrec knowledge show --user 196
    llmrec knowledge stats

``generate`` exits 1 when some records failed (they are stored and retried by the next run),
2 on a usage or environment error (work done so far is kept). SIGTERM or SIGINT (Ctrl-C)
stops it cleanly: the calls in flight are finished and stored, then it says how many calls
were done and exits 143 (SIGTERM) or 130 (SIGINT); a second signal stops at once (the calls
in flight are dropped; every stored record is complete either way). The same command resumes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .._table import format_table
from ..config import from_dict, read_toml
from ..data import REGISTRY
from ..errors import LlmrecError
from ..knowledge import (CONSTRAINTS, MODES, KnowledgeConfig, KnowledgeStore, KnowledgeSummary,
                         default_store_path)
from ._common import add_data_options, data_options, load_options, positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("knowledge", help="generate and inspect LLM item/user knowledge")
    ksub = p.add_subparsers(dest="knowledge_command", required=True, parser_class=type(p))
    g = ksub.add_parser("generate", help="write item and user knowledge into the store")
    g.add_argument("--dataset", default="ml-100k", help="registered name or a path (ml-100k)")
    g.add_argument("--config", help="TOML file whose [data] section sets preprocessing/split")
    g.add_argument("--set", dest="sets", action="append", default=[], metavar="data.KEY=VALUE",
                   help="override a data option, e.g. --set data.item_core=0 (repeatable)")
    g.add_argument("--history", choices=("train", "ctr-profile"), default="train",
                   help="what user prompts may see: train = the training part of the [data] "
                   "split (sequential models, serving); ctr-profile = the CTR task's profile "
                   "events only, no sample (for `llmrec bench knowledge --knowledge-source "
                   "knowledge`; its own store DATASET-ctr-profileN.sqlite)")
    g.add_argument("--profile-events", type=positive_int, default=30,
                   help="ctr-profile: at most this many first events per user (as the CTR data)")
    g.add_argument("--mode", choices=MODES, default="individual")
    g.add_argument("--backend", choices=("local", "openai"), default="local")
    g.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://localhost:8000/v1")
    g.add_argument("--model", help="served model name (openai) or a GGUF file (local)")
    g.add_argument("--api-key-env", help="name of the environment variable holding the key")
    g.add_argument("--threads", type=positive_int, help="llama.cpp threads (local; default: "
                   "all cores; on a busy machine 1 is often much faster)")
    g.add_argument("--slots", type=positive_int, help="requests in flight = decoding slots "
                   "(default: 1 for local, where more slots did not pay on 2 busy cores; 8 for "
                   "openai)")
    g.add_argument("--n-ctx", type=positive_int, default=1024, help="context per slot (local)")
    only = g.add_mutually_exclusive_group()
    only.add_argument("--items-only", action="store_true")
    only.add_argument("--users-only", action="store_true")
    g.add_argument("--limit", type=positive_int, help="only the first N items and first N users")
    g.add_argument("--factors", help="comma-separated factors (default: the LLM derives them)")
    g.add_argument("--scenario", help="what an item is, in prompts (default: movie for ml-*)")
    g.add_argument("--constrain", choices=CONSTRAINTS,
                   help="output format control (default: grammar for local, json for openai)")
    g.add_argument("--clusters", type=positive_int, default=32, help="clusters (collective mode)")
    g.add_argument("--partition-size", type=positive_int, default=20, help="items per partition "
                   "(incremental mode)")
    g.add_argument("--kg", action="store_true", help="add facts from the data set's .kg/.link "
                   "files (check the link first: see llmrec.knowledge._facts)")
    g.add_argument("--templates", help="folder of templates overriding the packaged ones")
    g.add_argument("--store", help="SQLite file (default: $LLMREC_HOME/knowledge/DATASET.sqlite)")
    add_data_options(g)
    g.set_defaults(func=cmd_generate)
    s = ksub.add_parser("show", help="print the knowledge of one item or user")
    which = s.add_mutually_exclusive_group(required=True)
    which.add_argument("--item", help="raw item id")
    which.add_argument("--user", help="raw user id")
    s.add_argument("--dataset", default="ml-100k")
    s.add_argument("--mode", choices=MODES, help="user knowledge of this mode only")
    s.add_argument("--prompt", action="store_true", help="also print the prompt")
    s.add_argument("--store", help="SQLite file (default: by --dataset)")
    s.set_defaults(func=cmd_show)
    t = ksub.add_parser("stats", help="calls, tokens and failures per kind; past runs")
    t.add_argument("--dataset", default="ml-100k")
    t.add_argument("--store", help="SQLite file (default: by --dataset)")
    t.set_defaults(func=cmd_stats)


def _data(args: argparse.Namespace) -> tuple[Any, Any]:
    from ..runs import DataConfig, prepare, set_option

    if args.history == "ctr-profile":
        return _ctr_profile_data(args)
    raw: dict[str, Any] = read_toml(args.config) if args.config else {}
    raw.setdefault("data", {})["dataset"] = args.dataset
    raw["data"].update(data_options(args))
    for assignment in args.sets:
        set_option(raw, assignment)
    if set(raw) - {"data"}:
        raise LlmrecError(f"only [data] options apply here, not {sorted(set(raw) - {'data'})}")
    # the same data and split a run with this [data] section trains on (prepare reads .data)
    return prepare(SimpleNamespace(data=from_dict(DataConfig, raw["data"], "data")))


def _ctr_profile_data(args: argparse.Namespace) -> tuple[Any, Any]:
    """The CTR task's data (no k-core) with its profile events as the training part."""
    from ..ctr import CTRDataConfig, ctr_store_name, load_ctr_dataset, profile_split

    if args.config or args.sets:
        raise LlmrecError("--history ctr-profile uses the CTR task's data; --config/--set "
                          "do not apply (use --profile-events)")
    cfg = CTRDataConfig(dataset=args.dataset, profile_events=args.profile_events)
    ds = load_ctr_dataset(args.dataset, **load_options(args))
    if args.store is None:
        args.store = str(default_store_path(ctr_store_name(ds.name, cfg)))
    return ds, profile_split(ds, cfg)


def _backend(args: argparse.Namespace, slots: int) -> Any:
    from ..llm import make_backend

    if args.backend == "local":
        if args.base_url or args.api_key_env:
            raise LlmrecError("--base-url/--api-key-env need --backend openai")
        return make_backend("local", model_path=args.model, threads=args.threads,
                            parallel=slots, n_ctx=args.n_ctx)
    if not args.base_url or not args.model:
        raise LlmrecError("--backend openai needs --base-url and --model")
    return make_backend("openai", base_url=args.base_url, model=args.model,
                        api_key_env=args.api_key_env, concurrency=slots)


@contextlib.contextmanager
def _stop_on_signals(interrupt: threading.Event) -> Iterator[dict[str, int]]:
    """SIGTERM/SIGINT set ``interrupt`` (the run finishes its calls in flight, then stops); a
    second one ends the process at once. Yields {"signal": number} once one came."""
    got: dict[str, int] = {}

    def handler(signum: int, frame: object) -> None:
        if interrupt.is_set():
            os.write(2, b"llmrec: stopped at once (calls in flight dropped; stored records "
                        b"are complete); run the same command to resume\n")
            os._exit(128 + signum)
        got["signal"] = signum
        interrupt.set()
        os.write(2, b"llmrec: stopping after the calls in flight (signal again to stop now)\n")

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield got
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def cmd_generate(args: argparse.Namespace) -> int:
    from ..knowledge import Interrupted

    interrupt = threading.Event()
    with _stop_on_signals(interrupt) as got:
        try:
            return _generate(args, interrupt)
        except Interrupted as e:
            print(f"llmrec: interrupted after {e.done} of {e.total} calls; run the same "
                  "command to resume", file=sys.stderr)
            return 128 + got.get("signal", signal.SIGINT)


def _generate(args: argparse.Namespace, interrupt: threading.Event) -> int:
    from ..knowledge import generate_knowledge

    ds, split = _data(args)
    slots = args.slots or (1 if args.backend == "local" else 8)
    cfg = KnowledgeConfig(
        mode=args.mode, scenario=args.scenario or ("movie" if ds.name.startswith("ml-")
                                                   else "item"),
        factors=tuple(f for f in (args.factors or "").split(",") if f.strip()),
        constrain=args.constrain or ("grammar" if args.backend == "local" else "json"),
        items=not args.users_only, users=not args.items_only, limit=args.limit, kg=args.kg,
        n_clusters=args.clusters, partition_size=args.partition_size, slots=slots,
        templates=args.templates)
    with _backend(args, slots) as llm:
        threads = ""
        if args.backend == "local":
            from ..llm.local import usable_cores

            threads = f", {llm.config.threads or usable_cores()} threads"
        print(f"{ds.name}: {ds.n_items:,} items, {ds.n_users:,} users; mode {cfg.mode}; "
              f"{args.backend} backend, {slots} slots{threads}", flush=True)
        summary = generate_knowledge(ds, split, llm, cfg, store=args.store,
                                     progress=not args.quiet, interrupt=interrupt)
    print(_summary_text(summary))
    if summary.failed:
        print(f"llmrec: {summary.failed} entities have no knowledge yet (failed records are "
              "stored; run the same command again to retry them)")
        for line in summary.problems[:5]:
            print(f"  {line}")
        return 1
    return 0


def _summary_text(s: KnowledgeSummary) -> str:
    st = s.stats
    kinds = sorted(set(st["calls"]) | set(st["cached"]))
    rows = [[k, st["calls"].get(k, 0), st["cached"].get(k, 0), st["ok"].get(k, 0),
             st["prompt_tokens"].get(k, 0), st["completion_tokens"].get(k, 0)] for k in kinds]
    tokens = sum(st["completion_tokens"].values())
    secs = max(st["llm_seconds"], 1e-9)
    lines = [f"factors: {', '.join(s.factors)}",
             format_table(["kind", "LLM calls", "cached", "ok", "prompt tokens",
                           "completion tokens"], rows),
             f"items {s.items_ok}/{s.items}, users {s.users_ok}/{s.users} with knowledge; "
             f"{s.calls} calls in {s.seconds:.1f} s ({s.calls / secs:.2f} calls/s, "
             f"{tokens / secs:.1f} completion tok/s)",
             f"failures: {st['failed'] or 'none'}; store: {s.store}"]
    return "\n".join(lines)


def _open_store(args: argparse.Namespace) -> KnowledgeStore:
    if args.store:
        path = Path(args.store).expanduser()
    else:
        name = args.dataset
        if name not in REGISTRY:
            p = Path(name).expanduser()
            name = p.stem if p.is_file() else p.name
        path = default_store_path(name)
    if not path.exists():
        raise LlmrecError(f"no knowledge store at {path}; run `llmrec knowledge generate "
                          f"--dataset {args.dataset}` first")
    return KnowledgeStore(path)


def _print_record(title: str, rec: Any, prompt: bool) -> None:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(rec.created_at))
    print(f"{title}  [{rec.template}, {rec.model.get('model')}, {rec.entity}, {when}]")
    if prompt:
        for m in rec.prompt:
            print(f"--- {m['role']}\n{m['content']}")
        print("--- output")
    print(rec.text + "\n")


def cmd_show(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        if args.item is not None:
            rec = store.get_item(args.item)
            if rec is None:
                raise LlmrecError(f"no knowledge for item {args.item} in {store.path}")
            _print_record(f"item {args.item}", rec, args.prompt)
            return 0
        found = 0
        for mode in ([args.mode] if args.mode else MODES):
            rec = store.get_user(args.user, mode)
            if rec is not None:
                found += 1
                _print_record(f"user {args.user} ({mode})", rec, args.prompt)
        if not found:
            raise LlmrecError(f"no knowledge for user {args.user} in {store.path}"
                              + (f" (mode {args.mode})" if args.mode else ""))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    with _open_store(args) as store:
        rows = [[r["kind"], r["ok"], r["failed"], r["calls"], r["prompt_tokens"],
                 r["completion_tokens"], float(r["seconds"])] for r in store.stats()]
        print(f"{store.path}\n")
        print(format_table(["kind", "ok", "failed", "LLM calls", "prompt tokens",
                            "completion tokens", "request seconds"], rows, digits=1))
        fails = store.failures()
        if fails:
            print("\nfailed now\n" + format_table(["kind", "failure", "records"], fails))
        runs = [[r["id"], r["mode"], time.strftime("%Y-%m-%d %H:%M",
                                                   time.localtime(r["started_at"])),
                 sum((r["summary"] or {}).get("stats", {}).get("calls", {}).values()),
                 sum((r["summary"] or {}).get("stats", {}).get("cached", {}).values()),
                 sum((r["summary"] or {}).get("stats", {}).get("completion_tokens", {}).values()),
                 float((r["summary"] or {}).get("seconds", 0.0))] for r in store.runs()]
        if runs:
            print("\nruns\n" + format_table(["run", "mode", "started", "LLM calls", "cached",
                                            "completion tokens", "seconds"], runs, digits=1))
    return 0
