"""The agent's tools over what llmrec already has (registered in :data:`TOOLS`).

Every tool takes the conversation's :class:`ChatContext` (catalogue, retrieval model, candidate
bus, the user's known history, items liked and rejected so far) plus typed arguments, changes
the bus or not, and answers in one or two short lines with counts, never long id lists:

    search_items         filter by genre / year range / director / actor / title words
    retrieve_candidates  a trained sequential model over history + liked items -> top-n
    rank_candidates      order the bus by retrieval scores, optionally keep the top n
    lookup_item          metadata (+ stored LLM knowledge) of one item
    exclude_items        drop seen / rejected / named items
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from ._bus import CandidateBus
from ._catalog import Catalog
from ._registry import ToolError, tool

if TYPE_CHECKING:
    from ..models import Recommender


class Retriever:
    """Scores every item for a history with a trained :class:`~llmrec.models.Recommender`."""

    def __init__(self, model: Recommender) -> None:
        self.model = model

    def scores(self, history: Sequence[int]) -> np.ndarray:
        """(n_items,) float scores; the model's own fallback (popularity) for no history."""
        return self.model.score([np.asarray(history, dtype=np.int64)])[0].numpy()


@dataclass
class ChatContext:
    """What the tools of one conversation share. ``history``: item indices the agent may know
    (the user's training history); ``liked``/``rejected``: items from the conversation."""

    catalog: Catalog
    retriever: Retriever | None
    bus: CandidateBus
    history: list[int] = field(default_factory=list)
    liked: list[int] = field(default_factory=list)
    rejected: set[int] = field(default_factory=set)
    knowledge: Callable[[str], str | None] | None = None     # raw item id -> stored text
    calls: list[tuple[str, int, int, bool]] = field(default_factory=list)  # tool, before, after, ok


def _change(before: int, after: int, what: str) -> str:
    return f"{what}. Before: {before} candidates, after: {after}."


def _canonical_values(ctx: ChatContext, attribute: str, values: list[str]) -> list[str]:
    if attribute not in ctx.catalog.attrs:
        raise ToolError(f"this catalogue has no {attribute} attribute")
    out = []
    for v in values:
        c = ctx.catalog.canonical(attribute, v)
        if c is None:
            known = ctx.catalog.vocabulary(attribute)
            hint = f"; known: {', '.join(known)}" if len(known) <= 30 else ""
            raise ToolError(f"unknown {attribute} {v!r}{hint}")
        out.append(c)
    return out


@tool
def search_items(ctx: ChatContext, genres: list[str] | None = None,
                 year_min: int | None = None, year_max: int | None = None,
                 director: str | None = None, actor: str | None = None,
                 title_words: str | None = None,
                 scope: Literal["candidates", "catalogue"] = "candidates") -> str:
    """Find items by attributes: all given conditions must hold. Narrows the current
    candidates, or searches the whole catalogue (keeping retrieval scores where known).

    Args:
        genres: genres the item must all have, e.g. ["Comedy", "Romance"]
        year_min: earliest release year (inclusive)
        year_max: latest release year (inclusive)
        director: director id from the knowledge graph, e.g. "m.06pj8"
        actor: actor id from the knowledge graph
        title_words: words that must all appear in the title
        scope: "candidates" narrows the bus; "catalogue" searches every item
    """
    cat, bus = ctx.catalog, ctx.bus
    before = len(bus)
    if scope == "catalogue":
        items, scores = np.arange(cat.n_items, dtype=np.int64), None
        if bus.scores is not None and ctx.retriever is not None:
            scores = _scores(ctx)
    else:
        items, scores = bus.items, bus.scores
    mask = np.ones(len(items), dtype=bool)
    said = []
    if genres:
        canon = _canonical_values(ctx, "genre", genres)
        mask &= cat.has_all(items, "genre", canon)
        said.append("genre " + "+".join(canon))
    if year_min is not None or year_max is not None:
        if year_min is not None and year_max is not None and year_min > year_max:
            raise ToolError(f"year_min {year_min} is after year_max {year_max}")
        mask &= cat.year_between(items, year_min, year_max)
        said.append(f"year {year_min or '...'}-{year_max or '...'}")
    for attr, value in (("director", director), ("actor", actor)):
        if value:
            mask &= cat.has_all(items, attr, _canonical_values(ctx, attr, [value]))
            said.append(f"{attr} {value}")
    if title_words:
        mask &= cat.title_has(items, title_words)
        said.append(f"title words {title_words!r}")
    if not said:
        raise ToolError("give at least one condition")
    if not mask.any():
        raise ToolError(f"no item matches {', '.join(said)}")
    bus.set("search_items", items[mask], None if scores is None else scores[mask])
    return _change(before, len(bus), f"Searched {scope} for {', '.join(said)}")


def _scores(ctx: ChatContext) -> np.ndarray:
    if ctx.retriever is None:
        raise ToolError("no retrieval model is loaded")
    return ctx.retriever.scores([*ctx.history, *ctx.liked])


@tool
def retrieve_candidates(ctx: ChatContext, n: int | None = None) -> str:
    """Score every item with the trained sequential model over the user's history plus the
    items liked in this conversation; the top n unseen, unrejected items become the candidates.

    Args:
        n: how many to keep (all when omitted)
    """
    if n is not None and n < 1:
        raise ToolError(f"n must be at least 1, got {n}")
    before = len(ctx.bus)
    scores = _scores(ctx)
    blocked = np.zeros(ctx.catalog.n_items, dtype=bool)
    blocked[[*ctx.history, *ctx.liked, *ctx.rejected]] = True
    items = np.flatnonzero(~blocked)
    order = np.argsort(-scores[items], kind="stable")[:n]
    ctx.bus.set("retrieve_candidates", items[order], scores[items[order]])
    return _change(before, len(ctx.bus), f"Retrieved the model's top {len(order)}")


@tool
def rank_candidates(ctx: ChatContext, top: int | None = None) -> str:
    """Order the current candidates by the retrieval model's score, best first.

    Args:
        top: keep only the best `top` candidates (all when omitted)
    """
    if top is not None and top < 1:
        raise ToolError(f"top must be at least 1, got {top}")
    bus = ctx.bus
    before = len(bus)
    if not before:
        raise ToolError("there are no candidates to rank")
    scores = bus.scores if bus.scores is not None else _scores(ctx)[bus.items]
    order = np.argsort(-scores, kind="stable")[:top]
    bus.set("rank_candidates", bus.items[order], scores[order])
    return _change(before, len(bus), "Ranked by retrieval score")


@tool
def lookup_item(ctx: ChatContext, item_id: str) -> str:
    """Metadata of one item (title, year, genres, knowledge-graph ids) and stored LLM
    knowledge about it, if any. Does not change the candidates.

    Args:
        item_id: the item's raw id
    """
    cat = ctx.catalog
    i = cat.index(item_id)
    lines = [f"[{item_id}] {cat.display(i)}"]
    for attr in cat.attributes:
        if attr != "decade" and cat.values(attr, i):
            vals = cat.values(attr, i)
            more = f" (+{len(vals) - 5} more)" if len(vals) > 5 else ""
            lines.append(f"{attr}: {', '.join(vals[:5])}{more}")
    text = ctx.knowledge(item_id) if ctx.knowledge else None
    if text:
        lines.append(f"knowledge: {' '.join(text.split())[:400]}")
    return "\n".join(lines)


@tool
def exclude_items(ctx: ChatContext, item_ids: list[str] | None = None, seen: bool = True,
                  rejected: bool = True) -> str:
    """Remove items from the candidates: those the user has seen (their history), those
    rejected in this conversation, and any named ones.

    Args:
        item_ids: raw ids to remove as well
        seen: remove the user's history items
        rejected: remove items rejected in this conversation
    """
    named = {ctx.catalog.index(i) for i in (item_ids or [])}
    drop = named | (set(ctx.history) | set(ctx.liked) if seen else set()) \
        | (ctx.rejected if rejected else set())
    before = len(ctx.bus)
    ctx.bus.keep("exclude_items", ~np.isin(ctx.bus.items, np.fromiter(drop, np.int64,
                                                                       len(drop))))
    return _change(before, len(ctx.bus), "Excluded seen/rejected items")
