"""Text sources: (keys, texts) pairs for :func:`~llmrec.encode.encode_texts`.

- :func:`item_metadata_texts` -- one text per item: ``"Title (year). Genres: A, B."``.
- :func:`user_history_texts` -- one text per user from the events the caller allows
  (profile + rated titles), the text a KAR prompt shows an LLM, here encoded directly.
- :func:`knowledge_texts` / :func:`knowledge_costs` -- texts from the LLM knowledge store
  (:mod:`llmrec.knowledge`, ``KnowledgeStore.export``) and what generating them cost.

The leakage rule is the caller's to keep: pass :func:`user_history_texts` only events that may
be shown (e.g. a prefix of each history that precedes every evaluated sample).
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import polars as pl

from ..data import Dataset, Interactions
from ..errors import ConfigError, LlmrecError

GENDER = {"M": "male", "F": "female"}


def item_metadata_texts(ds: Dataset) -> tuple[list[str], list[str]]:
    """Raw item ids and ``"Title (year). Genres: A, B."`` per item (parts the data lacks are
    left out; an item with nothing known is described by its id)."""
    f = ds.item_features
    title = (f["title"].fill_null("") if "title" in f.columns
             else pl.Series([""] * f.height))
    title = pl.Series(np.where(title.to_numpy() == "", f["item_id"].to_numpy(), title))
    year = (f["year"].cast(pl.String).fill_null("") if "year" in f.columns
            else pl.Series([""] * f.height))
    genres = (f["genres"].fill_null([]).list.join(", ") if "genres" in f.columns
              else pl.Series([""] * f.height))
    texts = (pl.DataFrame({"t": title, "y": year, "g": genres})
             .select(pl.col("t")
                     + pl.when(pl.col("y") != "").then(" (" + pl.col("y") + ")")
                     .otherwise(pl.lit(""))
                     + pl.lit(".")
                     + pl.when(pl.col("g") != "").then(" Genres: " + pl.col("g") + ".")
                     .otherwise(pl.lit("")))
             .to_series().to_list())
    return f["item_id"].to_list(), texts


def _profile(row: dict[str, Any]) -> str:
    parts = []
    if row.get("age"):
        parts.append(f"{row['age']}-year-old")
    if row.get("gender"):
        parts.append(GENDER.get(str(row["gender"]), str(row["gender"])))
    if row.get("occupation"):
        parts.append(str(row["occupation"]))
    return ("A " + " ".join(parts) + ". ") if parts else ""


def user_history_texts(ds: Dataset, events: Interactions,
                       max_items: int = 30) -> tuple[list[str], list[str]]:
    """Raw user ids and one text per user: profile, then the user's last ``max_items`` events
    of ``events`` as ``"Title (year)", N stars;`` (the history part of KAR's prompt)."""
    titles = item_metadata_texts(ds)[1]
    titles = [t.split(". Genres:")[0].rstrip(".") for t in titles]
    pos = events.positions()
    keep = pos >= (events.lengths()[events.user] - max_items)
    users = events.user[keep]
    stars = np.nan_to_num(events.rating[keep], nan=0).round().astype(int)
    item_txt = np.asarray(titles, dtype=object)[events.item[keep]]
    lines = [f'"{t}", {s} stars;' if s else f'"{t}";' for t, s in zip(item_txt, stars)]
    by_user: list[list[str]] = [[] for _ in range(ds.n_users)]
    for u, line in zip(users.tolist(), lines):
        by_user[u].append(line)
    rows = ds.user_features.to_dicts()
    texts = [(_profile(r) + ("Rated: " + " ".join(h) if h else "No ratings yet.")).strip()
             for r, h in zip(rows, by_user)]
    return ds.users.ids.tolist(), texts


def knowledge_store_exists(name: str) -> bool:
    """Whether ``$LLMREC_HOME/knowledge/<name>.sqlite`` exists (``name``: a data set or store)."""
    try:
        knowledge = importlib.import_module("llmrec.knowledge")
    except ImportError:
        return False
    return knowledge.default_store_path(name).exists()


def _open_store(dataset: str):
    try:
        knowledge = importlib.import_module("llmrec.knowledge")
    except ImportError:
        raise LlmrecError("no LLM knowledge store in this installation (llmrec.knowledge is "
                          "missing); use --source metadata") from None
    path = knowledge.default_store_path(dataset)
    if not path.exists():                      # opening would create an empty store
        raise LlmrecError(f"no LLM knowledge for {dataset!r} ({path} does not exist); generate "
                          "it first with `llmrec knowledge`, or use --source metadata")
    return knowledge.KnowledgeStore(path)


def knowledge_texts(dataset: str, kind: str,
                    user_mode: str = "individual") -> tuple[list[str], list[str]]:
    """Raw ids and texts of the LLM knowledge of ``dataset`` from the knowledge store
    (:mod:`llmrec.knowledge`): ``kind="item"`` for item facts, ``"user"`` for user preferences
    generated in ``user_mode`` (individual, collective, incremental)."""
    if kind not in ("item", "user"):
        raise ConfigError(f"knowledge kind must be 'item' or 'user', not {kind!r}")
    store = _open_store(dataset)
    try:
        texts = store.export("item" if kind == "item" else user_mode)
    finally:
        store.close()
    if not texts:
        raise LlmrecError(f"the knowledge store of {dataset!r} holds no {kind} knowledge"
                          + (f" in mode {user_mode!r}" if kind == "user" else ""))
    return list(texts), list(texts.values())


def knowledge_costs(dataset: str, user_mode: str = "individual") -> dict[str, Any]:
    """What generating the knowledge that :func:`knowledge_texts` gives (items, and users in
    ``user_mode``) cost: ``llm_calls`` (attempts), ``llm_tokens`` (prompt + completion),
    ``generation_seconds`` (summed call latencies), over the records behind those texts."""
    store = _open_store(dataset)
    try:
        return store.export_costs("item", user_mode)
    finally:
        store.close()
