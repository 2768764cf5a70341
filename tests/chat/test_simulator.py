"""The simulated user: truthful answers vs the item table, accept iff the target is listed,
a turn limit; and the leak checker: planted leaks are caught, normal replies are not flagged."""

from __future__ import annotations

import pytest

from llmrec.chat import (Ask, CheckedUser, LeakChecker, Recommend, SimulatedUser, parse_reply,
                         render, title_document_frequency)


def _users(world, n=60):
    return world.test_users()[:n]


def test_answers_are_true_to_the_item_table(world):
    feats = world.dataset.item_features
    cat = world.catalog
    checked = 0
    for _, history, target in _users(world):
        row = feats.row(target, named=True)
        sim = SimulatedUser(cat, target, history, max_turns=10)
        genre = parse_reply(sim.reply(render(Ask("genre"), cat)))
        assert genre.kind == "answer" and genre.attribute == "genre"
        assert set(genre.values) <= set(row["genres"])
        assert set(row["genres"]) - set(genre.values) <= {
            g for g in row["genres"] if set(g.lower().replace("'", " ").split()) & sim.avoid}
        decade = parse_reply(sim.reply(render(Ask("decade"), cat)))
        assert decade.values == (f"{row['year'] // 10 * 10}s",)
        checked += 1
    assert checked == 60


def test_accepts_iff_the_target_is_listed_and_rejects_truthfully(world):
    cat = world.catalog
    for _, history, target in _users(world, 40):
        others = [i for i in world.retriever.model.recommend(history, 11).items.tolist()
                  if i != target][:9]
        sim = SimulatedUser(cat, target, history)
        miss = sim.reply(render(Recommend(tuple(cat.ids(others))), cat))
        r = parse_reply(miss)
        assert r.kind == "reject" and not sim.done
        if r.attribute == "genre":
            assert set(r.values) <= set(cat.values("genre", target))
            assert not all(set(r.values) <= set(cat.values("genre", i)) for i in others)
        elif r.attribute == "decade":
            assert r.values == cat.values("decade", target)
            assert not all(cat.values("decade", i) == r.values for i in others)
        hit = sim.reply(render(Recommend(tuple(cat.ids([*others[:4], target]))), cat))
        assert parse_reply(hit).kind == "accept" and sim.done and sim.accepted


def test_the_user_leaves_after_max_turns(world):
    _, history, target = world.test_users()[0]
    sim = SimulatedUser(world.catalog, target, history, max_turns=3)
    replies = [sim.reply("Which genres are you in the mood for?") for _ in range(3)]
    assert not any("Bye" in r for r in replies[:2]) and "I have to go now. Bye." in replies[2]
    assert sim.done and parse_reply(replies[2]).kind == "answer" and parse_reply(replies[2]).ends


def _checker(world, title):
    cat = world.catalog
    i = cat.titles.index(title)
    return LeakChecker.for_item(cat, i), cat.item_ids[i]


@pytest.mark.parametrize("title,planted", [
    ("Star Wars", "Something like Star Wars, please."),
    ("Star Wars", "something like STAR-WARS!!"),
    ("Star Wars", "a film about wars in space"),                      # a distinctive word
    ("Godfather, The", "I want The Godfather (1972)."),               # reordered article + year
    ("Godfather, The", "maybe a godfather"),
    ("Schindler's List", "schindlers list"),                          # punctuation dropped
    ("Schindler's List", "Schindler’s"),                              # typographic apostrophe
    ("Pulp Fiction", "PULP fiction it is"),
    ("Misérables, Les", "les MISERABLES"),                           # accents, case
])
def test_planted_title_leaks_are_caught(world, title, planted):
    if title not in world.catalog.titles:
        pytest.skip(f"{title} is not in this catalogue")
    checker, _ = _checker(world, title)
    assert checker.leaks(planted), planted


def test_planted_id_leaks_are_caught_and_plain_talk_is_not(world):
    checker, item_id = _checker(world, "Star Wars")
    for text in (f"It is item {item_id}.", f"[{item_id}]", f"id#{item_id}!"):
        assert any(x.startswith("id") for x in checker.leaks(text)), text
    for text in ("I'd like genre: Action, Adventure, Romance, Sci-Fi, War.",
                 "I'd like decade: 1970s.", "No, none of those are what I want.",
                 f"Something from {item_id}0 would be odd.", "a star is born",
                 "Yes, one of those is what I wanted!"):
        assert not checker.leaks(text), text


def test_common_title_words_are_not_distinctive(world):
    cat = world.catalog
    df = title_document_frequency(cat.titles)
    checker = LeakChecker.for_item(cat, cat.titles.index("Star Trek: First Contact"), df)
    assert "star" not in checker.words and "trek" not in checker.words    # many Star Treks
    assert {"first", "contact"} & checker.words


def test_checked_user_counts_leaks_of_a_leaky_user(world):
    class LeakyUser(SimulatedUser):                 # plants its target's title in every reply
        def reply(self, agent_message):
            return super().reply(agent_message) + f" Like {self.catalog.titles[self.target]}."

    cat = world.catalog
    _, history, target = world.test_users()[5]
    honest = CheckedUser(SimulatedUser(cat, target, history), LeakChecker.for_item(cat, target))
    leaky = CheckedUser(LeakyUser(cat, target, history), LeakChecker.for_item(cat, target))
    for u in (honest, leaky):
        for attr in ("genre", "decade"):
            u.reply(render(Ask(attr), cat))
    assert honest.leaks == [] and len(leaky.leaks) == 2


def test_the_user_rephrases_around_words_of_its_target_title(world):
    cat = world.catalog
    found = 0
    for title in ("Apocalypse Now", "Like Water For Chocolate (Como agua para chocolate)",
                  "Mr. Wrong", "Bye Bye, Love"):
        if title not in cat.titles:
            continue
        found += 1
        target = cat.titles.index(title)
        checked = CheckedUser(SimulatedUser(cat, target, [], max_turns=3),
                              LeakChecker.for_item(cat, target))
        replies = [checked.reply(render(Ask(a), cat)) for a in ("genre", "decade")]
        replies.append(checked.reply(render(Recommend(("1", "2")), cat)))
        assert checked.leaks == [], checked.leaks
        parsed = [parse_reply(r) for r in replies]
        assert [p.kind for p in parsed] == ["answer", "answer", "reject"] and parsed[2].ends
        assert parsed[0].values == cat.values("genre", target)
    assert found >= 3


def test_max_values_names_a_true_subset_of_the_genres(world):
    cat = world.catalog
    multi = [(h, t) for _, h, t in world.test_users() if len(cat.values("genre", t)) >= 3][:20]
    assert len(multi) == 20
    for history, target in multi:
        sim = SimulatedUser(cat, target, history, max_values=1, max_turns=10)
        said = parse_reply(sim.reply(render(Ask("genre"), cat))).values
        assert len(said) == 1 and said[0] in cat.values("genre", target)
