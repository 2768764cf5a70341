"""InteRecAgent's plan-first strategy (Huang et al. 2023, "Recommender AI Agent: Integrating
Large Language Models for Interactive Recommendations", arXiv 2308.16505).

Each agent turn the LLM writes the turn's *plan* as one JSON object: a short list of tool
calls over the registered tools (:data:`~llmrec.chat.TOOLS`) and the turn's final action::

    {"action": {"type": "recommend"},
     "plan": [{"tool": "retrieve_candidates", "args": {"n": 200}},
              {"tool": "search_items", "args": {"genres": ["Drama"]}}]}

The JSON schema of that object (:func:`plan_schema`) is built from the tools' own schemas, and
the request carries it (OpenAI ``response_format``; llama.cpp turns it into a grammar), so even
SmolLM2-135M emits valid actions. An executor runs the plan on the candidate bus: item lists
move between tools by reference and the prompt shows only counts. ``recommend`` shows the bus's
top ``k`` after seen/rejected items are excluded (and, when the plan left the bus unranked,
after ranking it by retrieval score).

Reflection: a plan that fails (not JSON, not matching the schema, a tool error, an empty bus at
recommendation time, an LLM failure) is retried once with the error in the prompt; a second
failure takes the :class:`~llmrec.chat.TreePolicy` action. A session never crashes on the
model's output (an unusable LLM environment still raises :class:`~llmrec.llm.LLMError`).

With a :class:`GeneralMemory` (MemoCRS), "people who liked X also liked Y" lines for the items
the user liked in the conversation and the last items of their known history go into the prompt.

Deviations from the paper: the paper's planner is GPT-4 with few-shot demonstrations and a
dynamic demonstration store; here the plan is schema-constrained and zero-shot, one plan per
turn (no plan-then-observe loop), and the prompt text is versioned as :data:`PROMPT_VERSION`.
The paper's "critic" reflection is replaced by checking the executor's own errors. On
OpenAI-compatible servers the plan rides in ``response_format`` (JSON schema) by default, or,
with ``constrain="tools"``, as native tool calls (the steps, then one of the action functions
``ask`` / ``recommend`` / ``chitchat``; :func:`native_tools`), checked against the same schema.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._catalog import ATTRIBUTES, Catalog
from ._llmcall import (JsonCaller, PlanError, parse_json, recommend_from_bus, run_steps,
                       search_hint, state_lines, step_schemas, tool_lines)
from ._messages import Action, Ask, ChitChat
from ._policy import ChatState, TreePolicy
from ._registry import TOOLS

if TYPE_CHECKING:
    from ..llm import Backend
    from ._general_memory import GeneralMemory

PROMPT_VERSION = "interec-plan-v1"
parse_plan = parse_json                   # the plan's parser (shared with MACRS and ToolRec)
PLAN_TOOLS = ("retrieve_candidates", "search_items", "rank_candidates", "exclude_items")


def plan_schema(catalog: Catalog | None = None, tools: tuple[str, ...] = PLAN_TOOLS,
                max_steps: int = 3, known: dict[str, tuple[str, ...]] | None = None,
                asked: Collection[str] = (), last_turn: bool = False) -> dict[str, Any]:
    """The JSON schema of one turn's plan (see the module docstring), built from the tools'
    schemas (narrowed to ``catalog``'s values, see ``_llmcall.narrow``; the raw tool schemas
    when ``catalog`` is None). ``action`` comes first, so the model decides before it writes
    steps; only a recommendation has steps (asking and chit-chat leave the bus alone). It
    follows the conversation: attributes already ``asked`` cannot be asked again, and on the
    ``last_turn`` the only action is a recommendation."""
    known = known or {}
    attributes = [a for a in (catalog.attributes if catalog is not None else ATTRIBUTES)
                  if a not in asked]
    steps = step_schemas(catalog, tools, known)
    no_steps = {"type": "array", "maxItems": 0}

    def variant(action: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "properties": {"action": action, "plan": plan},
                "required": ["action", "plan"], "additionalProperties": False}

    variants = [variant({"type": "object", "properties": {"type": {"const": "recommend"}},
                         "required": ["type"], "additionalProperties": False},
                        {"type": "array", "items": {"anyOf": steps}, "maxItems": max_steps})]
    if not last_turn:
        if attributes:
            variants.insert(0, variant(
                {"type": "object", "properties": {"type": {"const": "ask"},
                                                  "attribute": {"enum": attributes}},
                 "required": ["type", "attribute"], "additionalProperties": False}, no_steps))
        variants.append(variant(
            {"type": "object", "properties": {"type": {"const": "chitchat"},
                                              "text": {"type": "string", "maxLength": 160}},
             "required": ["type", "text"], "additionalProperties": False}, no_steps))
    return variants[0] if len(variants) == 1 else {"anyOf": variants}


def native_tools(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """OpenAI function-calling entries for one turn's plan schema: the bus tools with their
    narrowed arguments, then one function per allowed action (``ask``, ``recommend``,
    ``chitchat``); the model calls steps, then exactly one action (:func:`plan_from_calls`)."""
    steps: dict[str, Any] = {}
    actions: dict[str, Any] = {}
    for v in schema.get("anyOf", [schema]):
        act = v["properties"]["action"]
        props = {k: p for k, p in act["properties"].items() if k != "type"}
        actions[act["properties"]["type"]["const"]] = {
            "type": "object", "properties": props, "required": [k for k in act["required"]
                                                                 if k != "type"],
            "additionalProperties": False}
        for step in v["properties"]["plan"].get("items", {}).get("anyOf", []):
            steps[step["properties"]["tool"]["const"]] = step["properties"]["args"]
    out = [{"type": "function", "function": {"name": name, "description":
                                             TOOLS[name].description, "parameters": args}}
           for name, args in steps.items()]
    said = {"ask": "Ask the user about one movie attribute (no tool calls before it).",
            "recommend": "Show the best candidates left after the tool calls before it.",
            "chitchat": "Say something else to the user (no tool calls before it)."}
    out += [{"type": "function", "function": {"name": name, "description": said[name],
                                              "parameters": params}}
            for name, params in actions.items()]
    return out


def plan_from_calls(calls: tuple[dict[str, str], ...], text: str) -> str:
    """The plan JSON text of native tool calls (steps, then one action call last); the
    message text itself when the model made no call."""
    if not calls:
        return text
    *steps, last = calls
    if last["name"] not in ("ask", "recommend", "chitchat"):
        raise PlanError(f"the last call must be ask, recommend or chitchat, not {last['name']}")
    try:
        action = {"type": last["name"], **json.loads(last["arguments"] or "{}")}
        plan = [{"tool": c["name"], "args": json.loads(c["arguments"] or "{}")} for c in steps]
    except (ValueError, TypeError) as e:
        raise PlanError(f"tool call arguments are not a JSON object ({e})") from None
    return json.dumps({"action": action, "plan": plan})


SYSTEM = """You are a movie recommendation agent talking with a user. Each turn you write a \
JSON object. "action" is what you do:
{{"type": "ask", "attribute": one of {attributes}}} asks about a movie attribute;
{{"type": "recommend"}} shows the best {k} candidates left after the plan;
{{"type": "chitchat", "text": "..."}} says something else.
"plan" is a list of at most {max_steps} tool calls run in order on a shared candidate list \
before a recommendation (empty otherwise):
{tools}
Ask about an attribute the user has not stated yet. Recommend when you know enough or on the \
last turn, with a plan that retrieves candidates and then keeps those matching what the user \
said."""


@dataclass
class InteRecAgent:
    """Plan-first LLM strategy (see the module docstring). ``backend``: any
    :class:`~llmrec.llm.Backend`; ``general``: optional collaborative memory."""

    backend: Backend
    general: GeneralMemory | None = None
    max_tokens: int = 128
    temperature: float = 0.0
    max_steps: int = 2
    tools: tuple[str, ...] = PLAN_TOOLS
    memory_lines: int = 3
    constrain: str | None = None    # "grammar" (llama.cpp) | "json" (response_format) |
                                    # "tools" (native tool calling); None: grammar for the
                                    # local backend, json otherwise
    fallback: TreePolicy = field(default_factory=TreePolicy)
    name: str = "interec"

    def __post_init__(self) -> None:
        if self.constrain not in (None, "grammar", "json", "tools"):
            raise ValueError(f"constrain must be grammar, json, tools or None; got "
                             f"{self.constrain!r}")
        if self.max_tokens < 8 or self.max_steps < 0:
            raise ValueError(f"need max_tokens >= 8 and max_steps >= 0; got {self.max_tokens}, "
                             f"{self.max_steps}")

    def settings(self) -> dict[str, Any]:
        """What determined the strategy's behaviour (for config.json)."""
        return {"prompt": PROMPT_VERSION, "llm": self.backend.identity(),
                "max_tokens": self.max_tokens, "temperature": self.temperature,
                "max_steps": self.max_steps, "tools": list(self.tools),
                "general_memory": None if self.general is None else self.general.settings(),
                "memory_lines": self.memory_lines, "constrain": self.constrain}

    # ------------------------------------------------------------------ prompt
    def prompt(self, state: ChatState) -> list[dict[str, str]]:
        ctx = state.ctx
        cat = ctx.catalog
        system = SYSTEM.format(max_steps=self.max_steps, k=state.k, tools=tool_lines(self.tools),
                               attributes="|".join(cat.attributes))
        lines = [f"Turn {state.turn + 1} of {state.max_turns}"
                 + (" (the last one: recommend now)." if state.last_turn else ".")]
        if state.replies:
            last = state.replies[-1]
            lines.append(f"The user's last reply: {last.kind}"
                         + (f" about {last.attribute}" if last.attribute else "") + ".")
        lines += state_lines(state)
        lines.append(f"Known history: {len(ctx.history)} movies.")
        hint = search_hint(state)
        if hint:
            lines.append(f"A search step for what the user said: {hint}")
        if self.general is not None:
            seeds = [*ctx.liked[::-1], *ctx.history[::-1]]
            mem = self.general.lines(seeds, cat, self.memory_lines)
            if mem:
                lines.append("What other users liked:\n" + "\n".join(mem))
        lines.append("Write the JSON.")
        return [{"role": "system", "content": system},
                {"role": "user", "content": "\n".join(lines)}]

    # ------------------------------------------------------------------ execution
    def execute(self, state: ChatState, plan: dict[str, Any]) -> Action:
        """Run ``plan`` on a fresh bus (the whole catalogue) and return its action; a failed
        step or an empty bus raises :class:`PlanError`."""
        run_steps(state, plan["plan"])
        act = plan["action"]
        if act["type"] == "ask":
            return Ask(act["attribute"])
        if act["type"] == "chitchat":
            text = " ".join(act["text"].split()) or "Tell me more about what you like."
            return ChitChat(text.replace("[", "(").replace("]", ")"))
        return recommend_from_bus(state)

    def act(self, state: ChatState) -> Action:
        schema = plan_schema(state.ctx.catalog, self.tools, self.max_steps, state.known,
                             state.asked, state.last_turn)
        caller = JsonCaller(self.backend, self.constrain, self.temperature)
        action = caller.call(state, self.prompt(state), schema,
                             lambda plan: self.execute(state, plan), max_tokens=self.max_tokens,
                             role="plan", native=native_tools, from_calls=plan_from_calls)
        return action if action is not None else self.fallback.act(state)
