"""What the agent and the user say to each other: actions, their text, and parsers of both sides.

The agent acts (:data:`Action`: :class:`Ask`, :class:`Recommend`, :class:`ChitChat`) and its
action is rendered to text; the simulated user reads that *text* (:func:`parse_agent`) and
answers in text, which the agent reads back (:func:`parse_reply`) into a :class:`UserReply`.
Both parsers are rule-based over a small phrase grammar::

    agent  "Which genres are you in the mood for?"            -> Ask("genre")
    agent  "How about these? [50] Star Wars (1977); [181] ..." -> Recommend(("50", "181", ...))
    user   "I'd like genre: Drama, Romance."                    -> answer genre (Drama, Romance)
    user   "I don't know the director."                          -> answer director ()
    user   "No, none of those. The decade is wrong; decade: 1970s." -> reject + decade (1970s)
    user   "Yes, one of those is what I wanted!"                -> accept
    user   "... I have to go now. Bye."                          -> (any kind) ends=True

The user's side has a few phrasings of each reply (to keep clear of the target's title words);
the parser reads them all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._catalog import ATTRIBUTES, Catalog


@dataclass(frozen=True)
class Ask:
    attribute: str


@dataclass(frozen=True)
class Recommend:
    items: tuple[str, ...]                 # raw item ids, best first


@dataclass(frozen=True)
class ChitChat:
    text: str


Action = Ask | Recommend | ChitChat

QUESTIONS = {
    "genre": "Which genres are you in the mood for?",
    "decade": "From which decade should the movie be?",
    "director": "Do you have a director in mind?",
    "actor": "Is there an actor you would like to see?",
}
_ASK_WORDS = {"genre": ("genre",), "decade": ("decade", "year", "era"),
              "director": ("director", "directed"), "actor": ("actor", "actress", "cast",
                                                              "starring")}


def render(action: Action, catalog: Catalog) -> str:
    """The agent's words for an action."""
    if isinstance(action, Ask):
        return QUESTIONS[action.attribute]
    if isinstance(action, Recommend):
        listed = "; ".join(f"[{i}] {catalog.display(catalog.index(i))}" for i in action.items)
        return f"How about these? {listed}"
    return action.text


def parse_agent(text: str) -> Action:
    """The user side's reading of an agent message (bracketed ids = a recommendation)."""
    ids = re.findall(r"\[([^\[\]\s]+)\]", text)
    if ids:
        return Recommend(tuple(ids))
    low = text.casefold()
    if "?" in low:
        for attr in ATTRIBUTES:
            if any(w in low for w in _ASK_WORDS[attr]):
                return Ask(attr)
    return ChitChat(text)


@dataclass(frozen=True)
class UserReply:
    """The agent's structured reading of one user utterance."""

    kind: str                              # answer | accept | reject | bye | other
    attribute: str | None = None           # answer: the asked one; reject: the one said wrong
    values: tuple[str, ...] = ()           # empty: the user does not know / will not say
    ends: bool = False                     # the user said goodbye
    # further (attribute, values) stated in the same utterance (free text: "a comedy from
    # the 90s"); the simulator's grammar states one attribute per reply
    also: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def stated(self) -> list[tuple[str, tuple[str, ...]]]:
        """Every (attribute, values) the utterance states, the main one first."""
        main = ([(self.attribute, self.values)]
                if self.attribute and (self.kind == "answer" or self.values) else [])
        return main + list(self.also)


# values end at ";" or at a "." that ends a sentence (ids such as m.06pj8 keep their dot)
_VALUE = re.compile(r"\b(genre|decade|director|actor):\s*(.*?)(?:;|\.(?=\s|$)|$)")


def parse_reply(text: str) -> UserReply:
    """Read a user utterance (see the module docstring's grammar)."""
    low = text.strip()
    m = _VALUE.search(low)
    attr = values = None
    if m:
        attr = m.group(1)
        values = tuple(v.strip() for v in m.group(2).split(",") if v.strip())
    else:
        dk = re.search(r"(?:don't know|not sure about) the (genre|decade|director|actor)", low)
        if dk:
            attr, values = dk.group(1), ()
    ends = bool(re.search(r"\b(Bye|Goodbye|I have to go|I'm done)\b", low))
    if re.match(r"Yes\b", low):
        return UserReply("accept", ends=ends)
    if re.match(r"No\b", low):
        return UserReply("reject", attr, values or (), ends)
    if attr is not None:
        return UserReply("answer", attr, values or (), ends)
    return UserReply("bye" if ends else "other", ends=ends)
