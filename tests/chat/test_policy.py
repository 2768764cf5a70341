"""Strategies over the real catalogue: the tree policy beats the top-k floor, never repeats a
rejected item, asks the attribute that splits best; the entropy on a hand-computed case."""

from __future__ import annotations

import math

import numpy as np

from llmrec.chat import (Catalog, TopKPolicy, TreePolicy, answer_entropy, evaluate,
                         parse_reply, run_episode)

USERS = 40


def test_tree_policy_beats_the_topk_floor(world):
    users = [u for u, _, _ in world.test_users()[:USERS]]
    tree = evaluate(world, TreePolicy(), users, max_turns=5, k=10, progress=False)
    topk = evaluate(world, TopKPolicy(), users, max_turns=5, k=10, progress=False)
    assert tree["leaks"] == 0 and topk["leaks"] == 0
    assert tree["hit"]["5"] >= topk["hit"]["5"] + 0.2, (tree["hit"], topk["hit"])
    assert tree["average_turns"] < topk["average_turns"]
    assert tree["tool_calls_per_dialogue"]["search_items"] > 0
    assert set(topk["tool_calls_per_dialogue"]) == {"retrieve_candidates"}


def test_rejected_items_are_never_recommended_again(world):
    for strategy in (TreePolicy(), TopKPolicy()):
        for user, history, target in world.test_users()[:15]:
            ep = run_episode(world, strategy, user, history, target, max_turns=5, k=10)
            shown = [i for line in ep["transcript"] for i in line["items"]]
            assert len(shown) == len(set(shown)), (strategy.name, user)
            assert not set(world.catalog.ids(history)) & set(shown)


def test_the_first_question_is_the_best_split(world):
    user, history, target = world.test_users()[0]
    ep = run_episode(world, TreePolicy(confidence=1.0), user, history, target, max_turns=5)
    assert ep["transcript"][0]["text"] == "Which genres are you in the mood for?"


def test_answer_entropy_on_a_hand_computed_case():
    cat = Catalog(["a", "b", "c", "d"], ["A", "B", "C", "D"], np.array([1995, 1995, 1985, 0]),
                  {"genre": [("Drama",), ("Drama",), ("Comedy",), ("Comedy", "Drama")],
                   "decade": [("1990s",), ("1990s",), ("1980s",), ()],
                   "actor": [("x", "y"), ("x",), (), ("z",)]})
    items = np.arange(4)
    w = np.array([0.25, 0.25, 0.25, 0.25])
    h = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert math.isclose(answer_entropy(cat, "genre", items, w), h)
    assert math.isclose(answer_entropy(cat, "decade", items, w), h)
    # actors: x .125+.25, y .125, unknown .25, z .25
    q = np.array([0.375, 0.125, 0.25, 0.25])
    assert math.isclose(answer_entropy(cat, "actor", items, w), float(-(q * np.log(q)).sum()))
    assert answer_entropy(cat, "genre", items[:2], w[:2]) == 0.0


def test_with_kg_attributes_the_tree_asks_about_people_and_hears_the_truth(kg_world):
    cat = kg_world.catalog
    people = 0
    for user, history, target in kg_world.test_users()[:20]:
        ep = run_episode(kg_world, TreePolicy(confidence=1.0), user, history, target,
                         max_turns=5, k=10)
        assert ep["leaks"] == 0 and ep["failed_tool_calls"] == 0, ep["transcript"]
        lines = ep["transcript"]
        for ask, answer in zip(lines[::2], lines[1::2]):
            if ask["text"] == "Do you have a director in mind?":
                people += 1
                said = answer["text"].removeprefix("I'd like director: ").rstrip(".")
                if "don't know" not in answer["text"]:
                    assert set(said.split(", ")) == set(cat.values("director", target))
                    assert parse_reply(answer["text"]).values == cat.values("director", target)
            elif ask["text"] == "Is there an actor you would like to see?":
                people += 1
                if "don't know" not in answer["text"]:
                    actor = answer["text"].removeprefix("I'd like actor: ").rstrip(".")
                    assert actor in cat.values("actor", target)
                    assert parse_reply(answer["text"]).values == (actor,)
    assert people >= 5


def test_the_agent_depends_on_the_target_only_through_the_users_words(world):
    """Two hidden targets the user describes with the same words (same genres, same decade)
    must get the same agent turns until one of them is recommended."""
    cat = world.catalog
    compared = 0
    for user, history, target in world.test_users()[:40]:
        twins = [i for i in range(cat.n_items) if i != target and i not in set(history)
                 and cat.values("genre", i) == cat.values("genre", target)
                 and cat.values("decade", i) == cat.values("decade", target)
                 and not set(words_of(cat, i)) & set(words_of(cat, target))]
        if not twins:
            continue
        a = run_episode(world, TreePolicy(), user, history, target)["transcript"]
        b = run_episode(world, TreePolicy(), user, history, twins[0])["transcript"]
        ids = {cat.item_ids[target], cat.item_ids[twins[0]]}
        for x, y in zip(a, b):
            if x["speaker"] == "agent":
                assert x["text"] == y["text"], (user, x["text"], y["text"])
                if ids & set(x["items"]):
                    break
            else:
                assert x["text"] == y["text"]
        compared += 1
    assert compared >= 20


def words_of(cat, item):
    from llmrec.chat import normalize
    return normalize(cat.titles[item]).split()
