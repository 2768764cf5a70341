"""MACRS (Fang et al. 2024, "A Multi-Agent Conversational Recommender System", arXiv 2402.01135).

Each agent turn three *responder* agents propose a reply, and a *planner* agent picks one::

    asking agent        {"attribute": "decade"}                         -> Ask("decade")
    recommending agent  {"plan": [{"tool": "search_items", "args": ...}]} -> Recommend(top k)
    chit-chat agent     {"text": "Tell me about a movie you loved!"}      -> ChitChat(...)
    planner             {"choice": 1}          (an enum of the candidates' indices)

Every call is an LLM call held to its JSON schema (the plumbing of
:class:`~llmrec.chat.InteRecAgent`: :class:`~llmrec.chat.JsonCaller`). The asking agent may only
name attributes not asked yet; the recommending agent writes a tool plan over the candidate
bus that is executed at once, so the planner sees how many candidates it left and their first
titles; the chit-chat agent's text is bounded. On the last turn only the recommending agent
speaks and no planner call is made (one candidate).

User-feedback-aware reflection, after a rejected recommendation (the next turn, before the
responders): an *information-level* reflection (LLM, genres constrained to the catalogue's)
updates the dialogue's memory of what the user likes and dislikes, shown to every agent from
then on; a *strategy-level* reflection (LLM, at most 120 characters) writes an instruction for
the planner, which sees the last :attr:`MACRS.max_notes` of them. All agents share one prompt
prefix (the dialogue so far), so llama.cpp reuses its KV cache across the turn's calls.

Failures never end a session: an output that fails is repaired once, then the agent's safe
action is taken -- the asking agent asks the attribute with the best split (the
:class:`~llmrec.chat.TreePolicy` rule), the recommending agent recommends the tree's
candidates, chit-chat says a fixed sentence, the planner takes the tree's action, and a failed
reflection writes a rule-based note (what the user said was wrong).

Deviations from the paper: GPT-3.5/Llama-2 there, SmolLM2-135M (or any OpenAI-compatible model)
here; the paper's responders write free text and the planner judges it by its own multi-step
reasoning -- here outputs are schema-constrained JSON, the recommending agent retrieves with
the project's tools (the paper's recommends from the LLM's knowledge over a candidate list),
and the planner picks one index. Reflection is triggered by a rejection only (the paper also
reflects on other feedback), and the strategy notes are bounded in number and length.
Native tool calling (``constrain="tools"``) is not offered; on OpenAI servers the schemas ride
in ``response_format``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ._llmcall import (CONSTRAINTS, JsonCaller, PlanError, context_lines, describe_action,
                       recommend_from_bus, run_steps, search_hint, step_schemas, tool_lines)
from ._messages import Action, Ask, ChitChat, Recommend
from ._policy import ChatState, TreePolicy, answer_entropy

if TYPE_CHECKING:
    from ..llm import Backend

PROMPT_VERSION = "macrs-v1"
RECOMMEND_TOOLS = ("retrieve_candidates", "search_items", "rank_candidates")
CHITCHAT = "Tell me more about the kind of movie you want to watch."

SYSTEM = """You are one agent in a team that helps a user find one movie in a conversation. \
Answer with JSON only."""

TASKS = {
    "asking": "You are the asking agent. Choose the attribute to ask the user about next: one "
              "they have not stated, whose answer narrows the movies most.",
    "recommending": "You are the recommending agent. Write a plan of at most {max_steps} tool "
                    "calls that gets candidate movies matching what the user said; the best "
                    "{k} are shown. Tools:\n{tools}{hint}",
    "chitchat": "You are the chit-chat agent. Write one short friendly sentence that invites "
                "the user to say more about the movie they want. Name no movie.",
    "planner": "You are the planner. Candidate replies:\n{candidates}\nPick the reply that "
               "best moves the user to a movie they accept: recommend when the candidates "
               "are few or time runs out, ask when little is known.{notes}",
    "information": "Reflect on the rejection: the user rejected {rejected}. Update what the "
                   "user likes and dislikes, as genres.",
    "strategy": "Reflect on the rejection: the recommendation at turn {turn} was rejected "
                "({why}). Write one short instruction for the planner to do better next.",
}


@dataclass
class MACRS:
    """Multi-agent CRS with a planner and reflection (see the module docstring)."""

    backend: Backend
    temperature: float = 0.0
    max_steps: int = 2
    max_notes: int = 2              # strategy notes the planner sees (latest first)
    note_chars: int = 120           # length bound of one strategy note
    max_tokens: dict[str, int] = field(default_factory=lambda: {
        "asking": 24, "recommending": 128, "chitchat": 48, "planner": 16,
        "information": 64, "strategy": 64})
    chitchat: bool = True           # propose a chit-chat reply (before the last turn)
    constrain: str | None = None    # "grammar" | "json" | None (see JsonCaller)
    fallback: TreePolicy = field(default_factory=TreePolicy)
    name: str = "macrs"

    def __post_init__(self) -> None:
        if self.constrain not in CONSTRAINTS or self.constrain == "tools":
            raise ValueError(f"macrs: constrain must be grammar, json or None; got "
                             f"{self.constrain!r}")
        if self.max_steps < 1 or self.max_notes < 1 or self.note_chars < 20:
            raise ValueError(f"macrs: need max_steps >= 1, max_notes >= 1, note_chars >= 20; "
                             f"got {self.max_steps}, {self.max_notes}, {self.note_chars}")
        self.caller = JsonCaller(self.backend, self.constrain, self.temperature)

    def settings(self) -> dict[str, Any]:
        """What determined the strategy's behaviour (for config.json)."""
        return {"prompt": PROMPT_VERSION, "llm": self.backend.identity(),
                "temperature": self.temperature, "max_steps": self.max_steps,
                "max_notes": self.max_notes, "note_chars": self.note_chars,
                "max_tokens": dict(self.max_tokens), "chitchat": self.chitchat,
                "constrain": self.constrain}

    # ------------------------------------------------------------------ prompts
    def memory(self, state: ChatState) -> dict[str, Any]:
        """The dialogue's MACRS memory: actions taken, reflected likes/dislikes, notes."""
        return state.scratch.setdefault("macrs", {"actions": [], "likes": [], "dislikes": [],
                                                  "notes": []})

    def _messages(self, state: ChatState, task: str) -> list[dict[str, str]]:
        mem = self.memory(state)
        lines = context_lines(state, mem["actions"])
        if mem["likes"] or mem["dislikes"]:
            lines.append(f"Reflected preferences: likes {', '.join(mem['likes']) or '-'}; "
                         f"dislikes {', '.join(mem['dislikes']) or '-'}.")
        lines += ["", task]
        return [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": "\n".join(lines)}]

    def _call(self, state: ChatState, role: str, schema: dict[str, Any], use: Any,
              **fmt: Any) -> Any:
        return self.caller.call(state, self._messages(state, TASKS[role].format(**fmt)), schema,
                                use, max_tokens=self.max_tokens[role], role=role)

    # ------------------------------------------------------------------ reflection
    def reflect(self, state: ChatState) -> None:
        """After a rejection: update likes/dislikes and add a strategy note (see the module
        docstring); a failed LLM reflection keeps the preferences and writes a rule note."""
        mem = self.memory(state)
        cat = state.ctx.catalog
        last = mem["actions"][-1]
        reply = state.replies[-1]
        if "genre" in cat.attrs:
            genres = cat.vocabulary("genre")
            pick = {"type": "array", "items": {"enum": genres}, "maxItems": 3}
            schema = {"type": "object", "properties": {"likes": pick, "dislikes": pick},
                      "required": ["likes", "dislikes"], "additionalProperties": False}

            def update(obj: dict[str, Any]) -> None:
                likes = list(dict.fromkeys([*obj["likes"], *mem["likes"]]))[:5]
                dislikes = list(dict.fromkeys([*obj["dislikes"], *mem["dislikes"]]))
                mem["likes"] = likes
                mem["dislikes"] = [g for g in dislikes if g not in likes][:5]

            self._call(state, "information", schema, update,
                       rejected=describe_action(last, cat, shown=5).removeprefix("recommended "))
        why = (f"the user said the {reply.attribute} is {', '.join(reply.values)}"
               if reply.attribute and reply.values else "the user gave no reason")
        schema = {"type": "object", "properties": {"instruction": {
            "type": "string", "minLength": 10, "maxLength": self.note_chars}},
            "required": ["instruction"], "additionalProperties": False}
        note = self._call(state, "strategy", schema,
                          lambda obj: " ".join(obj["instruction"].split())[:self.note_chars],
                          turn=state.turn, why=why)
        if not note or len(note) < 10:
            note = (f"Turn {state.turn} was rejected: {why}; ask about an attribute not "
                    f"stated yet before recommending again.")[:self.note_chars]
        mem["notes"] = [note, *mem["notes"]][:self.max_notes]

    # ------------------------------------------------------------------ responders
    def _tree_attribute(self, state: ChatState, attributes: list[str]) -> str:
        """The asking agent's fallback: the attribute whose answer splits the tree policy's
        candidates best."""
        self.fallback.candidates(state)
        bus = state.ctx.bus
        s = bus.scores - bus.scores.max()
        p = np.exp(s) / np.exp(s).sum()
        gains = {a: answer_entropy(state.ctx.catalog, a, bus.items, p) for a in attributes}
        return max(attributes, key=lambda a: (gains[a], -attributes.index(a)))

    def ask(self, state: ChatState, attributes: list[str]) -> Ask:
        schema = {"type": "object", "properties": {"attribute": {"enum": attributes}},
                  "required": ["attribute"], "additionalProperties": False}
        got = self._call(state, "asking", schema, lambda obj: Ask(obj["attribute"]))
        return got or Ask(self._tree_attribute(state, attributes))

    def recommend(self, state: ChatState) -> tuple[Recommend, int]:
        """The recommending agent's reply and how many candidates its plan left."""
        steps = step_schemas(state.ctx.catalog, RECOMMEND_TOOLS, state.known)
        schema = {"type": "object", "properties": {"plan": {
            "type": "array", "items": {"anyOf": steps}, "minItems": 1,
            "maxItems": self.max_steps}}, "required": ["plan"], "additionalProperties": False}

        def use(obj: dict[str, Any]) -> tuple[Recommend, int]:
            run_steps(state, obj["plan"])
            rec = recommend_from_bus(state)
            return rec, len(state.ctx.bus)

        hint = search_hint(state)
        got = self._call(state, "recommending", schema, use, max_steps=self.max_steps,
                         k=state.k, tools=tool_lines(RECOMMEND_TOOLS),
                         hint=f"\nA search step for what the user said: {hint}" if hint else "")
        if got is not None:
            return got
        self.fallback.candidates(state)
        return recommend_from_bus(state), len(state.ctx.bus)

    def chat(self, state: ChatState) -> ChitChat:
        schema = {"type": "object", "properties": {"text": {
            "type": "string", "minLength": 5, "maxLength": 100}},
            "required": ["text"], "additionalProperties": False}

        def use(obj: dict[str, Any]) -> ChitChat:
            text = " ".join(obj["text"].split()).replace("[", "(").replace("]", ")")
            if len(text) < 5:
                raise PlanError("the sentence is empty")
            return ChitChat(text)

        return self._call(state, "chitchat", schema, use) or ChitChat(CHITCHAT)

    # ------------------------------------------------------------------ the turn
    def candidates(self, state: ChatState) -> list[tuple[str, Action, str]]:
        """``(agent, action, how the planner sees it)`` for each responder that speaks."""
        cat = state.ctx.catalog
        out: list[tuple[str, Action, str]] = []
        attributes = [a for a in cat.attributes if a not in state.asked]
        if attributes and not state.last_turn:
            a = self.ask(state, attributes)
            out.append(("asking", a, f"ask about the {a.attribute}"))
        rec, left = self.recommend(state)
        seen = describe_action(rec, cat).replace("recommended", "recommend", 1)
        out.append(("recommending", rec, f"{seen} ({left} candidates matched)"))
        if self.chitchat and not state.last_turn:
            c = self.chat(state)
            out.append(("chit-chat", c, f"say {c.text!r}"))
        return out

    def plan(self, state: ChatState, options: list[tuple[str, Action, str]]) -> Action:
        """The planner's pick among ``options`` (no call when there is one)."""
        if len(options) == 1:
            return options[0][1]
        mem = self.memory(state)
        listed = "\n".join(f"{i}: the {agent} agent would {seen}"
                           for i, (agent, _, seen) in enumerate(options))
        notes = ("\nNotes from earlier rejections: " + " ".join(mem["notes"])
                 if mem["notes"] else "")
        schema = {"type": "object", "properties": {"choice": {"enum": list(range(len(options)))}},
                  "required": ["choice"], "additionalProperties": False}
        got = self._call(state, "planner", schema, lambda obj: options[obj["choice"]][1],
                         candidates=listed, notes=notes)
        return got if got is not None else self.fallback.act(state)

    def act(self, state: ChatState) -> Action:
        mem = self.memory(state)
        if state.replies and state.replies[-1].kind == "reject" and mem["actions"] \
                and isinstance(mem["actions"][-1], Recommend):
            self.reflect(state)
        action = self.plan(state, self.candidates(state))
        mem["actions"].append(action)
        return action
