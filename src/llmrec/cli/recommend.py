"""``llmrec recommend RUN_DIR --user 196 -n 10``: top items for a user, with titles."""

from __future__ import annotations

import argparse

from .._table import format_table
from ..errors import ConfigError
from ..runs import open_run, recommend_user
from ._common import positive_int, print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recommend", help="recommend items to a user of a trained run")
    p.add_argument("run_dir")
    p.add_argument("--user", required=True, help="raw user id as in the data")
    p.add_argument("-n", type=positive_int, default=10, help="how many items (default 10)")
    p.add_argument("--include-seen", action="store_true",
                   help="allow items the user already interacted with")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_recommend)


def cmd_recommend(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise ConfigError(f"-n must be >= 1, not {args.n}")
    run = open_run(args.run_dir)
    recs = recommend_user(run, args.user, args.n, exclude_seen=not args.include_seen)
    if args.json:
        print_json(recs)
        return 0
    history = run.dataset.history(args.user)
    titles = run.dataset.item_titles()
    recent = ", ".join(titles[i] for i in history[-3:][::-1])
    print(f"user {args.user}: {len(history)} interactions; most recent: {recent}")
    print(format_table(["rank", "item_id", "title", "score"],
                       [[r["rank"], r["item_id"], r["title"], r["score"]] for r in recs]))
    return 0
