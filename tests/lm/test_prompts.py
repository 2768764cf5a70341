"""Fine-tuning prompts: versioned template files, and the leakage rule over every prompt of a
run on the real ML-100K -- no prompt or answer about a user names an item held out (valid or
test) for that user. Held-out items are computed here from ``split.part`` directly; a
negative control builds the same prompts from the *full* histories and shows the check
catches them, so the test can fail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmrec.data import Preprocessing, Split, leave_one_out, load_dataset
from llmrec.errors import ConfigError
from llmrec.knowledge import LeakError, Rendered, TrainHistory
from llmrec.lm import (PACKAGED, Example, load_prompt_template, next_item_examples,
                       recommendation_prompts)


@pytest.fixture(scope="module")
def ml100k_split(ml100k):
    ds = load_dataset("ml-100k", preprocessing=Preprocessing(user_core=5, item_core=5))
    return ds, leave_one_out(ds.interactions)


def held_out(split: Split) -> list[set[int]]:
    inter = split.interactions
    train = [set() for _ in range(inter.n_users)]
    other = [set() for _ in range(inter.n_users)]
    for u, i, p in zip(inter.user.tolist(), inter.item.tolist(), split.part.tolist()):
        (train if p == 0 else other)[u].add(i)
    return [o - t for o, t in zip(other, train)]


def leaks(examples: list[Example], titles: list[str], hidden: list[set[int]]) -> list[str]:
    """(user, title) of every held-out title found in a prompt or an answer about the user;
    titles that occur inside another title are skipped (ambiguous)."""
    ambiguous = {i for i, t in enumerate(titles)
                 if any(j != i and t in s for j, s in enumerate(titles))}
    found = []
    for ex in examples:
        text = f"{ex.system}\n{ex.prompt}\n{ex.answer}"
        found += [f"user {ex.user}: {titles[i]}" for i in hidden[ex.user]
                  if i not in ambiguous and titles[i] in text]
    return found


def test_packaged_templates_are_versioned() -> None:
    for name in PACKAGED:
        t = load_prompt_template(name)
        assert t.ref == f"{name}@1" and t.source == f"llmrec/lm/templates/{name}.toml"


def test_bad_templates_are_one_clear_error(tmp_path: Path) -> None:
    good = 'id = "x"\nversion = 1\nsystem = "s"\nuser = "{history}"\nanswer = "{title}"\n'
    cases = {"unknown key 'colour'": good + 'colour = "red"\n',
             "missing key 'answer'": good.replace('answer = "{title}"\n', ""),
             "version must be": good.replace("version = 1", "version = 0"),
             "invalid TOML": "id = \n"}
    for message, text in cases.items():
        (tmp_path / "t.toml").write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_prompt_template(tmp_path / "t.toml")
    with pytest.raises(ConfigError, match="unknown prompt template 'nope'"):
        load_prompt_template("nope")
    (tmp_path / "t.toml").write_text(good.replace("{history}", "{histroy}"))
    with pytest.raises(ConfigError, match=r"unknown placeholder \{histroy\}"):
        load_prompt_template(tmp_path / "t.toml").fill("user", {"history": ""})


def test_no_prompt_of_a_run_names_a_held_out_item(ml100k_split) -> None:
    ds, split = ml100k_split
    history = TrainHistory(ds, split, "movie")
    template = load_prompt_template("next_item")
    train_set = next_item_examples(history, template)      # what fine-tuning sees
    eval_set = recommendation_prompts(history, template)   # what the tuned model is asked
    users = history.users_with_history()
    assert len(train_set) == len(users) == ds.n_users and len(eval_set) == len(users)
    hidden = held_out(split)
    assert sum(map(len, hidden)) >= 2 * ds.n_users - 50    # leave-one-out: ~2 per user
    assert leaks(train_set + eval_set, history.titles, hidden) == []
    # the prompts are not vacuous: the most recent training item is the answer / in the prompt
    for ex in train_set[:50]:
        items = history.items(ex.user)
        assert ex.answer == history.titles[items[-1]]
        assert history.titles[items[-2]] in ex.prompt
        assert ex.items == tuple(int(i) for i in items[-11:])   # 10 shown + the answer
    for ex in eval_set[:50]:
        assert history.titles[history.items(ex.user)[-1]] in ex.prompt
        assert ex.prompt.count("\n") == 10 + 1              # max_items lines + the question


def test_the_check_catches_a_builder_that_uses_the_full_history(ml100k_split) -> None:
    """Negative control: the same builders over a split that calls every event training (the
    full histories) name held-out items -- the leak check above would fail on them."""
    ds, split = ml100k_split
    everything = Split(split.interactions, np.zeros(len(split.part), np.int8), "all-train")
    full = TrainHistory(ds, everything, "movie")
    template = load_prompt_template("next_item")
    bad = recommendation_prompts(full, template)
    found = leaks(bad, full.titles, held_out(split))
    assert len(found) > 0.5 * ds.n_users                   # most users' test item shows up


def test_the_builder_refuses_to_render_a_held_out_item(ml100k_split) -> None:
    ds, split = ml100k_split
    history = TrainHistory(ds, split, "movie")
    u = int(history.users_with_history()[0])
    item = int(next(iter(held_out(split)[u])))
    with pytest.raises(LeakError, match="held-out item"):
        history.check([u], Rendered(history.titles[item], (item,)))
