"""How long ``llmrec.data.load_dataset`` takes on a large CSV and a large Amazon 2023 file.

Writes two synthetic files into a temporary folder (deleted afterwards) and loads each once:

1. ``ratings.csv``: 1,000,000 rows ``userId,movieId,rating,timestamp`` (epoch seconds);
2. ``Books.jsonl.gz``: 1,000,000 Amazon-Reviews-2023 records with every field of the real
   files (rating, title, text of ~250 characters, images, asin, parent_asin, user_id,
   timestamp in ms, helpful_vote, verified_purchase), gzip-compressed.

"load s" is one ``load_dataset(path)`` call: the reader (parse, checks) plus
:func:`build_dataset` (sort, de-duplication, vocabularies); "read s" is the reader alone
(a separate ``read_path`` call), to show where the time goes.

    python benchmarks/load_speed.py            # 1,000,000 rows each
    python benchmarks/load_speed.py --rows 200000
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from llmrec.data import load_dataset, read_path

WORDS = ("great sturdy cheap broke gift kids love works fine small large would buy again "
         "arrived late exactly described quality price color battery easy hard").split()


def write_csv(path: Path, n: int, rng: np.random.Generator) -> None:
    pl.DataFrame({
        "userId": rng.zipf(1.3, n) % 100_000 + 1,
        "movieId": rng.zipf(1.2, n) % 50_000 + 1,
        "rating": rng.integers(1, 11, n) / 2,
        "timestamp": rng.integers(1_000_000_000, 1_700_000_000, n),
    }).write_csv(path)


def write_amazon_2023(path: Path, n: int, rng: np.random.Generator) -> None:
    texts = [" ".join(rng.choice(WORDS, 45)) for _ in range(1000)]
    users = np.array([f"A{i:027d}" for i in range(100_000)])
    parents = np.array([f"B0{i:08d}" for i in range(50_000)])
    parent = parents[rng.zipf(1.2, n) % len(parents)]
    df = pl.DataFrame({
        "rating": rng.integers(1, 6, n).astype(float),
        "title": rng.choice(["Five Stars", "Nice", "Meh", "Love it"], n),
        "text": np.array(texts)[rng.integers(0, len(texts), n)],
        "images": [[]] * n,
        "asin": parent, "parent_asin": parent,
        "user_id": users[rng.zipf(1.3, n) % len(users)],
        "timestamp": rng.integers(1_500_000_000_000, 1_700_000_000_000, n),
        "helpful_vote": rng.integers(0, 10, n),
        "verified_purchase": rng.random(n) < 0.9,
    }, schema_overrides={"images": pl.List(pl.String)})
    with gzip.open(path, "wb", compresslevel=1) as f:
        df.write_ndjson(f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        files = {"csv": Path(tmp) / "ratings.csv", "amazon 2023": Path(tmp) / "Books.jsonl.gz"}
        write_csv(files["csv"], args.rows, rng)
        write_amazon_2023(files["amazon 2023"], args.rows, rng)
        print(f"{'file':<14}{'rows':>11}{'MiB on disk':>13}{'users':>9}{'items':>9}"
              f"{'read s':>9}{'load s':>9}")
        for name, path in files.items():
            start = time.perf_counter()
            read_path(path)
            read_seconds = time.perf_counter() - start
            start = time.perf_counter()
            ds = load_dataset(path)
            seconds = time.perf_counter() - start
            print(f"{name:<14}{ds.meta['raw_interactions']:>11,}"
                  f"{path.stat().st_size / 2**20:>13.1f}{ds.n_users:>9,}{ds.n_items:>9,}"
                  f"{read_seconds:>9.2f}{seconds:>9.2f}")


if __name__ == "__main__":
    main()
