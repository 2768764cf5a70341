"""Per-user metrics of a run, on disk: what paired significance tests over users need.

Layout inside a run folder (no pickle; Parquet written by polars, JSON)::

    per_user/
      meta.json           {"format": 1, "split_hash": "...", "data_fingerprint": "...",
                           "mask": "history", "ks": [5, 10, 20],
                           "parts": {"test": {"cases": 943, "mask": "history"}, ...}}
      valid.parquet       one row per evaluated user: user_id (the raw id, string), then one
      test.parquet        float64 column per metric (ndcg@10, recall@10, ..., novelty@10,
      test_unmasked.parquet  arp@10, ild@10, ild_vec@10); NaN where a metric is undefined

Rows follow the evaluation order (dense user index); align two runs by ``user_id``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .._io import atomic_write_bytes, corrupt_file, read_json_file, write_json
from ..errors import LlmrecError

FOLDER = "per_user"
FORMAT = 1


class MissingPerUserError(LlmrecError):
    """A run folder without (this part of) per-user metrics."""


def write_per_user(folder: str | Path, parts: Mapping[str, tuple[np.ndarray, Mapping[str, Any]]],
                   meta: Mapping[str, Any]) -> Path:
    """Write ``parts`` (name -> (raw user ids, {metric: (U,) array})) and ``meta`` under
    ``folder`` (the ``per_user/`` directory); meta.json is written last."""
    folder = Path(folder)
    described = {}
    for name, (user_ids, metrics) in parts.items():
        columns: dict[str, Any] = {"user_id": pl.Series("user_id", [str(u) for u in user_ids],
                                                        dtype=pl.String)}
        for metric, values in metrics.items():
            values = np.asarray(values, dtype=np.float64)
            if values.shape != (len(user_ids),):
                raise ValueError(f"{name}/{metric}: {values.shape} values for "
                                 f"{len(user_ids)} users")
            columns[metric] = values
        buf = io.BytesIO()
        pl.DataFrame(columns).write_parquet(buf)
        atomic_write_bytes(folder / f"{name}.parquet", buf.getvalue())
        described[name] = {"cases": len(user_ids)}
    old = {}
    if (folder / "meta.json").exists():
        old = read_json_file(folder / "meta.json", _fix(folder)).get("parts", {})
    write_json(folder / "meta.json", {"format": FORMAT, **meta,
                                      "parts": {**old, **{k: {**v, "mask": meta.get("mask")}
                                                          for k, v in described.items()}}})
    return folder


def read_per_user(run_dir: str | Path, part: str = "test") -> tuple[dict[str, Any], pl.DataFrame]:
    """(meta, frame) of one part of a run's per-user metrics; a one-line error if missing."""
    run_dir = Path(run_dir)
    folder = run_dir / FOLDER
    if not (folder / "meta.json").exists():
        raise MissingPerUserError(f"{run_dir}: no per-user metrics; re-run `llmrec evaluate "
                                  f"{run_dir}` to write them")
    meta = read_json_file(folder / "meta.json", _fix(folder))
    path = folder / f"{part}.parquet"
    if part not in meta.get("parts", {}) or not path.exists():
        raise MissingPerUserError(f"{run_dir}: no per-user metrics for part {part!r} (has "
                                  f"{', '.join(sorted(meta.get('parts', {}))) or 'none'})")
    try:
        return meta, pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as e:
        raise corrupt_file(path, e, _fix(folder)) from None


def _fix(folder: Path) -> str:
    """The way out for a damaged per-user file: write them again."""
    return f"delete {folder} and run `llmrec evaluate {folder.parent}` to write it again"
