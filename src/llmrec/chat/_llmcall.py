"""What the LLM strategies (InteRecAgent, MACRS, ToolRec) share: schema-constrained JSON calls
with one repair and a fallback, the narrowed tool-step schemas, and the bus executor.

:meth:`JsonCaller.call` sends one chat request whose output is held to a JSON schema -- a
compact llama.cpp grammar on the local backend (:func:`compact_grammar`), ``response_format``
on OpenAI-compatible servers, or native tool calls where the strategy supports them -- then
parses it (:func:`parse_json`) and hands it to the strategy's ``use`` function (which may run
tools and raise :class:`PlanError`). A failure (LLM error, not JSON, not the schema, ``use``
failed) is retried once with the error in the prompt; a second failure returns ``None`` and
counts a fallback, and the strategy takes its safe action. Every call is logged on the
:class:`~llmrec.chat.ChatState` (``llm_calls``: ok, seconds, tokens, role; ``plans``: what was
tried), which is where chat-eval's LLM calls / tokens / latency / repairs / fallbacks come from.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ._catalog import Catalog
from ._messages import Action, Ask, Recommend, UserReply
from ._registry import TOOLS

if TYPE_CHECKING:
    from ..llm import Backend
    from ._policy import ChatState

T = TypeVar("T")
CONSTRAINTS = (None, "grammar", "json", "tools")


class PlanError(Exception):
    """An LLM output that cannot be used (the message goes back to the LLM)."""


def compact_grammar(schema: dict[str, Any]) -> str:
    """A llama.cpp (llguidance) grammar for ``schema`` with no optional whitespace: the
    schema-derived default lets a small model spend most of its tokens on indentation."""
    opts = {"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"}
    return "%llguidance {}\nstart: %json " + json.dumps({**schema, "x-guidance": opts})


def parse_json(text: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The object in ``text`` if it is JSON matching ``schema``; :class:`PlanError` otherwise."""
    import jsonschema

    try:
        obj = json.loads(text)
    except ValueError as e:
        raise PlanError(f"the output is not valid JSON ({e.msg} at char {e.pos})") from None
    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema)
                                           .iter_errors(obj))
    if err is not None:
        where = "/".join(str(p) for p in err.absolute_path) or "top level"
        raise PlanError(f"the plan does not match the schema at {where}: {err.message[:200]}")
    return obj


_HIDDEN = frozenset({"title_words", "scope", "item_ids"})


def narrow(name: str, schema: dict[str, Any], catalog: Catalog | None,
           known: dict[str, tuple[str, ...]], hidden: frozenset[str] = _HIDDEN
           ) -> dict[str, Any]:
    """A tool's argument schema narrowed for a small model: optional arguments lose their
    ``null`` branch (omit them instead), genres become an enum of the catalogue's genres,
    years and counts get bounds, director/actor only take values the user stated, and the
    ``hidden`` free-text arguments (title words, item ids, scope by default) are left out."""
    out: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
    required = []
    for arg, prop in schema.get("properties", {}).items():
        if arg in hidden:
            continue
        branches = [b for b in prop.get("anyOf", [prop]) if b.get("type") != "null"]
        p = {k: v for k, v in branches[0].items() if k not in ("default", "description")}
        if catalog is not None:
            if arg == "genres" and "genre" in catalog.attrs:
                p = {"type": "array", "items": {"enum": catalog.vocabulary("genre")},
                     "minItems": 1, "maxItems": 3}
            elif arg in ("director", "actor"):
                if not known.get(arg):
                    continue
                p = {"enum": list(known[arg])}
        if arg in ("year_min", "year_max"):
            p = {"type": "integer", "minimum": 1900, "maximum": 2030}
        elif arg in ("n", "top"):
            p = {"type": "integer", "minimum": 10, "maximum": 1000}
        elif arg == "title_words":
            p = {"type": "string", "minLength": 3, "maxLength": 40}
        out["properties"][arg] = p
        if arg in schema.get("required", []):
            required.append(arg)
    if required:
        out["required"] = required
    return out


def step_schemas(catalog: Catalog | None, tools: tuple[str, ...],
                 known: dict[str, tuple[str, ...]] | None = None,
                 hidden: frozenset[str] = _HIDDEN) -> list[dict[str, Any]]:
    """One ``{"tool": name, "args": {...}}`` schema per tool, arguments :func:`narrow`-ed."""
    known = known or {}
    return [{"type": "object",
             "properties": {"tool": {"const": name},
                            "args": narrow(name, TOOLS[name].json_schema(), catalog, known,
                                           hidden)},
             "required": ["tool", "args"], "additionalProperties": False} for name in tools]


def tool_lines(tools: tuple[str, ...]) -> str:
    """One prompt line per tool: its name, parameters and the first sentence of its doc."""
    out = []
    for name in tools:
        t = TOOLS[name]
        first = t.description.split(". ")[0].rstrip(".")
        out.append(f"- {name}({', '.join(t.params)}): {first}.")
    return "\n".join(out)


def search_hint(state: ChatState) -> str:
    """A ready search step built from the attribute values the user stated (a small model
    copies it more reliably than it composes arguments); empty when nothing was stated."""
    args: dict[str, Any] = {}
    for attr, vals in state.known.items():
        if not vals:
            continue
        if attr == "genre":
            args["genres"] = list(vals)
        elif attr == "decade" and vals[0][:4].isdigit():
            start = int(vals[0][:4])
            args["year_min"], args["year_max"] = start, start + 9
        elif attr in ("director", "actor"):
            args[attr] = vals[0]
    if not args:
        return ""
    return json.dumps({"tool": "search_items", "args": args})


def run_steps(state: ChatState, steps: list[dict[str, Any]]) -> None:
    """Run tool steps in order on a fresh bus (the whole catalogue); a failed step raises
    :class:`PlanError` with the tool's message."""
    from ._bus import CandidateBus

    ctx = state.ctx
    ctx.bus = CandidateBus.all_items(ctx.catalog.n_items)
    for step in steps:
        res = TOOLS[step["tool"]].call(ctx, step["args"])
        if not res.ok:
            raise PlanError(res.text)


def recommend_from_bus(state: ChatState) -> Recommend:
    """The bus's top ``k`` after seen/rejected items are excluded, ranked by retrieval score
    when the steps left it unranked; :class:`PlanError` when nothing is left."""
    ctx = state.ctx
    TOOLS["exclude_items"].call(ctx, {})
    if not len(ctx.bus):
        raise PlanError("no candidates are left to recommend; retrieve or search wider")
    if ctx.bus.scores is None:
        TOOLS["rank_candidates"].call(ctx, {})
    return Recommend(tuple(ctx.catalog.ids(ctx.bus.top(state.k))))


@dataclass
class JsonCaller:
    """Schema-constrained LLM calls with one repair (see the module docstring).
    ``constrain``: "grammar" (llama.cpp), "json" (``response_format``), "tools" (native tool
    calling; needs ``native`` and ``from_calls`` in :meth:`call`), None: grammar for the local
    backend, json otherwise."""

    backend: Backend
    constrain: str | None = None
    temperature: float = 0.0

    def __post_init__(self) -> None:
        if self.constrain not in CONSTRAINTS:
            raise ValueError(f"constrain must be grammar, json, tools or None; got "
                             f"{self.constrain!r}")

    @property
    def grammar(self) -> bool:
        return self.constrain == "grammar" or (self.constrain is None
                                               and self.backend.name == "local")

    def call(self, state: ChatState, messages: list[dict[str, str]], schema: dict[str, Any],
             use: Callable[[dict[str, Any]], T], *, max_tokens: int, role: str = "",
             native: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None,
             from_calls: Callable[[tuple[dict[str, str], ...], str], str] | None = None
             ) -> T | None:
        """``use(parsed output)``, or None (one fallback counted) after two failed tries."""
        from ..llm import Request

        if self.grammar:
            body: dict[str, Any] = {"extra": {"grammar": compact_grammar(schema)}}
        elif self.constrain == "tools" and native is not None:
            body = {"extra": {"tools": native(schema), "tool_choice": "required"}}
        else:
            body = {"json_schema": schema}
        for attempt in range(2):
            req = Request(tuple(messages), max_tokens=max_tokens, temperature=self.temperature,
                          **body)
            start = time.perf_counter()
            [res] = self.backend.generate([req], progress=False)
            state.llm_calls.append({"ok": res.ok, "role": role,
                                    "seconds": round(time.perf_counter() - start, 4),
                                    "prompt_tokens": getattr(res, "prompt_tokens", 0),
                                    "completion_tokens": getattr(res, "completion_tokens", 0)})
            text = res.text if res.ok else ""
            try:
                if not res.ok:
                    raise PlanError(f"the LLM call failed ({res.kind}: {res.message[:160]})")
                if from_calls is not None and "tools" in body.get("extra", {}):
                    text = from_calls(res.tool_calls, text)
                obj = parse_json(text, schema)
                value = use(obj)
                state.plans.append({"attempt": attempt, "role": role, "plan": obj, "ok": True})
                return value
            except PlanError as e:
                state.plans.append({"attempt": attempt, "role": role, "output": text[:400],
                                    "ok": False, "error": str(e)})
                if attempt == 0:
                    state.repairs += 1
                    messages = [*messages, {"role": "assistant", "content": text[:400] or "-"},
                                {"role": "user", "content": f"That plan failed: {e}. "
                                 "Write a corrected JSON."}]
        state.fallbacks += 1
        return None


def describe_reply(reply: UserReply) -> str:
    """A parsed user reply as a short line (the agent's reading, not the raw words)."""
    said = f"{reply.attribute}: {', '.join(reply.values) or 'does not know'}" \
        if reply.attribute else ""
    if reply.kind == "reject":
        return "rejected them" + (f"; {said}" if said else "")
    if reply.kind == "answer":
        return said
    return reply.kind


def describe_action(action: Action, catalog: Catalog, shown: int = 3) -> str:
    """An agent action as a short line (a recommendation: its first ``shown`` titles)."""
    if isinstance(action, Ask):
        return f"asked about the {action.attribute}"
    if isinstance(action, Recommend):
        titles = "; ".join(catalog.display(catalog.index(i)) for i in action.items[:shown])
        more = f" and {len(action.items) - shown} more" if len(action.items) > shown else ""
        return f"recommended {titles}{more}"
    return f"said {action.text!r}"


def state_lines(state: ChatState) -> list[str]:
    """What the user stated so far, the attributes not asked yet and how many recommended
    items were rejected, as prompt lines (every LLM strategy's prompt has them)."""
    said = [f"{a}: {', '.join(v) if v else 'does not know'}" for a, v in state.known.items()]
    missing = [a for a in state.ctx.catalog.attributes if a not in state.asked]
    lines = ["The user said: " + ("; ".join(said) if said else "nothing yet") + ".",
             "Not asked yet: " + (", ".join(missing) if missing else "none") + "."]
    if state.ctx.rejected:
        lines.append(f"{len(state.ctx.rejected)} recommended movies were rejected.")
    return lines


def context_lines(state: ChatState, actions: list[Action], history: int = 5,
                  exchanges: int = 4) -> list[str]:
    """What an LLM agent knows of the conversation, as prompt lines: the turn, the last
    ``exchanges`` (agent action, parsed user reply) pairs, the stated values, the attributes
    not asked yet, and the last ``history`` titles of the user's *training* history."""
    ctx, cat = state.ctx, state.ctx.catalog
    lines = [f"Turn {state.turn + 1} of {state.max_turns}"
             + (" (the last one)." if state.last_turn else ".")]
    pairs = list(zip(actions, state.replies))[-exchanges:]
    if pairs:
        lines.append("Dialogue so far:")
        lines += [f"- agent {describe_action(a, cat)}; user {describe_reply(r)}"
                  for a, r in pairs]
    lines += state_lines(state)
    if ctx.history and history:
        recent = [f"{cat.display(i)} ({', '.join(cat.values('genre', i)) or '-'})"
                  for i in ctx.history[-history:][::-1]] if "genre" in cat.attrs else \
            [cat.display(i) for i in ctx.history[-history:][::-1]]
        lines.append(f"The user's latest watched movies: {'; '.join(recent)}.")
    return lines
