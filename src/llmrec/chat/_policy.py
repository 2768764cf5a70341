"""Conversation state, the :class:`Strategy` protocol and the two non-LLM strategies.

A strategy sees a :class:`ChatState` (the tools' context, what the user said so far, the turn)
and returns one :data:`~llmrec.chat.Action` per turn; it changes the candidate bus only through
the registered tools (:data:`~llmrec.chat.TOOLS`), so every step is logged as a tool call. LLM
strategies (InteRecAgent plan-first, MACRS, ToolRec) implement the same ``act``.

:class:`TreePolicy` is the decision-tree CRS of the seed papers (EAR, Lei et al. WSDM 2020;
the entropy-based attribute choice of Christakopoulou et al. / Zou et al. "Learning to ask"):
each turn it rebuilds the candidates (retrieval over the user's history, minus seen and rejected
items, narrowed by every attribute value the user stated), then asks the attribute whose answer
would split the candidates best (the entropy of the answer, each candidate weighted by the
softmax of its retrieval score), or recommends the top ``k`` when confident: few candidates,
or the top ``k`` hold at least ``confidence`` of the score mass, or it is the last turn, or no
question is worth asking. Deviations: EAR learns its policy (reinforcement learning over
FM-estimated features); here the rule is fixed, and scores come from a sequential model.

:class:`TopKPolicy` is the floor: the retrieval model's top ``k`` every turn, minus rejected
items, no questions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ._messages import Action, Ask, Recommend, UserReply
from ._registry import TOOLS
from ._tools import ChatContext


@dataclass
class ChatState:
    """What the agent knows in one conversation (test data only through the user's words)."""

    ctx: ChatContext
    k: int = 10
    max_turns: int = 5
    turn: int = 0                                   # agent turns taken
    known: dict[str, tuple[str, ...]] = field(default_factory=dict)  # () = user doesn't know
    asked: set[str] = field(default_factory=set)
    replies: list[UserReply] = field(default_factory=list)
    # LLM strategies' accounting: one dict per LLM call (ok, seconds, prompt_tokens,
    # completion_tokens), the plans tried, and how often a plan was repaired / fell back
    llm_calls: list[dict] = field(default_factory=list)
    plans: list[dict] = field(default_factory=list)
    repairs: int = 0
    fallbacks: int = 0
    # an LLM strategy's own per-dialogue memory (MACRS: reflections; ToolRec: rounds)
    scratch: dict = field(default_factory=dict)

    @property
    def last_turn(self) -> bool:
        return self.turn >= self.max_turns - 1

    def observe(self, action: Action, reply: UserReply) -> None:
        """Update from the agent's action and the user's parsed reply."""
        self.turn += 1
        self.replies.append(reply)
        if isinstance(action, Ask):
            self.asked.add(action.attribute)
        if isinstance(action, Recommend) and reply.kind == "reject":
            cat = self.ctx.catalog
            self.ctx.rejected |= {cat.index(i) for i in action.items}
        for attribute, values in reply.stated():
            self.known[attribute] = values
            self.asked.add(attribute)


class Strategy(Protocol):
    name: str

    def act(self, state: ChatState) -> Action: ...


def _recommend(state: ChatState) -> Recommend:
    ctx = state.ctx
    return Recommend(tuple(ctx.catalog.ids(ctx.bus.top(state.k))))


@dataclass
class TopKPolicy:
    """The retrieval model's top ``k`` every turn, excluding rejected items (no questions)."""

    name: str = "topk"

    def act(self, state: ChatState) -> Action:
        TOOLS["retrieve_candidates"].call(state.ctx, {"n": state.k})
        return _recommend(state)


def answer_entropy(catalog, attribute: str, items: np.ndarray, weights: np.ndarray) -> float:
    """Entropy (nats) of the user's answer about ``attribute`` if the target is drawn from
    ``items`` with probabilities ``weights``. An item's answer is its full value tuple, except
    for actors, where the user names one of the cast (mass spread evenly)."""
    if attribute != "actor":
        q = np.bincount(catalog.codes(attribute)[items], weights=weights)
    else:
        item, code, share = catalog.spread(attribute)
        w = np.zeros(catalog.n_items)
        w[items] = weights
        q = np.bincount(code, weights=w[item] * share)
    q = q[q > 0] / q.sum()
    return float(-(q * np.log(q)).sum())


@dataclass
class TreePolicy:
    """Ask the best-splitting attribute, recommend when confident (see the module docstring)."""

    confidence: float = 0.5         # recommend once the top k hold this share of score mass
    min_gain: float = 0.1           # nats; a question that splits less is not asked
    attributes: tuple[str, ...] | None = None   # default: every attribute of the catalogue
    name: str = "tree"

    def candidates(self, state: ChatState) -> None:
        """Rebuild the bus: retrieval minus seen/rejected, narrowed by the stated values. A
        condition that matches nothing fails in its tool and is skipped (bus unchanged)."""
        ctx = state.ctx
        TOOLS["retrieve_candidates"].call(ctx, {})
        search = TOOLS["search_items"]
        for attr, vals in state.known.items():
            if not vals:
                continue
            if attr == "genre":
                search.call(ctx, {"genres": list(vals)})
            elif attr == "decade":
                start = int(vals[0][:4])
                search.call(ctx, {"year_min": start, "year_max": start + 9})
            elif attr in ("director", "actor"):
                for v in vals:
                    search.call(ctx, {attr: v})

    def act(self, state: ChatState) -> Action:
        self.candidates(state)
        ctx = state.ctx
        bus = ctx.bus
        if state.last_turn or len(bus) <= state.k:
            return _recommend(state)
        s = bus.scores - bus.scores.max()
        p = np.exp(s) / np.exp(s).sum()
        top_mass = float(np.sort(p)[::-1][:state.k].sum())
        if top_mass >= self.confidence:
            return _recommend(state)
        attrs = self.attributes or ctx.catalog.attributes
        gains = {a: answer_entropy(ctx.catalog, a, bus.items, p)
                 for a in attrs if a not in state.asked and a in ctx.catalog.attrs}
        if not gains or max(gains.values()) < self.min_gain:
            return _recommend(state)
        return Ask(max(gains, key=lambda a: (gains[a], -attrs.index(a))))


STRATEGIES = {"tree": TreePolicy, "topk": TopKPolicy}
