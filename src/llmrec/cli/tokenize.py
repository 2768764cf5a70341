"""``llmrec tokenize --dataset D --method M --input text|...|knowledge``: semantic IDs.

Writes the item <-> code table (``codes.npy`` row = item index, ``items.tsv`` raw item id and
codes, ``meta.json`` with method, config and diagnostics; no pickle) and prints the
diagnostics: collision rate before de-duplication, per-level utilisation and entropy,
reconstruction error.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..tokenize.dataset import INPUTS, METHODS
from ._common import (add_data_options, int_range, load_options, non_negative_int, positive_int,
                      print_json, seed_int)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tokenize", help="semantic IDs of a data set's items (RQ-KMeans, "
                       "RQ-VAE, PQ, DAS, indexing baselines) with diagnostics")
    p.add_argument("--dataset", default="ml-100k", help="registered name or a path")
    p.add_argument("--method", default="rqkmeans", choices=METHODS)
    p.add_argument("--input", default="text", choices=INPUTS,
                   help="quantizers only: text vectors, a trained SASRec's item vectors "
                   "(--run), or both fused; das: text or knowledge")
    p.add_argument("--run", help="a finished `llmrec train --model sasrec` run folder "
                   "(collaborative and fusion inputs; das: CF vectors to align with, else "
                   "PMI-SVD of the training co-occurrence)")
    p.add_argument("--levels", type=positive_int, default=3)
    p.add_argument("--codebook-size", type=int_range(2), default=32)
    p.add_argument("--collisions", choices=["level", "balanced", "sinkhorn", "none"],
                   help="default: level (TIGER) for quantizers and collaborative, none for "
                   "random and sequential")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--epochs", type=positive_int, help="rqvae and das: training epochs")
    p.add_argument("--encoder", choices=["minilm", "hashing"], default="minilm")
    p.add_argument("--user-core", type=non_negative_int, default=5)
    p.add_argument("--item-core", type=non_negative_int, default=5)
    p.add_argument("--output", help="folder (default: $LLMREC_HOME/ids/DATASET-METHOD-INPUT-"
                   "HASH)")
    p.add_argument("--json", action="store_true", help="print diagnostics as JSON")
    add_data_options(p)
    p.set_defaults(func=cmd_tokenize)


def cmd_tokenize(args: argparse.Namespace) -> int:
    from .._io import atomic_write_text, llmrec_home
    from ..data import Preprocessing, leave_one_out, load_dataset
    from ..errors import ConfigError
    from ..tokenize import format_diagnostics
    from ..tokenize.dataset import QUANTIZERS, canonical_method, tokenize_items

    method = canonical_method(args.method)
    config = {"levels": args.levels, "codebook_size": args.codebook_size, "seed": args.seed}
    if args.epochs is not None:
        if method not in ("rq-vae", "das"):
            raise ConfigError("--epochs applies to --method rqvae and das only")
        config["epochs"] = args.epochs
    needs_run = method in QUANTIZERS and args.input in ("collaborative", "fusion")
    collaborative = None
    if needs_run or (method == "das" and args.run):
        if not args.run:
            raise ConfigError(f"--input {args.input} needs --run, a trained SASRec run folder")
        from ..runs import open_run

        run = open_run(args.run)
        if not hasattr(run.model, "item_weights"):
            raise ConfigError(f"{args.run}: a {run.model.name} run has no item vectors; "
                              "train SASRec (or another sequential model)")
        import torch

        with torch.no_grad():
            collaborative = run.model.item_weights().float().numpy()
        ds, train = run.dataset, run.split.train
    else:
        if args.run:
            raise ConfigError("--run is only used with a quantizer and --input collaborative "
                              "or fusion, or with --method das")
        ds = load_dataset(args.dataset, preprocessing=Preprocessing(
            user_core=args.user_core, item_core=args.item_core), **load_options(args))
        train = leave_one_out(ds.interactions).train
    t0 = time.perf_counter()
    ids = tokenize_items(ds, train, method,
                         args.input if method in (*QUANTIZERS, "das") else "text",
                         collaborative=collaborative, collisions=args.collisions,
                         encoder=args.encoder, progress=not args.quiet, **config)
    seconds = time.perf_counter() - t0
    source = (args.input if method in QUANTIZERS else
              f"{args.input}+interactions" if method == "das" else "interactions")
    name = Path(ds.name).name.replace(".", "_")
    folder = (Path(args.output) if args.output else
              llmrec_home() / "ids" / f"{name}-{args.method}-{source}-{ids.key[:12]}")
    ids.save(folder)
    rows = [f"{ds.items.id(i)}\t{' '.join(map(str, ids.codes_of(i)))}"
            for i in range(ids.n_items)]
    atomic_write_text(folder / "items.tsv", "item_id\tcodes\n" + "\n".join(rows) + "\n")
    report = {"dataset": ds.name, "method": method, "input": source, "seconds": seconds,
              "folder": str(folder), **ids.diagnostics}
    if args.json:
        print_json(report)
        return 0
    print(f"{method} on {ds.name} ({source}): {ids.n_items} items -> "
          f"{ids.n_levels} levels {ids.codebook_sizes}, unique, in {seconds:.1f} s")
    print(format_diagnostics(ids.diagnostics))
    print(f"\nids: {folder}  (use with: llmrec train --model tiger --set "
          f"model.ids=\"{folder}\")")
    return 0
