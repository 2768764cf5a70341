"""Prompt templates for fine-tuning (versioned TOML files) and the prompts built from them.

A template file (``templates/NAME.toml``) holds ``id``, ``version``, ``system``, ``user``,
``answer`` (text with ``{placeholders}``) and ``[params]`` (numbers the builders read). Its
``ref`` (``id@version``) goes into every fine-tuning run's JSON; raise ``version`` when the
meaning changes without the text.

User data reaches a prompt only through :class:`~llmrec.knowledge.TrainHistory` (the training
part of a split). Every builder returns the item indices it named, and each prompt is checked
with :meth:`TrainHistory.check` before it is returned: naming an item held out (valid/test) for
the user raises :class:`~llmrec.knowledge.LeakError`. For the next-item task the training
target is the user's *last training* item and the prompt the training items before it, so no
example of a run ever sees a held-out item (tests/lm/test_prompts.py checks every prompt).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..knowledge import Rendered, TrainHistory, read_template_fields

PACKAGED = ("next_item", "next_title", "preference", "lcrec_seq", "lcrec_item2index",
            "lcrec_index2item", "lcrec_fusion")
RATING_WORDS = {1: "hated", 2: "disliked", 3: "okay", 4: "liked", 5: "loved"}


@dataclass(frozen=True)
class PromptTemplate:
    """One fine-tuning prompt template (see the module docstring)."""

    id: str
    version: int
    system: str
    user: str
    answer: str
    params: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.version, int) or self.version < 1:
            raise ConfigError(f"{self.source or self.id}: version must be an integer >= 1")

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    def param(self, name: str) -> Any:
        try:
            return self.params[name]
        except KeyError:
            raise ConfigError(f"{self.source or self.id}: [params] has no {name!r}") from None

    def fill(self, part: str, fields: dict[str, Any]) -> str:
        text = getattr(self, part)
        for _, name, _, _ in string.Formatter().parse(text):
            if name is not None and name not in fields:
                raise ConfigError(f"{self.source or self.id}: unknown placeholder {{{name}}} in "
                                  f"{part}; available: {', '.join(sorted(fields))}")
        return text.format_map(fields)


@dataclass(frozen=True)
class Example:
    """One fine-tuning example: the loss falls on ``answer`` only. ``items``: the item indices
    the prompt names (for leakage checks); ``user``: whose history it was built from."""

    prompt: str
    answer: str
    system: str | None = None
    user: int | None = None
    items: tuple[int, ...] = ()


def read_prompt_template(path: str | Path, text: str | None = None) -> PromptTemplate:
    raw = read_template_fields(path, text, PromptTemplate,
                               {"id", "version", "system", "user", "answer"})
    return PromptTemplate(**raw, source=str(path))


def load_prompt_template(name_or_path: str | Path) -> PromptTemplate:
    """A packaged template by name (``next_item``, ``next_title``, ``preference``) or a TOML
    file."""
    if str(name_or_path) in PACKAGED:
        res = resources.files("llmrec.lm") / "templates" / f"{name_or_path}.toml"
        return read_prompt_template(f"llmrec/lm/templates/{name_or_path}.toml",
                                    res.read_text(encoding="utf-8"))
    path = Path(name_or_path)
    if not path.suffix == ".toml":
        raise ConfigError(f"unknown prompt template {str(name_or_path)!r}; packaged: "
                          f"{', '.join(PACKAGED)}, or a path to a .toml file")
    return read_prompt_template(path)


def _item_line(history: TrainHistory, item: int, rating: float, with_rating: bool) -> str:
    title = history.titles[item]
    if not with_rating or np.isnan(rating):
        return title
    word = RATING_WORDS.get(int(rating), f"{rating:g}") if float(rating).is_integer() \
        else f"{rating:g}"
    return f"{title}: {word}"


def history_prompt(history: TrainHistory, user: int, template: PromptTemplate,
                   upto: int | None = None) -> Rendered:
    """The user text of ``template`` for ``user``: the last ``max_items`` of the user's
    training items before position ``upto`` (default: all of them). Checked for leakage."""
    items, ratings = history.items(user), history.ratings(user)
    stop = len(items) if upto is None else upto
    start = max(0, stop - int(template.param("max_items")))
    shown, rated = items[start:stop], ratings[start:stop]
    with_rating = bool(template.params.get("ratings", False))
    lines = [_item_line(history, int(i), float(r), with_rating)
             for i, r in zip(shown.tolist(), rated.tolist())]
    text = template.fill("user", {"history": "\n".join(lines), "scenario": history.scenario})
    rendered = Rendered(text, tuple(int(i) for i in shown))
    history.check([user], rendered)
    return rendered


def next_item_examples(history: TrainHistory, template: PromptTemplate,
                       users: list[int] | np.ndarray | None = None) -> list[Example]:
    """One example per user with >= 2 training items: the training items before the last one
    -> the last training item's title (the held-out items stay for evaluation)."""
    system = template.fill("system", {"scenario": history.scenario})
    out = []
    for u in (history.users_with_history() if users is None else users):
        items = history.items(int(u))
        if len(items) < 2:
            continue
        rendered = history_prompt(history, int(u), template, upto=len(items) - 1)
        target = int(items[-1])
        answer = template.fill("answer", {"title": history.titles[target]})
        history.check([int(u)], Rendered(answer, (target,)))
        out.append(Example(rendered.text, answer, system, int(u), rendered.items + (target,)))
    return out


def recommendation_prompts(history: TrainHistory, template: PromptTemplate,
                           users: list[int] | np.ndarray | None = None) -> list[Example]:
    """Prompts over each user's whole training history (to predict the held-out items);
    ``answer`` is empty."""
    system = template.fill("system", {"scenario": history.scenario})
    out = []
    for u in (history.users_with_history() if users is None else users):
        rendered = history_prompt(history, int(u), template)
        out.append(Example(rendered.text, "", system, int(u), rendered.items))
    return out


def titles_prompt(template: PromptTemplate, titles: list[str], scenario: str = "movie"
                  ) -> tuple[str, str]:
    """(system, user) text of ``template`` over a list of history titles, oldest first (the
    last ``max_items`` are shown). For callers that hold an item sequence rather than a
    :class:`TrainHistory` (a recommender scoring the history the evaluator passes it); the
    caller is responsible for the titles coming from the user's own history."""
    shown = titles[len(titles) - min(len(titles), int(template.param("max_items"))):]
    system = template.fill("system", {"scenario": scenario})
    return system, template.fill("user", {"history": "\n".join(shown), "scenario": scenario})
