"""Item facts the data knows, written as the text of an item prompt (grounding).

A 135M model invents freely, so an item prompt carries only what the data set knows: title,
year, genres, a description if there is one and, optionally, knowledge-graph facts::

    Movie: Heat (1995)
    Genres: Action, Crime, Thriller
    Same director as: The Insider (1999)           <- only with kg=True
    Shares cast with: The Godfather (1972), Taxi Driver (1976)

Knowledge-graph facts come from RecBole-style ``.kg`` (head, relation, tail) and ``.link``
(item id -> entity) files. Tail entities are opaque Freebase ids (``m.0xxxx``) with no names,
so a fact is named by the *other items of the data set* that share the tail ("same director
as: ..."), the ones sharing most tails first. Only the relations in :data:`RELATIONS` are used.

They are off by default: the ``ml-100k.link`` shipped in ``recbole==1.2.1`` numbers items with
MovieLens-1M movie ids, not ML-100K ids (the seven items it links to Spielberg, m.06pj8, are
480, 527, 1097, 1198, 1291, 1387, 1544: Jurassic Park, Schindler's List, E.T., ... in ML-1M
numbering, but North by Northwest, Gandhi, La Haine, ... in ML-100K), so for most items the
"facts" would be another film's. Use ``kg=True`` with a link file that is right.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import polars as pl

from ..data import Dataset, read_tsv
from ..errors import DataError

# forward relations of the Freebase film KG (head = a linked item) -> how a prompt names them
RELATIONS = {
    "film.film.directed_by": "Same director as",
    "film.film.actor": "Shares cast with",
    "film.film.written_by": "Same writer as",
    "film.film.produced_by": "Same producer as",
}


def require_item_text(dataset: Dataset) -> None:
    """Raise a clear DataError when the data set has no item text at all."""
    cols = dataset.item_features.columns
    if "title" not in cols and "description" not in cols:
        raise DataError(f"{dataset.name} has no item text (no 'title' or 'description' "
                        f"column; item columns: {', '.join(cols)}); knowledge generation "
                        "needs item titles or descriptions")


def display_titles(dataset: Dataset) -> list[str]:
    """``"Title (year)"`` per item index (the year only if known and not in the title)."""
    feats = dataset.item_features
    titles = [t or "" for t in (feats["title"].to_list() if "title" in feats.columns
                                else [""] * dataset.n_items)]
    years = feats["year"].to_list() if "year" in feats.columns else [None] * len(titles)
    out = []
    for t, y in zip(titles, years):
        t = " ".join(t.split())
        out.append(f"{t} ({y})" if t and y and f"({y})" not in t else t)
    return out


def text_problem(text: str | None) -> str | None:
    """Why ``text`` cannot go into a prompt (empty, or not valid UTF-8), else None."""
    if text is None or not text.strip():
        return "empty item text"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "item text is not valid UTF-8"
    if "\ufffd" in text or any(unicodedata.category(c) == "Cc" and c not in "\t\n"
                               for c in text):
        return "item text is not valid UTF-8 (replacement or control characters)"
    return None


class ItemFacts:
    """Builds the fact text of each item of a data set (see the module docstring)."""

    def __init__(self, dataset: Dataset, scenario: str, *, kg: bool = False,
                 related_per_relation: int = 3, max_description_chars: int = 400) -> None:
        require_item_text(dataset)
        self.dataset, self.scenario = dataset, scenario
        self.titles = display_titles(dataset)
        feats = dataset.item_features
        self.genres = (feats["genres"].to_list() if "genres" in feats.columns
                       else [None] * dataset.n_items)
        self.descriptions = (feats["description"].to_list() if "description" in feats.columns
                             else [None] * dataset.n_items)
        self.max_description_chars = max_description_chars
        # columns a CSV data set's --item-columns named beyond the canonical ones (author=...)
        self.extra = [(name, feats[name].cast(pl.String).to_list())
                      for name in dataset.meta.get("item_fact_columns", [])
                      if name in feats.columns]
        self.related: dict[int, list[tuple[str, list[int]]]] = {}
        if kg:
            self.related = kg_related(dataset, related_per_relation)

    def problem(self, item: int) -> str | None:
        """Why item ``item`` (index) has no usable text, or None."""
        return text_problem(self.titles[item] or self.descriptions[item])

    def text(self, item: int) -> str:
        """The fact lines of item ``item`` (index); check :meth:`problem` first."""
        lines = [f"{self.scenario.capitalize()}: {self.titles[item] or '(untitled)'}"]
        genres = [g for g in (self.genres[item] or []) if g]
        if genres:
            lines.append(f"Genres: {', '.join(genres)}")
        for name, values in self.extra:
            if values[item] and values[item].strip():
                lines.append(f"{name.replace('_', ' ').capitalize()}: "
                             f"{' '.join(values[item].split())}")
        for label, others in self.related.get(item, []):
            lines.append(f"{label}: {', '.join(self.titles[o] for o in others)}")
        desc = self.descriptions[item]
        if desc and desc.strip():
            desc = " ".join(desc.split())
            lines.append(f"Description: {desc[:self.max_description_chars]}")
        return "\n".join(lines)



def kg_related(dataset: Dataset, per_relation: int) -> dict[int, list[tuple[str, list[int]]]]:
    """For each item index: [(label, other item indices sharing that relation's tails)]."""
    extra = dataset.meta.get("extra_files", {})
    if "kg" not in extra or "link" not in extra:
        raise DataError(f"{dataset.name} has no knowledge graph (.kg and .link files); "
                        "run without kg facts")
    kg = read_tsv(extra["kg"], ["head", "relation", "tail"])
    link = read_tsv(extra["link"], ["item_id", "entity"])
    index = pl.DataFrame({"item_id": dataset.items.ids.tolist(),
                          "item": np.arange(dataset.n_items, dtype=np.int64)})
    facts = (kg.filter(pl.col("relation").is_in(list(RELATIONS)))
               .join(link.join(index, on="item_id"), left_on="head", right_on="entity")
               .select("item", "relation", "tail").unique())
    pairs = (facts.join(facts, on=["relation", "tail"], suffix="_other")
                  .filter(pl.col("item") != pl.col("item_other"))
                  .group_by("item", "relation", "item_other").len()
                  .sort(["item", "relation", "len", "item_other"],
                        descending=[False, False, True, False])
                  .group_by("item", "relation", maintain_order=True)
                  .agg(pl.col("item_other").head(per_relation)))
    order = {r: i for i, r in enumerate(RELATIONS)}
    out: dict[int, list[tuple[str, list[int]]]] = {}
    for item, rel, others in sorted(pairs.iter_rows(), key=lambda r: (r[0], order[r[1]])):
        out.setdefault(int(item), []).append((RELATIONS[rel], [int(o) for o in others]))
    return out
