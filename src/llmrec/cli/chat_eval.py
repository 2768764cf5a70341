"""``llmrec chat-eval RUN_DIR --strategy tree|topk|interec|macrs|toolrec --users 200 --turns 5
--k 10 --out DIR``: play simulated conversations with a trained run's test users and print the
metrics.

``--strategy interec|macrs|toolrec`` talks to an LLM (``--backend local``: the packaged SmolLM2
through llama.cpp; ``--backend openai --base-url URL --model NAME``: any OpenAI-compatible
server). With ``--memory FILE`` interec also gets the general (collaborative) memory of the
training split."""

from __future__ import annotations

import argparse

from ._common import int_range, positive_float, positive_int, print_json, seed_int


STRATEGY_NAMES = ("tree", "topk", "interec", "macrs", "toolrec")  # llmrec.chat.STRATEGIES
LLM_STRATEGIES = ("interec", "macrs", "toolrec")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chat-eval", help="evaluate a conversational strategy against simulated "
                       "users (hidden target = each user's test item)")
    p.add_argument("run_dir", help="a finished run folder (llmrec train) with a sequential model")
    p.add_argument("--strategy", choices=STRATEGY_NAMES, default="tree")
    p.add_argument("--users", type=positive_int, default=200,
                   help="test users, a fixed sample drawn with --seed (default 200)")
    p.add_argument("--turns", type=positive_int, default=5, help="agent turns per dialogue")
    p.add_argument("--k", type=positive_int, default=10, help="items per recommendation")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--out", "--output", dest="out", required=True,
                   help="folder for config.json, episodes.jsonl (resumable), transcripts.jsonl "
                   "and metrics.json")
    p.add_argument("--max-values", type=positive_int, default=None,
                   help="the simulated user names at most this many genres per answer "
                   "(default: all of the target's)")
    p.add_argument("--memory", metavar="FILE", help="SQLite entity memory: each dialogue "
                   "starts from the user's earlier sessions in FILE and is stored there; "
                   "interec also reads the general memory of the training split")
    p.add_argument("--session", default="s1", help="with --memory: this session's name")
    p.add_argument("--kg", action="store_true", help="add director/actor from the data set's "
                   "knowledge graph (.kg/.link; see docs/chat.md about ML-100K's link file)")
    p.add_argument("--confidence", type=positive_float, default=None,
                   help="tree: recommend once the top k hold this share of score mass")
    p.add_argument("--threads", type=int_range(1, 64), default=1, help="torch threads")
    add_llm_options(p, "interec, macrs, toolrec: the LLM", max_tokens=None,
                    max_tokens_help="interec, toolrec: tokens per plan / round (default 128)")
    p.add_argument("--json", action="store_true", help="print metrics.json instead of a table")
    p.set_defaults(func=cmd_chat_eval)


def add_llm_options(p: argparse.ArgumentParser, title: str, *, max_tokens: int | None,
                    max_tokens_help: str) -> None:
    """The options of the LLM behind an LLM strategy (``llmrec chat`` and ``chat-eval``)."""
    llm = p.add_argument_group(title)
    llm.add_argument("--backend", choices=("local", "openai"), default="local")
    llm.add_argument("--base-url", help="openai: the server's URL with the /v1 prefix")
    llm.add_argument("--model", help="openai: the served model's name")
    llm.add_argument("--api-key-env", help="openai: environment variable holding the key")
    llm.add_argument("--llm-threads", type=int_range(1, 64), default=None,
                     help="local: llama.cpp threads (default: every usable core)")
    llm.add_argument("--max-tokens", type=int_range(8, 4096), default=max_tokens,
                     help=max_tokens_help)
    llm.add_argument("--constrain", choices=("grammar", "json", "tools"), default=None,
                     help="grammar (llama.cpp), json (response_format) or tools (native tool "
                     "calling, interec only); default grammar for the local backend, json for "
                     "openai")


def cmd_chat_eval(args: argparse.Namespace) -> int:
    import torch

    from ..errors import ConfigError, LlmrecError

    try:
        from ..chat import STRATEGIES, ChatWorld, EntityMemory, TreePolicy, evaluate
    except ImportError as e:
        raise LlmrecError(f"chat-eval needs the chat extra ({e.name} is missing): "
                          "pip install 'llmrec[chat]'") from None

    torch.set_num_threads(args.threads)
    world = ChatWorld.from_run(args.run_dir, kg=args.kg)
    if args.strategy in LLM_STRATEGIES:
        strategy = _llm_strategy(args, world)
    else:
        if args.backend != "local" or args.base_url or args.model or args.constrain \
                or args.max_tokens or args.llm_threads:
            raise ConfigError("--backend, --base-url, --model, --constrain, --max-tokens, "
                              "--llm-threads go with --strategy interec, macrs or toolrec")
        strategy = STRATEGIES[args.strategy]()
    if args.confidence is not None:
        if not isinstance(strategy, TreePolicy) or args.confidence > 1:
            raise ConfigError("--confidence goes with --strategy tree and is at most 1")
        strategy.confidence = args.confidence
    if args.session != "s1" and not args.memory:
        raise ConfigError("--session goes with --memory")
    memory = EntityMemory(args.memory) if args.memory else None
    try:
        m = evaluate(world, strategy, args.users, max_turns=args.turns, k=args.k, out=args.out,
                     seed=args.seed, max_values=args.max_values, memory=memory,
                     session=args.session, progress=not args.quiet)
    finally:
        if memory is not None:
            memory.close()
    if args.json:
        print_json(m)
        return 0
    hits = " ".join(f"@{t} {v:.3f}" for t, v in m["hit"].items())
    calls = ", ".join(f"{t} {c:.2f}" for t, c in m["tool_calls_per_dialogue"].items())
    said = f", user names <= {m['max_values']} genres" if m["max_values"] else ""
    if m["memory"]:
        said += f", memory session {m['memory']['session']!r}"
    print(f"{m['strategy']} on {m['users']} users, {m['max_turns']} turns, k={m['k']}, "
          f"seed {m['seed']}{said}")
    print(f"  hit within turns : {hits}")
    print(f"  average turns    : {m['average_turns']:.2f} (miss = {m['max_turns'] + 1})")
    print(f"  leaks            : {m['leaks']}")
    print(f"  tool calls/dialog: {calls} ({m['failed_tool_calls']} failed in all)")
    llm, ts = m["llm_per_dialogue"], m["turn_seconds"]
    if llm["llm_calls"]:
        print(f"  LLM per dialogue : {llm['llm_calls']:.2f} calls, "
              f"{llm['prompt_tokens']:.0f} prompt + {llm['completion_tokens']:.0f} completion "
              f"tokens, {llm['repairs']:.2f} repairs, {llm['fallbacks']:.2f} fallbacks "
              f"({m['failed_llm_calls']} failed calls in all)")
    if ts["turns"]:
        print(f"  turn latency     : median {ts['median']:.3f} s, p90 {ts['p90']:.3f} s "
              f"({ts['turns']} turns)")
    print(f"  time             : {m['episode_seconds']:.1f} s in episodes, "
          f"{m['wall_seconds_this_run']:.1f} s this run ({m['resumed_users']} users resumed)")
    print(f"\nwritten to {args.out}")
    return 0


def _llm_strategy(args: argparse.Namespace, world):  # -> InteRecAgent | MACRS | ToolRec
    """The LLM strategy with its backend (interec: the general memory with ``--memory``)."""
    from ..chat import STRATEGIES, GeneralMemory
    from ..errors import ConfigError
    from ..llm import make_backend

    if args.constrain == "tools" and args.strategy != "interec":
        raise ConfigError(f"--constrain tools goes with --strategy interec, not {args.strategy}")
    if args.max_tokens is not None and args.strategy == "macrs":
        raise ConfigError("--max-tokens goes with interec or toolrec (macrs budgets each agent)")

    if args.backend == "openai":
        if not args.base_url or not args.model:
            raise ConfigError("--backend openai needs --base-url and --model")
        backend = make_backend("openai", base_url=args.base_url, model=args.model,
                               api_key_env=args.api_key_env)
    else:
        if args.base_url or args.model or args.api_key_env:
            raise ConfigError("--base-url, --model, --api-key-env go with --backend openai")
        backend = make_backend("local", threads=args.llm_threads)
    cls = STRATEGIES[args.strategy]
    if args.strategy == "macrs":
        return cls(backend, constrain=args.constrain)
    # `llmrec chat --memory` (no FILE) gives "": still a memory
    extra = {"general": GeneralMemory.from_train(world.split.train)
             if args.memory is not None else None} if args.strategy == "interec" else {}
    return cls(backend, max_tokens=args.max_tokens or 128, constrain=args.constrain, **extra)
