"""One live conversation with a person: what ``llmrec chat`` and the web chat panel run.

A :class:`ChatSession` holds a :class:`ChatState` over a :class:`ChatWorld` and a
:class:`Strategy` (the same objects the simulated-user evaluation plays), and turns typed text
into the agent's next message::

    >>> s = ChatSession(world, TreePolicy(), user="196")           # doctest: +SKIP
    >>> s.start().text                       # "Hi! ... Which genres are you in the mood for?"
    >>> turn = s.say("a comedy from the 90s")                       # doctest: +SKIP
    >>> turn.understood, [c["title"] for c in turn.items]          # doctest: +SKIP
    ({'genre': ['Comedy'], 'decade': ['1990s']}, ['...', ...])

The person's words are read by :func:`~llmrec.chat.understand` (free text, or the simulator's
grammar); the reading updates the state exactly as a simulated reply does
(:meth:`ChatState.observe`: stated values become search conditions, a "no" after a list
rejects its items). ``user``: a test user of the run's split; the agent sees that user's known
history (everything before the held-out test item), as the evaluation does. With an
:class:`EntityMemory`, the session starts from what the user said in earlier sessions and
stores what it learns, one transaction per turn.

A session serialises to a small JSON-able dict (:meth:`ChatSession.to_dict`,
:meth:`ChatSession.from_dict`), so a web server can keep it in a shared store between requests.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..errors import LlmrecError
from ._bus import CandidateBus
from ._evaluate import ChatWorld, memory_entries, recall
from ._freetext import understand
from ._memory import EntityMemory
from ._messages import QUESTIONS, Action, Ask, ChitChat, Recommend, UserReply
from ._policy import ChatState, Strategy
from ._tools import ChatContext


class UnknownUser(LlmrecError):
    """The user id is not a test user of the run's split."""


@dataclass
class ChatTurn:
    """The agent's side of one exchange."""

    text: str                                   # the agent's words (the items come apart)
    kind: str                                   # ask | recommend | chitchat | bye
    items: list[dict[str, Any]] = field(default_factory=list)   # item_id, title, year, genres
    understood: dict[str, list[str]] = field(default_factory=dict)  # what the user said
    reply_kind: str | None = None               # answer | accept | reject | other | bye
    done: bool = False                          # the conversation is over
    turn: int = 0
    wishes: dict[str, list[str]] = field(default_factory=dict)  # every value stated so far

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "kind": self.kind, "items": self.items,
                "understood": self.understood, "reply_kind": self.reply_kind,
                "wishes": self.wishes, "done": self.done, "turn": self.turn}


def user_history(world: ChatWorld, user: str) -> list[int]:
    """The known history (item indices) of a test user; :class:`UnknownUser` otherwise."""
    history = world.known_history(user)
    if history is None:
        some = [u for u, _, _ in world.test_users()[:3]]
        raise UnknownUser(f"user {user!r} is not a test user of {world.dataset.name} "
                          f"(e.g. {', '.join(some)})")
    return history


def _action_dict(action: Action | None) -> dict[str, Any] | None:
    if isinstance(action, Ask):
        return {"type": "ask", "attribute": action.attribute}
    if isinstance(action, Recommend):
        return {"type": "recommend", "items": list(action.items)}
    if isinstance(action, ChitChat):
        return {"type": "chitchat", "text": action.text}
    return None


def _action(d: dict[str, Any] | None) -> Action | None:
    if d is None:
        return None
    if d["type"] == "ask":
        return Ask(d["attribute"])
    if d["type"] == "recommend":
        return Recommend(tuple(d["items"]))
    return ChitChat(d["text"])


class ChatSession:
    """A conversation with a person (see the module docstring)."""

    def __init__(self, world: ChatWorld, strategy: Strategy, *, user: str | None = None,
                 k: int = 5, max_turns: int = 20, memory: EntityMemory | None = None,
                 session_id: str | None = None) -> None:
        if k < 1 or max_turns < 1:
            raise ValueError(f"k and max_turns must be at least 1 (got {k}, {max_turns})")
        if memory is not None and user is None:
            raise LlmrecError("the entity memory is per user: give a user")
        self.world, self.strategy, self.memory = world, strategy, memory
        self.user = user
        self.id = session_id or uuid.uuid4().hex
        cat = world.catalog
        history = user_history(world, user) if user is not None else []
        ctx = ChatContext(cat, world.retriever, CandidateBus.all_items(cat.n_items), history,
                          knowledge=world.knowledge.get if world.knowledge else None)
        self.state = ChatState(ctx, k=k, max_turns=max_turns)
        self.last: Action | None = None
        self.done = False
        self.created = self.active = time.time()
        self.recalled: dict[str, tuple[str, ...]] = {}
        self.recalled_rejects = 0

    # ------------------------------------------------------------------ conversation
    def start(self) -> ChatTurn:
        """The agent's opening message (with memory: after recalling earlier sessions)."""
        if self.memory is not None and self.user is not None:
            before = set(self.state.ctx.rejected)
            recall(self.memory, self.user, self.state)
            self.recalled = dict(self.state.known)
            self.recalled_rejects = len(self.state.ctx.rejected - before)
        cat = self.world.catalog
        hello = [f"Hi! I recommend movies from {self.world.dataset.name} "
                 f"({cat.n_items} titles)."]
        if self.user is not None:
            hello.append(f"I know the {len(self.state.ctx.history)} movies you rated before.")
        if self.recalled:
            said = "; ".join(f"{a} {', '.join(v)}" for a, v in self.recalled.items() if v)
            if said:
                hello.append(f"Last time you liked: {said}.")
        if self.recalled_rejects:
            hello.append(f"I will leave out the {self.recalled_rejects} movies you turned "
                         "down before.")
        return self._act(" ".join(hello) + " ", None)

    def say(self, text: str) -> ChatTurn:
        """The agent's answer to one message of the person."""
        if self.done:
            raise LlmrecError("this conversation is over; start a new one")
        self.active = time.time()
        state = self.state
        reply = understand(text, self.world.catalog,
                           asked=self.last.attribute if isinstance(self.last, Ask) else None,
                           after_recommendation=isinstance(self.last, Recommend))
        last = self.last if self.last is not None else ChitChat("")
        state.observe(last, reply)
        if self.memory is not None and self.user is not None:
            self.memory.record(self.user, self.id, state.turn, memory_entries(last, reply))
        if reply.ends:
            return self._end("Bye! Come back any time.", reply)
        if state.turn >= state.max_turns:
            return self._end(f"That was the last of this conversation's {state.max_turns} "
                             "turns; start a new one for more.", reply)
        if reply.kind == "accept":
            return self._act("", reply, ChitChat("Glad to help, enjoy! Tell me if you would "
                                                 "like something else."))
        prefix = ""
        if reply.kind == "other":
            prefix = ("I did not catch a genre or a decade there (try e.g. \"a comedy from "
                      "the 90s\"). ")
        elif reply.kind == "reject" and not reply.stated():
            prefix = "Understood, none of those. "
        return self._act(prefix, reply)

    def _act(self, prefix: str, reply: UserReply | None,
             action: Action | None = None) -> ChatTurn:
        if action is None:
            action = self.strategy.act(self.state)
        self.last = action
        cat = self.world.catalog
        understood = {a: list(v) for a, v in reply.stated()} if reply is not None else {}
        base = dict(understood=understood, reply_kind=reply.kind if reply else None,
                    turn=self.state.turn, wishes=self.wishes())
        if isinstance(action, Ask):
            examples = cat.vocabulary(action.attribute)[:6] if action.attribute in cat.attrs \
                else []
            eg = f" (e.g. {', '.join(v for v in examples if v != 'unknown')})" \
                if action.attribute in ("genre", "decade") and examples else ""
            return ChatTurn(prefix + QUESTIONS[action.attribute] + eg, "ask", **base)
        if isinstance(action, Recommend):
            if not action.items:
                return ChatTurn(prefix + "Nothing is left that fits; try other wishes.",
                                "chitchat", **base)
            items = [self.card(cat.index(i)) for i in action.items]
            return ChatTurn(prefix + "How about these?", "recommend", items, **base)
        return ChatTurn(prefix + action.text, "chitchat", **base)

    def _end(self, text: str, reply: UserReply) -> ChatTurn:
        self.done = True
        self.last = ChitChat(text)
        return ChatTurn(text, "bye", understood={a: list(v) for a, v in reply.stated()},
                        reply_kind=reply.kind, done=True, turn=self.state.turn,
                        wishes=self.wishes())

    def wishes(self) -> dict[str, list[str]]:
        """The attribute values stated so far (what the candidates are narrowed by)."""
        return {a: list(v) for a, v in self.state.known.items() if v}

    def card(self, i: int) -> dict[str, Any]:
        """What is shown of item index ``i``."""
        cat = self.world.catalog
        year = int(cat.years[i])
        return {"item_id": cat.item_ids[i], "title": cat.titles[i], "year": year or None,
                "genres": list(cat.values("genre", i)) if "genre" in cat.attrs else []}

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """Everything needed to continue the conversation elsewhere (JSON-able)."""
        st, cat = self.state, self.world.catalog
        return {"id": self.id, "user": self.user, "k": st.k, "max_turns": st.max_turns,
                "turn": st.turn, "known": {a: list(v) for a, v in st.known.items()},
                "asked": sorted(st.asked), "rejected": cat.ids(sorted(st.ctx.rejected)),
                "liked": cat.ids(st.ctx.liked),
                "replies": [{"kind": r.kind, "attribute": r.attribute,
                             "values": list(r.values), "ends": r.ends,
                             "also": [[a, list(v)] for a, v in r.also]} for r in st.replies],
                "last": _action_dict(self.last), "done": self.done,
                "created": self.created, "active": self.active}

    @classmethod
    def from_dict(cls, world: ChatWorld, strategy: Strategy, data: dict[str, Any],
                  memory: EntityMemory | None = None) -> ChatSession:
        s = cls(world, strategy, user=data["user"], k=data["k"], max_turns=data["max_turns"],
                memory=memory, session_id=data["id"])
        st, cat = s.state, world.catalog
        st.turn = data["turn"]
        st.known = {a: tuple(v) for a, v in data["known"].items()}
        st.asked = set(data["asked"])
        st.ctx.rejected = {cat.index(i) for i in data["rejected"]}
        st.ctx.liked = [cat.index(i) for i in data["liked"]]
        st.replies = [UserReply(r["kind"], r["attribute"], tuple(r["values"]), r["ends"],
                                tuple((a, tuple(v)) for a, v in r["also"]))
                      for r in data["replies"]]
        s.last, s.done = _action(data["last"]), data["done"]
        s.created, s.active = data["created"], data["active"]
        return s
