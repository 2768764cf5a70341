"""A content-addressed vector cache: one folder per encoder, float16 shards, atomic writes.

Layout under ``$LLMREC_HOME/vectors/``::

    <encoder-hash[:16]>/            one folder per encoder identity (model + weights hash)
        encoder.json                the identity, for people reading the folder
        shard-<hash[:16]>.npz       keys (n, 32) uint8 = sha256(identity + "\\n" + text)
                                    vectors (n, d) float16
                                    seconds () float64: what encoding the batch took

Each batch of newly encoded texts becomes one shard, written atomically (temp file, then
rename), so an interrupted run keeps every finished batch and the next run resumes there. Shards
are read with ``allow_pickle=False``. Vectors round-trip through float16, and every vector this
package hands out -- fresh or cached -- is the float16 value re-normalised, so a cache hit
returns exactly what the miss returned.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_bytes, canonical_json, llmrec_home, write_json
from ..errors import DataError
from ._base import normalize


def to_stored(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(what the cache keeps: float16, what it returns: that re-normalised as float32)."""
    half = np.asarray(vectors, dtype=np.float16)
    return half, normalize(half.astype(np.float32))


class VectorCache:
    """Vectors of one encoder, keyed by SHA-256 of (encoder identity, text)."""

    def __init__(self, identity: dict[str, Any], root: str | Path | None = None):
        self.identity = identity
        self._prefix = (canonical_json(identity) + "\n").encode()
        digest = hashlib.sha256(canonical_json(identity).encode()).hexdigest()
        self.folder = Path(root) if root else llmrec_home() / "vectors"
        self.folder = self.folder / digest[:16]
        self._index: dict[bytes, tuple[int, int]] = {}
        self._shards: list[np.ndarray] = []
        self._seconds: list[float] = []          # per shard: encode seconds per vector (nan:
        self._seen: set[str] = set()             # unknown)

    def key(self, text: str) -> bytes:
        """The 32-byte cache key of ``text``."""
        return hashlib.sha256(self._prefix + text.encode("utf-8")).digest()

    def keys(self, texts: list[str]) -> list[bytes]:
        return [self.key(t) for t in texts]

    def _refresh(self) -> None:
        """Index shards written since the last look (also by other processes)."""
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob("shard-*.npz")):
            if path.name in self._seen:
                continue
            try:
                with np.load(path, allow_pickle=False) as z:
                    keys, vectors = z["keys"], z["vectors"]
                    seconds = float(z["seconds"]) if "seconds" in z.files else float("nan")
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
                raise DataError(f"{path}: unreadable vector shard ({e}); delete it") from None
            if keys.ndim != 2 or keys.shape[1] != 32 or len(keys) != len(vectors):
                raise DataError(f"{path}: malformed vector shard; delete it")
            shard = len(self._shards)
            self._shards.append(vectors)
            self._seconds.append(seconds / max(len(keys), 1))
            for row, k in enumerate(keys):
                self._index[k.tobytes()] = (shard, row)
            self._seen.add(path.name)

    def __len__(self) -> int:
        self._refresh()
        return len(self._index)

    def get(self, keys: list[bytes]) -> tuple[np.ndarray | None, np.ndarray]:
        """Cached vectors of ``keys``: ((n, d) float32 with zero rows for misses, or None when
        nothing is cached; (n,) bool mask of hits)."""
        self._refresh()
        hit = np.fromiter((k in self._index for k in keys), dtype=bool, count=len(keys))
        if not hit.any():
            return None, hit
        d = self._shards[0].shape[1]
        out = np.zeros((len(keys), d), dtype=np.float32)                     # (n, d)
        for i in np.flatnonzero(hit):
            shard, row = self._index[keys[i]]
            out[i] = self._shards[shard][row]
        out[hit] = normalize(out[hit])
        return out, hit

    def seconds(self, keys: list[bytes]) -> float | None:
        """What encoding the cached vectors of ``keys`` took when they were made (their
        shards' seconds shared per vector); None if a shard did not record it."""
        self._refresh()
        total = sum(self._seconds[self._index[k][0]] for k in keys if k in self._index)
        return None if np.isnan(total) else float(total)

    def put(self, keys: list[bytes], vectors: np.ndarray, seconds: float = float("nan")
            ) -> Path:
        """Store one batch (encoded in ``seconds``) as a new shard, atomically."""
        if len(keys) != len(vectors):
            raise ValueError("one vector per key is needed")
        key_arr = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32)
        buf = io.BytesIO()
        np.savez(buf, keys=key_arr, vectors=np.asarray(vectors, dtype=np.float16),
                 seconds=np.float64(seconds))
        name = f"shard-{hashlib.sha256(key_arr.tobytes()).hexdigest()[:16]}.npz"
        if not (self.folder / "encoder.json").exists():
            write_json(self.folder / "encoder.json", self.identity)
        atomic_write_bytes(self.folder / name, buf.getvalue())
        return self.folder / name
