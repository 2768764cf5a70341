"""``llmrec chat RUN_DIR [--user 196] [--strategy tree] [--memory [FILE]]``: talk with the
conversational recommender in the terminal.

Reads one message per line from stdin (a terminal or a pipe), prints the agent's replies and its
recommendations as a table. ``/quit``, end of input (Ctrl-D) and Ctrl-C end the conversation.
``--user``: a test user of the run's split (the agent knows their history before the test
item). ``--memory``: that user's entity memory persists across sessions in a SQLite file
(default ``$LLMREC_HOME/chat/memory.sqlite``)."""

from __future__ import annotations

import argparse
import sys

from ._common import int_range, positive_int
from .chat_eval import add_llm_options

HELP = ("Say what you would like (e.g. \"a comedy from the 90s\"); \"no\" after a list asks "
        "for others. Commands: /help, /quit.")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chat", help="talk with the conversational recommender in the terminal")
    p.add_argument("run_dir", help="a finished run folder (llmrec train) with a sequential model")
    p.add_argument("--user", help="raw id of a test user: the agent knows their history")
    p.add_argument("--strategy", choices=("tree", "topk", "interec"), default="tree",
                   help="tree: asks the best-splitting attribute (no LLM); interec: an LLM "
                   "plans tool calls")
    p.add_argument("--k", type=int_range(1, 50), default=5, help="items per recommendation")
    p.add_argument("--turns", type=positive_int, default=20,
                   help="most agent turns in one conversation (default 20)")
    p.add_argument("--memory", nargs="?", const="", default=None, metavar="FILE",
                   help="keep the user's entity memory across sessions in FILE (SQLite; "
                   "default $LLMREC_HOME/chat/memory.sqlite); needs --user")
    p.add_argument("--kg", action="store_true", help="director/actor attributes from the data "
                   "set's knowledge graph (.kg/.link)")
    p.add_argument("--threads", type=int_range(1, 64), default=1, help="torch threads")
    add_llm_options(p, "interec: the LLM", max_tokens=128,
                    max_tokens_help="tokens per plan (default 128)")
    p.set_defaults(func=cmd_chat)


def table(items: list[dict]) -> str:
    """The recommended items as a small text table."""
    rows = [("#", "item", "title", "year", "genres")]
    rows += [(str(r), it["item_id"], it["title"][:48], str(it["year"] or "-"),
              ", ".join(it["genres"])) for r, it in enumerate(items, 1)]
    widths = [max(len(row[c]) for row in rows) for c in range(4)]
    return "\n".join("  " + "  ".join(v.rjust(w) if c == 0 else v.ljust(w)
                                      for c, (v, w) in enumerate(zip(row[:4], widths)))
                     + "  " + row[4] for row in rows)


def show(turn, out=None) -> None:
    out = out or sys.stdout                # looked up now: a caller may have replaced it
    said = "; ".join(f"{a} = {', '.join(v) or 'any'}" for a, v in turn.understood.items())
    head = f"agent> {f'(understood: {said}) ' if said else ''}{turn.text}"
    print(head, file=out)
    if turn.items:
        print(table(turn.items), file=out)
    out.flush()


def cmd_chat(args: argparse.Namespace) -> int:
    import torch

    from .._io import llmrec_home
    from ..errors import ConfigError, LlmrecError

    try:
        from ..chat import STRATEGIES, ChatSession, ChatWorld, EntityMemory
    except ImportError as e:
        raise LlmrecError(f"chat needs the chat extra ({e.name} is missing): "
                          "pip install 'llmrec[chat]'") from None
    if args.memory is not None and not args.user:
        raise ConfigError("--memory keeps a user's memory: give --user too")
    if args.strategy != "interec" and (args.backend != "local" or args.base_url or args.model
                                       or args.constrain):
        raise ConfigError("--backend, --base-url, --model, --constrain go with "
                          "--strategy interec")
    torch.set_num_threads(args.threads)
    world = ChatWorld.from_run(args.run_dir, kg=args.kg)
    if args.strategy == "interec":
        from .chat_eval import _llm_strategy

        strategy = _llm_strategy(args, world)
    else:
        strategy = STRATEGIES[args.strategy]()
    memory = None
    if args.memory is not None:
        memory = EntityMemory(args.memory or llmrec_home() / "chat" / "memory.sqlite")
    try:
        session = ChatSession(world, strategy, user=args.user, k=args.k,
                              max_turns=args.turns, memory=memory)
        return _loop(session)
    finally:
        if memory is not None:
            memory.close()


def _loop(session) -> int:
    """Talk until /quit, end of input or Ctrl-C (anywhere in the loop, also while the agent
    is thinking or printing): each ends the conversation with status 0."""
    try:
        return _talk(session)
    except KeyboardInterrupt:
        print("\nagent> Bye!")
        return 0


def _talk(session) -> int:
    interactive = sys.stdin.isatty()
    show(session.start())
    if interactive:
        print(HELP)
    while True:
        line: str | None
        if interactive:
            try:
                line = input("you> ")
            except EOFError:
                line = None
                print()
        else:
            line = sys.stdin.readline() or None
            if line is not None:
                print(f"you> {line.rstrip()}")
        if line is None:                               # end of input
            print("agent> Bye!")
            return 0
        text = line.strip()
        if not text:
            continue
        if text in ("/quit", "/exit", "/q"):
            print("agent> Bye!")
            return 0
        if text == "/help":
            print(HELP)
            continue
        turn = session.say(text)
        show(turn)
        if turn.done:
            return 0
