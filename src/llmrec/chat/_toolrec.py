"""ToolRec (Zhao et al. 2024, "Let Me Do It For You: Towards LLM Empowered Recommendation via
Tool Learning", SIGIR 2024, arXiv 2405.15114).

The LLM acts as a *surrogate of the user*: it reads what the user said so far and the user's
training history, and round by round chooses an attribute-oriented retrieval tool with
arguments, observes what it returned, and decides when to stop and which round's candidates
to present. One agent turn::

    round 1  {"tool": "search_items", "args": {"genres": ["Comedy"]}}
             -> "Searched candidates for genre Comedy. Before: 1349 candidates, after: 402."
    round 2  {"tool": "search_items", "args": {"year_min": 1990, "year_max": 1999}}
             -> "... Before: 402 candidates, after: 233."
    round 3  {"tool": "finish", "use": 2}       (present round 2's candidates)

Tools (the registered ones, arguments narrowed as for :class:`~llmrec.chat.InteRecAgent`):
``search_items`` by genre / year range / director / actor / title words narrows the
candidates (the first round searches the catalogue); ``retrieve_candidates`` replaces them with
the sequential model's top ``n`` over the user's history plus the items liked so far. A tool
that matches nothing leaves the candidates unchanged and says so (an observation, not an
error). ``finish`` presents the chosen round's candidates: seen and rejected items excluded,
then ranked by the retrieval model's scores (the ranker stage), top ``k``. In the first round
of a turn (not the last turn) the surrogate may instead ``ask`` the real user about an
attribute it cannot guess. After ``max_rounds`` rounds without ``finish``, the last round with
candidates is presented.

Every round is one LLM call held to the round's JSON schema (:class:`~llmrec.chat.JsonCaller`:
grammar on llama.cpp, ``response_format`` on OpenAI-compatible servers); an unusable output
is repaired once; a second failure ends the rounds, and with no usable round the turn takes
the :class:`~llmrec.chat.TreePolicy` action. Rounds are chat messages (the assistant's call,
then the tool's line), so llama.cpp reuses the prompt's KV cache from round to round.

Deviations from the paper: ChatGPT there, SmolLM2-135M (or any OpenAI-compatible model) here;
the paper's rounds run once per user for a one-shot recommendation and the LLM reranks the
final list -- here the rounds run every agent turn of a conversation, the user's words and
rejections steer them, the final order is the retrieval model's scores, and asking the user
is allowed in a turn's first round. The paper's tools are SASRec/BERT4Rec retrievers with an
attribute prompt; here attributes filter the catalogue directly. Native tool calling is not
offered (the schemas ride in ``response_format``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ._bus import CandidateBus
from ._llmcall import (CONSTRAINTS, JsonCaller, PlanError, context_lines, recommend_from_bus,
                       search_hint, step_schemas, tool_lines)
from ._messages import Action, Ask, Recommend
from ._policy import ChatState, TreePolicy
from ._registry import TOOLS

if TYPE_CHECKING:
    from ..llm import Backend

PROMPT_VERSION = "toolrec-v1"
ROUND_TOOLS = ("search_items", "retrieve_candidates")

SYSTEM = """You act for a user who is looking for a movie: you know the movies they watched \
and what they said. Each round, write one JSON call of a retrieval tool; you see its result, \
then call another tool or finish.
{tools}
- finish(use): show the user the best {k} candidates of round `use`.
{ask}Narrow the candidates with what the user said; finish when few are left."""


@dataclass
class ToolRec:
    """The LLM as the user's surrogate choosing retrieval tools (see the module docstring)."""

    backend: Backend
    max_rounds: int = 3
    max_tokens: int = 128
    temperature: float = 0.0
    constrain: str | None = None    # "grammar" | "json" | None (see JsonCaller)
    fallback: TreePolicy = field(default_factory=TreePolicy)
    name: str = "toolrec"

    def __post_init__(self) -> None:
        if self.constrain not in CONSTRAINTS or self.constrain == "tools":
            raise ValueError(f"toolrec: constrain must be grammar, json or None; got "
                             f"{self.constrain!r}")
        if self.max_rounds < 1 or self.max_tokens < 8:
            raise ValueError(f"toolrec: need max_rounds >= 1 and max_tokens >= 8; got "
                             f"{self.max_rounds}, {self.max_tokens}")
        self.caller = JsonCaller(self.backend, self.constrain, self.temperature)

    def settings(self) -> dict[str, Any]:
        """What determined the strategy's behaviour (for config.json)."""
        return {"prompt": PROMPT_VERSION, "llm": self.backend.identity(),
                "max_rounds": self.max_rounds, "max_tokens": self.max_tokens,
                "temperature": self.temperature, "tools": list(ROUND_TOOLS),
                "constrain": self.constrain}

    def round_schema(self, state: ChatState, rounds: list[np.ndarray],
                     first: bool) -> dict[str, Any]:
        """One round's call: a tool with narrowed arguments, ``finish`` naming a round that
        left candidates (after one), or, in a turn's first round, ``ask``."""
        cat = state.ctx.catalog
        variants = step_schemas(cat, ROUND_TOOLS, state.known,
                                hidden=frozenset({"scope", "item_ids"}))
        usable = [r + 1 for r, items in enumerate(rounds) if len(items)]
        if usable:
            variants.append({"type": "object", "properties": {
                "tool": {"const": "finish"}, "use": {"enum": usable}},
                "required": ["tool", "use"], "additionalProperties": False})
        attributes = [a for a in cat.attributes if a not in state.asked]
        if first and attributes and not state.last_turn:
            variants.append({"type": "object", "properties": {
                "tool": {"const": "ask"}, "attribute": {"enum": attributes}},
                "required": ["tool", "attribute"], "additionalProperties": False})
        return {"anyOf": variants}

    def prompt(self, state: ChatState) -> list[dict[str, str]]:
        cat = state.ctx.catalog
        ask = ("- ask(attribute): in the first round only, ask the user about one of "
               f"{', '.join(a for a in cat.attributes if a not in state.asked)}.\n"
               if not state.last_turn and any(a not in state.asked for a in cat.attributes)
               else "")
        system = SYSTEM.format(tools=tool_lines(ROUND_TOOLS), k=state.k, ask=ask)
        lines = context_lines(state, state.scratch.setdefault("toolrec_actions", []))
        hint = search_hint(state)
        if hint:
            lines.append(f"A search for what the user said: {hint}")
        lines.append("Round 1: write the call.")
        return [{"role": "system", "content": system},
                {"role": "user", "content": "\n".join(lines)}]

    def _present(self, state: ChatState, items: np.ndarray) -> Recommend:
        ctx = state.ctx
        ctx.bus = CandidateBus(items)
        ctx.bus.log.append(("finish", len(items)))
        return recommend_from_bus(state)

    def act(self, state: ChatState) -> Action:
        action = self._rounds(state)
        state.scratch.setdefault("toolrec_actions", []).append(action)
        return action

    def _rounds(self, state: ChatState) -> Action:
        ctx = state.ctx
        ctx.bus = CandidateBus.all_items(ctx.catalog.n_items)
        messages = self.prompt(state)
        rounds: list[np.ndarray] = []            # the candidates after each round
        for r in range(self.max_rounds):
            schema = self.round_schema(state, rounds, first=r == 0)
            observed: list[str] = []

            def use(call: dict[str, Any]) -> Action | None:
                if call["tool"] == "ask":
                    return Ask(call["attribute"])
                if call["tool"] == "finish":
                    return self._present(state, rounds[call["use"] - 1])
                res = TOOLS[call["tool"]].call(ctx, call["args"])
                observed.append(res.text)
                return None

            got = self.caller.call(state, messages, schema, use, max_tokens=self.max_tokens,
                                   role=f"round {r + 1}")
            plan = state.plans[-1]
            if not plan["ok"]:                     # two failed tries: stop the rounds
                break
            if got is not None:
                return got
            rounds.append(ctx.bus.items.copy())
            messages = [*messages, {"role": "assistant", "content": json.dumps(plan["plan"])},
                        {"role": "user", "content": f"{observed[-1]}\nRound {r + 2}: write "
                         "the call" + (" (finish now)." if r + 2 >= self.max_rounds else ".")}]
        for items in rounds[::-1]:
            try:
                return self._present(state, items)
            except PlanError:
                continue
        return self.fallback.act(state)
