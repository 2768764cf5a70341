"""``llmrec mcp RUN_DIR [--user ID] [--kg]``: the chat tools as an MCP server on stdio."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mcp", help="serve the chat tools (search, retrieve, rank, look up, "
                       "exclude) to an MCP client over stdio")
    p.add_argument("run_dir", help="a finished run folder (llmrec train) with a sequential model")
    p.add_argument("--user", help="raw user id: retrieval starts from that user's known "
                   "history (default: an anonymous conversation)")
    p.add_argument("--kg", action="store_true", help="director/actor attributes from the data "
                   "set's knowledge graph (.kg/.link)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.set_defaults(func=cmd_mcp)


def cmd_mcp(args: argparse.Namespace) -> int:
    import torch

    from ..chat import ChatWorld, build_server

    torch.set_num_threads(max(1, args.threads))
    server = build_server(ChatWorld.from_run(args.run_dir, kg=args.kg), args.user)
    server.run("stdio")           # stdout carries the protocol; logs go to stderr
    return 0
