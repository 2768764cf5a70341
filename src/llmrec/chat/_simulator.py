"""A rule-based simulated user with a hidden target, and the leak check around it.

:class:`SimulatedUser` stands for one test user of the project's split: it knows a hidden
target (the user's real test item) and reads agent messages as text. It answers questions
truthfully from the target's attributes in the :class:`Catalog` (every genre of the target, or
a random ``max_values`` of them; one actor), accepts a recommendation iff
the target is in the list, and after a miss says that none of the items fit and which attribute
the list got most wrong, with the target's true value. After ``max_turns`` agent turns it says
goodbye. It never names the target: values that would repeat a distinctive word of the target's
title are held back.

:class:`LeakChecker` is the independent check (arXiv 2403.16416: simulators leak the target):
it flags an utterance that contains the target's title, its raw id as a token, or a distinctive
word of its title (a word not a stop word and rare across the catalogue's titles), all after
normalising case, accents, punctuation and a trailing year. :class:`CheckedUser` wraps a user's
``reply`` (not the agent) and counts what the checker flags.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ._catalog import Catalog, normalize, title_core, words
from ._messages import Ask, ChitChat, Recommend, parse_agent

STOPWORDS = frozenset("""a an the and or of in on at to for from with by as is it its be are was
were this that these those my your our his her their me you we he she they i not no yes do does
did so too very can will just but if then than there here what which who whom how when where why
all any some one two la le les el los las de del der die das des du et und ii iii iv s t""".split())


def title_document_frequency(titles: Sequence[str]) -> Counter[str]:
    """In how many titles each normalised word appears (:meth:`Catalog.title_df` caches it)."""
    return Counter(w for t in titles for w in set(words(title_core(t))))


def distinctive_words(title: str, df: Counter[str], n_titles: int,
                      max_share: float = 0.005, min_count: int = 3) -> set[str]:
    """Words of ``title`` that would point at it: not stop words, not 1-character, not short
    numbers (``2`` in a sequel), and in at most ``max(min_count, max_share * n_titles)``
    catalogue titles."""
    limit = max(min_count, max_share * n_titles)
    out = set()
    for w in words(title_core(title)):
        if w in STOPWORDS or len(w) < 2 or (w.isdigit() and len(w) < 3):
            continue
        if df.get(w, 0) <= limit:
            out.add(w)
    return out


class LeakChecker:
    """Finds traces of one target item in a text (see the module docstring)."""

    def __init__(self, title: str, item_id: str, df: Counter[str], n_titles: int) -> None:
        self.title = title_core(title)
        self.item_id = normalize(str(item_id))
        self.words = distinctive_words(title, df, n_titles)

    @classmethod
    def for_item(cls, catalog: Catalog, item: int,
                 df: Counter[str] | None = None) -> LeakChecker:
        df = df if df is not None else catalog.title_df()
        return cls(catalog.titles[item], catalog.item_ids[item], df, catalog.n_items)

    def leaks(self, text: str) -> list[str]:
        """Why ``text`` leaks the target (empty list: it does not)."""
        norm = f" {normalize(text)} "
        tokens = set(norm.split())
        found = []
        title_tokens = self.title.split()
        if self.title and (len(title_tokens) > 1 or self.words) and f" {self.title} " in norm:
            found.append(f"title {self.title!r}")
        if self.item_id and self.item_id in tokens:
            found.append(f"id {self.item_id!r}")
        found += [f"title word {w!r}" for w in sorted(self.words & tokens)]
        return found


@dataclass
class SimulatedUser:
    """One test user (see the module docstring); ``reply(agent_message) -> str``."""

    catalog: Catalog
    target: int                             # item index, hidden from the agent
    history: list[int]                      # the user's training history (item indices)
    max_turns: int = 5
    seed: int = 0
    max_values: int | None = None           # name at most this many values (a random subset)
    turn: int = 0
    done: bool = False
    accepted: bool = False
    avoid: set[str] | None = None           # words never to say (default: distinctive words)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng([self.seed, self.target])
        if self.avoid is None:
            df = self.catalog.title_df()
            self.avoid = distinctive_words(self.catalog.titles[self.target], df,
                                           self.catalog.n_items)

    def _say(self, attribute: str) -> tuple[str, ...]:
        """The target's values of ``attribute`` that are safe to say (one actor, at random)."""
        vals = self.catalog.values(attribute, self.target) if attribute in self.catalog.attrs \
            else ()
        vals = tuple(v for v in vals if not (set(words(v)) & self.avoid))
        limit = 1 if attribute == "actor" else self.max_values
        if limit is not None and len(vals) > limit:
            pick = sorted(self.rng.choice(len(vals), size=limit, replace=False).tolist())
            vals = tuple(vals[i] for i in pick)
        return vals

    def _phrase(self, *options: str) -> str:
        """The first option with no word of the target's title (the last one else)."""
        for text in options:
            if not set(words(text)) & self.avoid:
                return text
        return options[-1]

    def _answer(self, attribute: str) -> str:
        vals = self._say(attribute)
        if not vals:
            return self._phrase(f"I don't know the {attribute}.",
                                f"Not sure about the {attribute}.")
        said = f"{attribute}: {', '.join(vals)}."
        return self._phrase(f"I'd like {said}", f"I want {said}", said)

    def _wrong(self, items: list[int]) -> str:
        """The attribute the recommended items match least often, with the target's value."""
        best, best_share, said = None, 2.0, {}
        for attr in ("genre", "decade", "director"):
            vals = said[attr] = self._say(attr) if attr in self.catalog.attrs else ()
            if not vals:
                continue
            share = float(np.mean(self.catalog.has_all(np.array(items), attr, vals)))
            if share < best_share:
                best, best_share = attr, share
        no = self._phrase("No, none of those are what I want.", "No, none of those.", "No.")
        if best is None or best_share >= 1.0:
            return no
        return no + " " + self._phrase(f"The {best} is wrong; {best}: ",
                                       f"Another {best}; {best}: ",
                                       f"{best}: ") + ", ".join(said[best]) + "."

    def reply(self, agent_message: str) -> str:
        if self.done:
            return "Bye."
        self.turn += 1
        action = parse_agent(agent_message)
        if isinstance(action, Recommend):
            items = []
            for raw in action.items:
                try:
                    items.append(self.catalog.index(raw))
                except KeyError:
                    continue
            if self.target in items:
                self.done = self.accepted = True
                return self._phrase("Yes, one of those is what I wanted!", "Yes, got it!",
                                    "Yes!")
            text = self._wrong(items) if items else self._phrase("No, I don't know those.",
                                                                 "No.")
        elif isinstance(action, Ask):
            text = self._answer(action.attribute)
        else:
            assert isinstance(action, ChitChat)
            text = self._phrase("Sure. Just help me find a movie, please.", "Sure. Go on.",
                                "Sure.")
        if self.turn >= self.max_turns:
            self.done = True
            text += " " + self._phrase("I have to go now. Bye.", "I have to go. Goodbye.",
                                       "Bye.", "I'm done.")
        return text


@dataclass
class CheckedUser:
    """A user's ``reply`` behind a :class:`LeakChecker`; ``leaks`` lists what it flagged."""

    user: SimulatedUser
    checker: LeakChecker
    leaks: list[tuple[int, str, list[str]]] = field(default_factory=list)

    def reply(self, agent_message: str) -> str:
        text = self.user.reply(agent_message)
        found = self.checker.leaks(text)
        if found:
            self.leaks.append((self.user.turn, text, found))
        return text

    @property
    def done(self) -> bool:
        return self.user.done
