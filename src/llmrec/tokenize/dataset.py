"""Semantic IDs of a data set's items, from one of three inputs (what ``llmrec tokenize`` runs).

- ``"text"``: the item metadata texts (``"Title (year). Genres: ..."``) encoded by the packaged
  sentence encoder (cached), rows L2-normalised;
- ``"collaborative"``: item vectors learned from interactions (e.g. a trained SASRec's item
  table), passed in by the caller, rows L2-normalised;
- ``"fusion"``: both, each L2-normalised and concatenated (:func:`~llmrec.tokenize.fuse`);
- ``"knowledge"``: the metadata text followed by the item's stored LLM knowledge
  (``llmrec knowledge generate``; every store of the data set, see
  :func:`~llmrec.knowledge.stored_item_knowledge`), encoded like ``"text"``.

``das`` quantises the text (or knowledge) vectors while aligning them with the *training*
interactions (their co-occurrence, and a run's item vectors when given).
The indexing baselines take no vectors: ``random`` needs only the item count, ``sequential``
and ``collaborative`` (clustering of co-occurrence) read the *training* interactions only
(the leakage rule: nothing of a valid or test event reaches the IDs).
Row ``i`` of the result is item index ``i`` of the data set.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data import Dataset, Interactions
from ..errors import ConfigError, DataError
from . import TOKENIZERS, cooccurrence, fuse, semantic_ids
from ._ids import SemanticIds

INPUTS = ("text", "collaborative", "fusion", "knowledge")
ALIASES = {"rqkmeans": "rq-kmeans", "rqvae": "rq-vae"}
QUANTIZERS = ("rq-kmeans", "rq-vae", "pq")
METHODS = ("rqkmeans", "rqvae", "pq", "das", "random", "sequential", "collaborative")


def canonical_method(method: str) -> str:
    name = ALIASES.get(method, method)
    if name not in TOKENIZERS:
        raise ConfigError(f"unknown tokenizer {method!r}; choose one of {', '.join(METHODS)}")
    return name


def _normalise(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norm > 0, norm, 1.0)).astype(np.float32)


def text_vectors(ds: Dataset, encoder: str = "minilm", progress: bool = False, *,
                 knowledge: bool = False, min_knowledge: float = 0.9) -> np.ndarray:
    """(n_items, d) L2-normalised vectors of the items' metadata texts, in item-index order;
    with ``knowledge``, each text is followed by the item's stored LLM knowledge (at least
    ``min_knowledge`` of the items must have some)."""
    from ..encode import ENCODERS, encode_texts, item_metadata_texts

    keys, texts = item_metadata_texts(ds)
    if knowledge:
        from ..knowledge import stored_item_knowledge

        stored = stored_item_knowledge(ds.name)
        have = sum(k in stored for k in keys)
        if have < min_knowledge * len(keys):
            raise ConfigError(
                f"only {have} of {len(keys)} items of {ds.name} have stored LLM knowledge; "
                f"generate it first: llmrec knowledge generate --dataset {ds.name} --items-only")
        texts = [f"{t}\n{stored[k]}" if k in stored else t for k, t in zip(keys, texts)]
    vectors = encode_texts(keys, texts, ENCODERS[encoder](), progress=progress)
    rows, found = vectors.align(ds.items.ids)
    if not found.all():
        raise DataError(f"{int((~found).sum())} items of {ds.name} have no metadata text")
    return _normalise(rows)


def item_vectors(ds: Dataset, input: str = "text", *, collaborative: np.ndarray | None = None,
                 encoder: str = "minilm", weights: tuple[float, float] = (1.0, 1.0),
                 progress: bool = False) -> np.ndarray:
    """The vectors one ``input`` kind gives (see the module docstring)."""
    if input not in INPUTS:
        raise ConfigError(f"unknown input {input!r}; choose one of {', '.join(INPUTS)}")
    if input in ("text", "knowledge"):
        return text_vectors(ds, encoder, progress, knowledge=input == "knowledge")
    if collaborative is None:
        raise ConfigError(f"input {input!r} needs collaborative item vectors (a trained "
                          "SASRec run)")
    if len(collaborative) != ds.n_items:
        raise DataError(f"collaborative vectors have {len(collaborative)} rows, "
                        f"{ds.name} has {ds.n_items} items")
    collab = _normalise(np.asarray(collaborative, dtype=np.float32))
    if input == "collaborative":
        return collab
    return fuse(text_vectors(ds, encoder, progress), collab, weights)


def tokenize_items(ds: Dataset, train: Interactions, method: str = "rq-kmeans",
                   input: str = "text", *, collaborative: np.ndarray | None = None,
                   collisions: str | None = None, encoder: str = "minilm",
                   progress: bool = False, **config: Any) -> SemanticIds:
    """Unique IDs of every item of ``ds``; ``config`` overrides tokenizer fields (``levels``,
    ``codebook_size``, ``seed``, ...). ``collisions`` defaults to ``"level"`` where raw codes
    may collide and ``"none"`` for random and sequential indexing (unique by construction)."""
    name = canonical_method(method)
    if train.n_items != ds.n_items:
        raise DataError(f"training interactions have {train.n_items} items, {ds.name} "
                        f"{ds.n_items}")
    strategy = collisions or ("none" if name in ("random", "sequential") else "level")
    if name == "das":                 # content vectors + collaborative signal of training data
        if input not in ("text", "knowledge"):
            raise ConfigError(f"das quantises text or knowledge vectors, not {input!r}; its "
                              "collaborative side comes from the training interactions (and "
                              "a run's item vectors, if given)")
        vectors = text_vectors(ds, encoder, progress, knowledge=input == "knowledge")
        cooc = cooccurrence(train.user, train.item, ds.n_items)
        data: Any = {"vectors": vectors, "cooccurrence": cooc}
        if collaborative is not None:
            if len(collaborative) != ds.n_items:
                raise DataError(f"collaborative vectors have {len(collaborative)} rows, "
                                f"{ds.name} has {ds.n_items} items")
            data["collaborative"] = _normalise(np.asarray(collaborative, dtype=np.float32))
    elif name in QUANTIZERS:
        data = item_vectors(ds, input, collaborative=collaborative, encoder=encoder,
                                 progress=progress)
    elif name == "random":
        data = ds.n_items
    elif name == "sequential":
        data = (np.asarray(train.item, dtype=np.int64), ds.n_items)
    else:
        data = (train.user, train.item, ds.n_items)
    return semantic_ids(data, name, collisions=strategy, **config)  # type: ignore[arg-type]
