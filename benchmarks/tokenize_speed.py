"""Speed and code quality of every tokenizer on random data of MovieLens sizes.

For 1,682 (ML-100K) and 3,706 (ML-1M) items: random 384-d float32 vectors for the quantizers,
a random interaction log for sequential and collaborative indexing (943 / 6,040 users with
60 distinct items each), 3 levels x 256 codes, then TIGER's disambiguation level. Prints one
row per (items, method): wall seconds of fit + collision handling, the final ID length, the
collision rate before de-duplication, the largest collision group (the size of the extra
level), codebook utilisation and entropy (bits, max 8) of levels 0-2, and the reconstruction
error relative to the data variance where the method decodes.

Random vectors have no structure, so the quality columns only show how each method spreads
items over codes; on real embeddings collisions and errors are lower. The load average is
printed: other jobs on the machine make times noisy. Torch and FAISS use ``--threads``
(default 1: on a shared two-core machine two threads are often slower).

    python benchmarks/tokenize_speed.py
    python benchmarks/tokenize_speed.py --items 1682 --methods rq-kmeans,pq --threads 2
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np
import torch

from llmrec._table import format_table
from llmrec.tokenize import TOKENIZERS

USERS = {1682: 943, 3706: 6040}


def inputs(method: str, n_items: int, dim: int, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    if method in ("rq-kmeans", "rq-vae", "pq"):
        return rng.standard_normal((n_items, dim)).astype(np.float32)
    if method == "random":
        return n_items
    n_users = USERS.get(n_items, max(1, n_items // 2))
    users = np.repeat(np.arange(n_users), 60)
    items = np.concatenate([rng.choice(n_items, 60, replace=False) for _ in range(n_users)])
    if method == "sequential":
        return items, n_items                    # user after user, as Hua et al. do
    return users, items, n_items


def run(method: str, n_items: int, args: argparse.Namespace) -> list[Any]:
    data = inputs(method, n_items, args.dim, args.seed)
    start = time.perf_counter()
    tok = TOKENIZERS[method](levels=args.levels, codebook_size=args.codebook_size,
                             seed=args.seed).fit(data)
    ids = tok.semantic_ids("level")
    seconds = time.perf_counter() - start
    d = ids.diagnostics
    levels = d["levels"][:args.levels]
    rec = d["reconstruction_error"]
    return [n_items, method, seconds, ids.n_levels, d["collision_rate"],
            ids.codebook_sizes[-1],
            " ".join(f"{lv['utilisation']:.2f}" for lv in levels),
            " ".join(f"{lv['entropy_bits']:.2f}" for lv in levels),
            "-" if rec is None else round(rec, 3), f"{os.getloadavg()[0]:.1f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", default="1682,3706")
    parser.add_argument("--methods", default=",".join(TOKENIZERS))
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--codebook-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        import faiss
        faiss.omp_set_num_threads(args.threads)
    except ImportError:
        pass                                    # the FAISS methods will say what is missing
    rows = [run(m, int(n), args) for n in args.items.split(",") for m in args.methods.split(",")]
    print(format_table(["items", "method", "seconds", "length", "collisions", "extra level",
                        "utilisation l0-2", "entropy bits l0-2", "recon err", "load"],
                       rows, digits=3))


if __name__ == "__main__":
    main()
