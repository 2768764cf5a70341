"""Text-encoder throughput on ML-100K item metadata: cold (model loads, every text encoded),
then warm (every vector from the cache; the model is never loaded).

Prints, per encoder: texts, model-load + encode seconds, texts/s, and the cache-hit seconds.
A private temporary ``LLMREC_HOME`` is used, so the numbers are always for an empty cache.
The load average is printed: other jobs on the machine make times noisy.

    python benchmarks/encode_speed.py
    python benchmarks/encode_speed.py --encoders minilm,hashing --limit 500 --threads 1
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from llmrec._table import format_table
from llmrec.data import load_dataset
from llmrec.encode import ENCODERS, encode_texts, item_metadata_texts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--encoders", default="minilm,hashing")
    p.add_argument("--limit", type=int, help="only the first N items")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    keys, texts = item_metadata_texts(load_dataset("ml-100k"))
    keys, texts = keys[:args.limit], texts[:args.limit]
    rows = []
    with tempfile.TemporaryDirectory() as home:
        os.environ["LLMREC_HOME"] = home
        for name in args.encoders.split(","):
            t0 = time.perf_counter()
            cold = encode_texts(keys, texts, ENCODERS[name](), progress=False)
            cold_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            warm = encode_texts(keys, texts, ENCODERS[name](), progress=False)
            warm_s = time.perf_counter() - t0
            assert warm.stats["encoded"] == 0
            rows.append([name, len(texts), cold.dim, round(cold_s, 1),
                         cold.stats["texts_per_s"] or 0.0, round(warm_s, 3)])
    print(format_table(["encoder", "texts", "dim", "cold s (load+encode)", "texts/s",
                        "cache-hit s"], rows, digits=1))
    print(f"\nload average {os.getloadavg()[0]:.1f}, torch threads {args.threads}")


if __name__ == "__main__":
    main()
