"""``encode_texts``: any (key, text) source -> a :class:`Vectors` table, through the cache.

Text sources (item metadata, LLM knowledge, user profiles) produce parallel lists of keys (their
own ids, e.g. raw item ids) and texts; :func:`encode_texts` returns their vectors in that order,
encoding only texts the cache has never seen (each distinct text once).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ._base import Encoder
from ._cache import VectorCache, to_stored

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Vectors:
    """Vectors of keyed texts: row ``i`` of ``matrix`` (n, d) float32 belongs to ``keys[i]``."""

    keys: np.ndarray
    matrix: np.ndarray
    encoder: dict[str, Any]
    stats: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def align(self, ids: Sequence[object]) -> tuple[np.ndarray, np.ndarray]:
        """Rows for ``ids`` in that order: ((len(ids), d) float32 with zero rows where a key is
        missing, (len(ids),) bool mask of found keys)."""
        pos = {k: i for i, k in enumerate(self.keys.tolist())}
        idx = np.fromiter((pos.get(str(x), -1) for x in ids), dtype=np.int64)
        out = np.zeros((len(idx), self.dim), dtype=np.float32)                # (len(ids), d)
        found = idx >= 0
        out[found] = self.matrix[idx[found]]
        return out, found


def default_encoder() -> Encoder:
    from .sentence import SentenceTransformerEncoder

    return SentenceTransformerEncoder()


def encode_texts(keys: Sequence[object], texts: Sequence[str], encoder: Encoder | None = None,
                 *, cache: VectorCache | bool = True, batch_size: int = 256,
                 progress: bool = True) -> Vectors:
    """Vectors of ``texts`` (labelled by ``keys``), from the cache where possible.

    ``encoder`` defaults to the packaged all-MiniLM-L6-v2. ``cache=False`` encodes everything
    and stores nothing; a :class:`VectorCache` selects another cache folder. Texts are encoded
    in batches of ``batch_size``, each stored as it finishes, so an interrupted run resumes.
    """
    keys = np.asarray([str(k) for k in keys])
    texts = [str(t) for t in texts]
    if len(keys) != len(texts):
        raise ValueError(f"{len(keys)} keys but {len(texts)} texts")
    if len(set(keys.tolist())) != len(keys):
        raise ValueError("keys must be unique")
    encoder = encoder or default_encoder()
    t0 = time.perf_counter()
    store = (cache if isinstance(cache, VectorCache)
             else VectorCache(encoder.identity()) if cache else None)
    distinct = list(dict.fromkeys(texts))                   # each text encoded once
    where = {t: i for i, t in enumerate(distinct)}
    if store is not None:
        digests = store.keys(distinct)
        found, hit = store.get(digests)
    else:
        digests, found, hit = [], None, np.zeros(len(distinct), dtype=bool)
    dim = encoder.dim if found is None else found.shape[1]
    vectors = found if found is not None else np.zeros((len(distinct), dim), np.float32)
    todo = np.flatnonzero(~hit)
    encode_seconds = 0.0
    with tqdm(total=len(todo), desc="encode", unit="text", disable=not progress or not len(todo),
              leave=False, dynamic_ncols=True) as bar:
        for start in range(0, len(todo), batch_size):
            rows = todo[start:start + batch_size]
            t1 = time.perf_counter()
            half, fresh = to_stored(encoder.encode([distinct[i] for i in rows]))  # (b, d)
            batch_seconds = time.perf_counter() - t1
            encode_seconds += batch_seconds
            vectors[rows] = fresh
            if store is not None:
                store.put([digests[i] for i in rows], half, batch_seconds)
            bar.update(len(rows))
    made_in = store.seconds(digests) if store is not None else None
    matrix = vectors[np.fromiter((where[t] for t in texts), dtype=np.int64, count=len(texts))]
    stats = {"texts": len(texts), "distinct": len(distinct), "cache_hits": int(hit.sum()),
             "encoded": int(len(todo)), "encode_seconds": round(encode_seconds, 3),
             "texts_per_s": round(len(todo) / encode_seconds, 1) if encode_seconds else None,
             "seconds": round(time.perf_counter() - t0, 3),
             # what encoding every vector took when it was made (cached ones included)
             "encode_seconds_total": None if made_in is None else round(made_in, 3),
             "cache_dir": str(store.folder) if store is not None else None}
    log.info("encoded %d texts (%d cache hits, %d new)", len(texts), stats["cache_hits"],
             stats["encoded"], extra={"event": "encode", **stats})
    return Vectors(keys, matrix, encoder.identity(), stats)
