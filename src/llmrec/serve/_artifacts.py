"""Everything the service needs, loaded once from a run folder (no pickles anywhere).

``load_artifacts(run_dir)`` opens the run (config, data, safetensors model; see
:func:`llmrec.runs.open_run`) and prepares, in memory:

- item display data: titles, years, genres, popularity (training counts);
- item vectors for the ANN channel and for similar items / diversity, L2-normalised:
  ``item_vectors="text"`` encodes each item's stored LLM knowledge (where the knowledge store
  has it) or its metadata text (``"Title (year). Genres: ..."``) with the configured encoder,
  through the content-addressed vector cache; ``"model"`` takes the sequential model's item
  table (collaborative vectors);
- the ANN search over those vectors: exact (one matrix-vector product) or a FAISS HNSW index
  (``index``; "auto" picks exact up to 10,000 items);
- the sequential model's scores of every known user's stored history (``prestore_users``,
  bounded by ``prestore_max_mb``), so that a known user costs no model forward pass;
- stored item knowledge for explanations (``$LLMREC_HOME/knowledge/<dataset>.sqlite`` and the
  CTR-task stores ``<dataset>-ctr-profile<N>.sqlite``, read,
  never created); with no records, explanations fall back to item metadata and say so;
- an optional CTR ranker: ``RUN_DIR/ctr/`` holding a CTR model saved by
  :meth:`llmrec.ctr.CTRModel.save` (see :mod:`._rank`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, LlmrecError
from ..runs import LoadedRun, open_run
from ._config import ServeConfig

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Artifacts:
    run: LoadedRun
    config: ServeConfig
    titles: list[str]
    years: list[int | None]
    genres: list[list[str]]
    genre_items: dict[str, np.ndarray]          # genre (lower case) -> bool mask (n_items,)
    popularity: np.ndarray                      # (n_items,) float32, training counts
    vectors: np.ndarray                         # (n_items, d) float32, L2-normalised
    vector_source: str
    index: Any                                  # a faiss HNSW index; None: exact search
    knowledge: dict[str, str]                   # raw item id -> stored knowledge text
    ranker: Any = None                          # a ._rank.CTRRanker or None
    user_scores: np.ndarray | None = None       # (n_users, n_items) float32, stored histories
    info: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def log_popularity(self) -> np.ndarray:
        """(n_items,) float32 log(1 + training count): the popularity channel's score."""
        return np.log1p(self.popularity)

    @cached_property
    def popularity_order(self) -> np.ndarray:
        """(n_items,) item indices, most popular first (ties: lower index first)."""
        return np.lexsort((np.arange(self.n_items), -self.log_popularity))

    @property
    def dataset(self):
        return self.run.dataset

    @property
    def model(self):
        return self.run.model

    @property
    def n_items(self) -> int:
        return self.run.dataset.n_items


def _item_columns(ds) -> tuple[list[int | None], list[list[str]]]:
    f = ds.item_features
    years = (f["year"].cast(int, strict=False).to_list() if "year" in f.columns
             else [None] * ds.n_items)
    genres = ([g or [] for g in f["genres"].to_list()] if "genres" in f.columns
              else [[] for _ in range(ds.n_items)])
    return years, genres


def _encoder(name: str):
    from ..encode import ENCODERS

    return ENCODERS[name]()


def _text_vectors(run: LoadedRun, knowledge: dict[str, str], cfg: ServeConfig
                  ) -> tuple[np.ndarray, str]:
    from ..encode import encode_texts, item_metadata_texts

    keys, texts = item_metadata_texts(run.dataset)
    n_knowledge = sum(k in knowledge for k in keys)
    texts = [knowledge.get(k, t) for k, t in zip(keys, texts)]
    vecs = encode_texts(keys, texts, _encoder(cfg.encoder), progress=False)
    source = (f"text:{cfg.encoder} (LLM knowledge for {n_knowledge} of {len(keys)} items, "
              "metadata for the rest)" if n_knowledge else f"text:{cfg.encoder} (item metadata)")
    return vecs.align(run.dataset.items.ids)[0], source


def _model_vectors(run: LoadedRun) -> tuple[np.ndarray, str]:
    import torch

    weights = getattr(run.model, "item_weights", None)
    if weights is None:
        raise ConfigError(f"item_vectors = 'model' needs a sequential model with an item "
                          f"table; {run.model.name} has none (use item_vectors = 'text')")
    with torch.no_grad():
        table = weights().detach().float().numpy()
    return np.ascontiguousarray(table[:run.dataset.n_items]), f"model:{run.model.name} items"


def prestore_user_scores(run: LoadedRun, batch_size: int = 128) -> np.ndarray:
    """(n_users, n_items) float32: the model's scores of every known user's stored history."""
    import torch

    ds = run.dataset
    out = np.empty((ds.n_users, ds.n_items), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, ds.n_users, batch_size):
            users = np.arange(start, min(start + batch_size, ds.n_users))
            hists = [ds.interactions.sequence(int(u)) for u in users]
            out[users] = run.model.score(hists, users).numpy()
    return out


def build_index(vectors: np.ndarray, cfg: ServeConfig):
    """A FAISS HNSW inner-product index over L2-normalised ``vectors`` (so scores are
    cosines), or None where the search is exact (``cfg.index_kind``: a product with
    ``vectors`` itself, see :func:`~._channels.search`)."""
    if cfg.index_kind(len(vectors)) == "flat":
        return None
    import faiss

    index = faiss.IndexHNSWFlat(vectors.shape[1], cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = max(40, 2 * cfg.hnsw_m)
    index.hnsw.efSearch = cfg.hnsw_ef_search
    index.add(vectors)
    return index


def set_threads(n: int) -> None:
    """``n`` threads for every pool a request runs on: torch, FAISS (OpenMP) and the BLAS of
    numpy and FAISS. With BLAS's default thread per core, the small products of a request
    (the ANN query, MMR's similarities) wake threads that then spin against the other
    workers: a 50 x 384 product took 770 us with 2 threads and 27 us with one."""
    import faiss
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    faiss.omp_set_num_threads(n)
    threadpool_limits(limits=n, user_api="blas")


def release_free_memory() -> None:
    """Hand the heap memory freed after start-up's temporaries (encoder, prestoring) back to
    the OS (glibc ``malloc_trim``; elsewhere nothing): otherwise every forked worker starts
    with it resident (seen: 1.6 GB per process after prestoring the ranker)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass


def load_artifacts(run_dir: str | Path, config: ServeConfig | None = None) -> Artifacts:
    """Load a finished run and everything the service derives from it (module docstring)."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        raise LlmrecError("serving needs FAISS: pip install 'llmrec[faiss,serve]'") from None
    cfg = config or ServeConfig()
    t0 = time.perf_counter()
    run = open_run(run_dir)
    ds = run.dataset
    years, genres = _item_columns(ds)
    genre_items: dict[str, np.ndarray] = {}
    for i, gs in enumerate(genres):
        for g in gs:
            genre_items.setdefault(g.lower(), np.zeros(ds.n_items, dtype=bool))[i] = True
    from ..knowledge import stored_item_knowledge

    knowledge = stored_item_knowledge(ds.name)
    if cfg.item_vectors == "model":
        vectors, source = _model_vectors(run)
    else:
        vectors, source = _text_vectors(run, knowledge, cfg)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors /= np.where(norms > 0, norms, 1.0)
    popularity = run.model.popularity.numpy().astype(np.float32)
    from ._rank import load_ranker

    ranker = load_ranker(Path(run_dir), run, cfg)
    user_scores = None
    if cfg.prestore_users and ds.n_users * ds.n_items * 4 <= cfg.prestore_max_mb * 2**20:
        user_scores = prestore_user_scores(run)
    art = Artifacts(run, cfg, ds.item_titles(), years, genres, genre_items, popularity, vectors,
                    source, build_index(vectors, cfg), knowledge, ranker, user_scores)
    release_free_memory()
    art.info = {"run_dir": str(Path(run_dir).expanduser()), "model": run.model.name,
                "dataset": ds.name, "users": ds.n_users, "items": ds.n_items,
                "item_vectors": source, "index": cfg.index_kind(ds.n_items),
                "knowledge_items": len(knowledge),
                "explanations": "stored LLM knowledge" if knowledge else
                "item metadata (the knowledge store holds no item records)",
                "ranker": ranker.describe() if ranker is not None else
                "fused retrieval score (no CTR model in the run)",
                "prestored_users": user_scores is not None,
                "weights": cfg.weights, "load_seconds": round(time.perf_counter() - t0, 2)}
    log.info("serving %s on %s: %d items, %s", run.model.name, ds.name, ds.n_items, source,
             extra={"event": "serve_load", **art.info})
    return art
