"""``llmrec encode --dataset D --source metadata|knowledge``: texts -> cached vectors."""

from __future__ import annotations

import argparse

import numpy as np

from .._table import format_table
from ._common import add_data_options, load_options, positive_int, print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encode", help="encode item metadata or LLM knowledge texts into the "
                       "vector cache ($LLMREC_HOME/vectors)")
    p.add_argument("--dataset", default="ml-100k", help="registered name or a path")
    p.add_argument("--source", choices=["metadata", "knowledge"], default="metadata",
                   help="metadata: 'Title (year). Genres: ...' per item; knowledge: the LLM "
                   "knowledge store's texts")
    p.add_argument("--kind", choices=["item", "user"], default="item",
                   help="knowledge source only: item or user knowledge")
    p.add_argument("--user-mode", default="individual",
                   help="knowledge source, users: individual, collective or incremental")
    p.add_argument("--encoder", choices=["minilm", "hashing"], default="minilm")
    p.add_argument("--batch-size", type=positive_int, default=256, help="texts per cached shard")
    p.add_argument("--limit", type=positive_int, help="encode only the first N texts")
    p.add_argument("--output", help="also write the vectors here as .npz (keys, vectors)")
    p.add_argument("--json", action="store_true", help="print statistics as JSON")
    add_data_options(p)
    p.set_defaults(func=cmd_encode)


def cmd_encode(args: argparse.Namespace) -> int:
    from .._io import atomic_write_bytes
    from ..data import load_dataset
    from ..encode import ENCODERS, encode_texts, item_metadata_texts, knowledge_texts

    if args.source == "metadata":
        keys, texts = item_metadata_texts(load_dataset(args.dataset, **load_options(args)))
    else:
        keys, texts = knowledge_texts(args.dataset, args.kind, args.user_mode)
    if args.limit is not None:
        keys, texts = keys[:args.limit], texts[:args.limit]
    vectors = encode_texts(keys, texts, ENCODERS[args.encoder](), batch_size=args.batch_size,
                           progress=not args.quiet)
    stats = {**vectors.stats, "dim": vectors.dim, "encoder": vectors.encoder}
    if args.output:
        import io
        buf = io.BytesIO()
        np.savez(buf, keys=vectors.keys.astype(str), vectors=vectors.matrix.astype(np.float16))
        atomic_write_bytes(args.output, buf.getvalue())
        stats["output"] = args.output
    if args.json:
        print_json(stats)
        return 0
    rate = f"{stats['texts_per_s']:.0f} texts/s" if stats["texts_per_s"] else "-"
    print(format_table(["", "value"], [
        ["texts", f"{stats['texts']:,}"], ["cache hits", f"{stats['cache_hits']:,}"],
        ["encoded now", f"{stats['encoded']:,} ({rate})"], ["dimension", str(stats["dim"])],
        ["encoder", str(stats["encoder"].get("model", stats["encoder"].get("kind")))],
        ["cache", str(stats["cache_dir"])]]))
    if args.output:
        print(f"\nvectors: {args.output}")
    return 0
