"""Knowledge vectors for CTR data: texts from a source, encoded (cached), aligned to indices.

Sources:

- ``"metadata"`` -- the stand-in used until LLM knowledge exists. Item "factual knowledge" is
  the item's metadata text (``"Title (year). Genres: ..."``); user "reasoning knowledge" is the
  text a KAR prompt would show the LLM -- profile plus the rated titles of the user's *profile*
  events (see :mod:`llmrec.ctr._data`) -- encoded directly, with no LLM in between. No sample's
  label is in any text.
- ``"knowledge"`` -- texts exported by the LLM knowledge store built for this task,
  ``$LLMREC_HOME/knowledge/<dataset>-ctr-profile<N>.sqlite`` (``llmrec knowledge generate
  --history ctr-profile``: user prompts see the profile events only, checked when each prompt
  is built), user knowledge of ``user_mode``, with the generation costs. The general store
  ``<dataset>.sqlite`` is never read here: its user prompts saw the sequential split's
  training part, which holds most CTR samples and their ratings.

Items or users without a text get a zero vector; ``coverage`` reports how many had one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data import Dataset
from ..encode import (Encoder, encode_texts, item_metadata_texts, knowledge_costs,
                      knowledge_store_exists, knowledge_texts, user_history_texts)
from ..errors import ConfigError
from ._data import CTRData, CTRDataConfig, ctr_store_name

log = logging.getLogger(__name__)
SOURCES = ("metadata", "knowledge")


@dataclass(frozen=True, eq=False)
class KnowledgeTables:
    """``item`` (n_items, K) and ``user`` (n_users, K) float32 vectors and what they cost."""

    item: np.ndarray
    user: np.ndarray
    source: str
    encoder: dict[str, Any]
    costs: dict[str, Any] = field(default_factory=dict)

    def attach(self, data: CTRData) -> CTRData:
        return data.with_knowledge(self.item, self.user)


def _data_config(data: CTRData) -> CTRDataConfig:
    raw = data.meta.get("config", {})
    fields = CTRDataConfig.__dataclass_fields__
    return CTRDataConfig(**{k: v for k, v in raw.items() if k in fields})


def knowledge_tables(ds: Dataset, data: CTRData, source: str = "metadata",
                     encoder: Encoder | None = None, *, user_mode: str = "individual",
                     progress: bool = True) -> KnowledgeTables:
    """Encode ``source`` texts for every item and user of ``ds`` (see the module docstring)."""
    if source not in SOURCES:
        raise ConfigError(f"unknown knowledge source {source!r}; choose one of {SOURCES}")
    t0 = time.perf_counter()
    costs: dict[str, Any] = {"llm_calls": 0, "llm_tokens": 0, "generation_seconds": 0.0}
    if source == "metadata":
        item_keys, item_texts = item_metadata_texts(ds)
        if data.profile is None:
            raise ConfigError("the CTR data has no profile events to describe users with")
        max_items = int(data.meta.get("config", {}).get("profile_events", 30)) or 30
        user_keys, user_texts = user_history_texts(ds, data.profile, max_items=max_items)
    else:
        dcfg = _data_config(data)
        store = ctr_store_name(ds.name, dcfg)
        if not knowledge_store_exists(store):
            raise ConfigError(
                f"no LLM knowledge for the {ds.name} CTR task (store {store!r}); generate it "
                f"with `llmrec knowledge generate --dataset {ds.name} --history ctr-profile "
                f"--profile-events {dcfg.profile_events}`, or use --knowledge-source metadata")
        item_keys, item_texts = knowledge_texts(store, "item")
        user_keys, user_texts = knowledge_texts(store, "user", user_mode)
        costs.update(knowledge_costs(store, user_mode))
    items = encode_texts(item_keys, item_texts, encoder, progress=progress)
    users = encode_texts(user_keys, user_texts, encoder, progress=progress)
    item_table, item_found = items.align(ds.items.ids)
    user_table, user_found = users.align(ds.users.ids)
    stats = [items.stats, users.stats]
    costs.update(texts=len(item_texts) + len(user_texts),
                 encoded=sum(s["encoded"] for s in stats),
                 cache_hits=sum(s["cache_hits"] for s in stats),
                 encode_seconds=round(sum(s["encode_seconds"] for s in stats), 2),
                 encode_seconds_total=(None if any(s["encode_seconds_total"] is None
                                                   for s in stats)
                                       else round(sum(s["encode_seconds_total"]
                                                      for s in stats), 2)),
                 seconds=round(time.perf_counter() - t0, 2),
                 item_coverage=round(float(item_found.mean()), 4),
                 user_coverage=round(float(user_found.mean()), 4),
                 mean_item_text_chars=round(float(np.mean([len(t) for t in item_texts])), 1),
                 mean_user_text_chars=round(float(np.mean([len(t) for t in user_texts])), 1))
    for what, found in (("items", item_found), ("users", user_found)):
        if found.mean() < 0.5:
            log.warning("only %.1f%% of %s have %s knowledge; the rest get zero vectors",
                        100 * found.mean(), what, source)
    return KnowledgeTables(item_table, user_table, source, items.encoder, costs)
