"""Typed text -> constraints (:func:`understand`) and :class:`ChatSession` on the real ML-100K."""

from __future__ import annotations

import json

import pytest


@pytest.mark.parametrize("text, kind, stated", [
    ("I want a comedy", "answer", {"genre": ["Comedy"]}),
    ("from the 90s", "answer", {"decade": ["1990s"]}),
    ("Something romantic from the nineties", "answer",
     {"genre": ["Romance"], "decade": ["1990s"]}),
    ("a sci-fi or animated film from 1995", "answer",
     {"genre": ["Sci-Fi", "Animation"], "decade": ["1990s"]}),
    ("'80s action", "answer", {"genre": ["Action"], "decade": ["1980s"]}),
    ("film noir from the forties", "answer", {"genre": ["Film-Noir"], "decade": ["1940s"]}),
    ("kids movies, nothing scary", "answer", {"genre": ["Children's"]}),
    ("no comedies please", "other", {}),
    ("genre: Drama, Romance.", "answer", {"genre": ["Drama", "Romance"]}),   # simulator grammar
    ("hmm, let me think", "other", {}),
])
def test_understand_reads_genres_and_decades(world, text, kind, stated):
    from llmrec.chat import understand

    reply = understand(text, world.catalog)
    assert reply.kind == kind
    assert {a: list(v) for a, v in reply.stated()} == stated


def test_understand_uses_the_context_of_the_last_message(world):
    from llmrec.chat import understand

    cat = world.catalog
    after_list = understand("no, older: the seventies", cat, after_recommendation=True)
    assert after_list.kind == "reject" and after_list.stated() == [("decade", ("1970s",))]
    assert understand("no idea", cat, asked="decade").stated() == [("decade", ())]
    assert understand("yes, great", cat, after_recommendation=True).kind == "accept"
    assert understand("ok bye", cat).ends
    # the 2010s are not in ML-100K: nothing is invented
    assert understand("from the 2010s", cat).stated() == []


def test_a_session_narrows_to_what_was_said_and_survives_serialisation(world):
    from llmrec.chat import ChatSession, TreePolicy

    cat = world.catalog
    s = ChatSession(world, TreePolicy(), user="196", k=5)
    first = s.start()
    assert "38 movies you rated" in first.text and first.kind == "ask"
    s.say("I want a comedy")
    turn = s.say("from the 90s")
    assert turn.kind == "recommend" and len(turn.items) == 5
    assert turn.wishes == {"genre": ["Comedy"], "decade": ["1990s"]}
    for card in turn.items:
        i = cat.index(card["item_id"])
        assert "Comedy" in cat.values("genre", i) and 1990 <= cat.years[i] <= 1999
    seen = set(cat.ids(s.state.ctx.history))
    assert not seen & {c["item_id"] for c in turn.items}           # known history excluded

    # a copy made from JSON continues exactly as the original does
    copy = ChatSession.from_dict(world, TreePolicy(), json.loads(json.dumps(s.to_dict())))
    a, b = s.say("no, something else"), copy.say("no, something else")
    assert a.to_dict() == b.to_dict()
    assert not {c["item_id"] for c in a.items} & {c["item_id"] for c in turn.items}
    assert s.say("bye").done and s.done
