"""The ``llmrec`` command: a thin layer of small subcommands over the library.

A user's mistake (an :class:`~llmrec.errors.LlmrecError`) is printed as one line on stderr with
exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..errors import LlmrecError
from . import data, demo, evaluate, knowledge, recommend, train
from . import bench, chat, chat_eval, compare, encode, lm, mcp, ranker, serve, tokenize, tune
from . import tune_serving

COMMANDS = {"data": data, "train": train, "evaluate": evaluate, "compare": compare,
            "recommend": recommend,
            "demo": demo, "knowledge": knowledge,
            "encode": encode, "tokenize": tokenize, "lm": lm,
            "bench": bench, "serve": serve, "ranker": ranker, "tune": tune,
            "tune-serving": tune_serving, "chat": chat, "chat-eval": chat_eval, "mcp": mcp}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:          # one line, exit 2 (argparse's own status)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="llmrec", description="LLM-enhanced recommendation toolkit")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and results")
    parser.add_argument("--version", action="version", version=f"llmrec {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, module in COMMANDS.items():
        module.add_parser(sub)
    return parser


def _version() -> str:
    from .. import __version__
    return __version__


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(logging.WARNING if quiet else logging.INFO)
    logger = logging.getLogger("llmrec")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)           # run folders keep INFO records in log.jsonl
    logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:         # a usage error (2, one line already printed) or --help
        return e.code if isinstance(e.code, int) else 0
    _setup_logging(args.quiet)
    try:
        return args.func(args) or 0
    except LlmrecError as e:
        print(f"llmrec: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("llmrec: interrupted (finished epochs are kept; run again to resume)",
              file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
