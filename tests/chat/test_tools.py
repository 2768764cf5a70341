"""Tools: schemas from signatures, the candidate bus narrowing, failures leave the bus alone."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmrec.chat import TOOLS, CandidateBus, ChatContext


def _ctx(world, history=()):
    cat = world.catalog
    return ChatContext(cat, world.retriever, CandidateBus.all_items(cat.n_items), list(history))


def test_every_tool_has_a_schema_from_its_signature():
    assert set(TOOLS) == {"search_items", "retrieve_candidates", "rank_candidates",
                          "lookup_item", "exclude_items"}
    for name, t in TOOLS.items():
        s = t.openai_schema()
        assert s["function"]["name"] == name and len(s["function"]["description"]) > 20
        props = s["function"]["parameters"]["properties"]
        assert "ctx" not in props
        assert all(p.get("description") for p in props.values()), name
        json.dumps(s)                                   # plain JSON
    search = TOOLS["search_items"].json_schema()
    assert search["properties"]["scope"]["enum"] == ["candidates", "catalogue"]
    assert TOOLS["lookup_item"].json_schema()["required"] == ["item_id"]
    assert search["additionalProperties"] is False


def test_search_narrows_the_bus_as_the_item_table_says(world):
    ctx = _ctx(world)
    feats = world.dataset.item_features
    horror = feats.filter(feats["genres"].list.contains("Horror"))
    horror_90s = horror.filter((horror["year"] >= 1990) & (horror["year"] <= 1999))
    r = TOOLS["search_items"].call(ctx, {"genres": ["horror"]})   # case-insensitive value
    assert r.ok and len(ctx.bus) == horror.height
    assert f"Before: {world.catalog.n_items} candidates, after: {horror.height}" in r.text
    r = TOOLS["search_items"].call(ctx, '{"year_min": 1990, "year_max": 1999}')   # JSON text
    assert r.ok
    r = TOOLS["search_items"].call(ctx, {"genres": '["Horror"]'})   # a list sent as JSON text
    assert r.ok and len(ctx.bus) == horror_90s.height
    assert sorted(world.catalog.ids(ctx.bus.items)) == sorted(horror_90s["item_id"].to_list())
    assert ctx.bus.log == [("search_items", horror.height), ("search_items", horror_90s.height),
                           ("search_items", horror_90s.height)]
    assert not TOOLS["search_items"].call(ctx, "[1, 2]").ok         # not an object
    star = TOOLS["search_items"].call(ctx, {"title_words": "STAR wars", "scope": "catalogue"})
    assert star.ok and "Star Wars" in [world.catalog.titles[i] for i in ctx.bus.items]
    assert all({"star", "wars"} <= set(world.catalog.titles[i].lower().split())
               for i in ctx.bus.items)


@pytest.mark.parametrize("args", [{"genres": ["Telenovela"]}, {"year_min": "soon"},
                                  {"genre": ["Drama"]}, {}, {"year_min": 1999, "year_max": 1990},
                                  {"genres": ["Documentary"], "year_min": 1920, "year_max": 1925}])
def test_a_failed_tool_leaves_the_bus_unchanged(world, args):
    ctx = _ctx(world)
    TOOLS["search_items"].call(ctx, {"genres": ["Comedy"]})
    before_items, log = ctx.bus.items.copy(), list(ctx.bus.log)
    r = TOOLS["search_items"].call(ctx, args)
    assert not r.ok and f"candidates unchanged ({len(before_items)})" in r.text
    assert np.array_equal(ctx.bus.items, before_items) and ctx.bus.log == log
    assert ctx.calls[-1] == ("search_items", len(before_items), len(before_items), False)


def test_retrieve_excludes_history_and_rejected_and_follows_the_model(world):
    user, history, _ = world.test_users()[3]
    ctx = _ctx(world, history)
    ctx.rejected = {int(i) for i in world.retriever.model.recommend(history, 3).items}
    r = TOOLS["retrieve_candidates"].call(ctx, {"n": 20})
    assert r.ok and len(ctx.bus) == 20
    want = world.retriever.model.recommend(history, 20, exclude=sorted(ctx.rejected)).items
    assert ctx.bus.items.tolist() == want.tolist()
    assert not set(ctx.bus.items.tolist()) & (set(history) | ctx.rejected)
    # liked items in the conversation change the ranking (they extend the history)
    ctx.liked = [int(ctx.bus.items[0])]
    TOOLS["retrieve_candidates"].call(ctx, {"n": 20})
    assert ctx.bus.items.tolist() != want.tolist()


def test_rank_exclude_and_lookup(world):
    user, history, _ = world.test_users()[0]
    ctx = _ctx(world, history)
    TOOLS["search_items"].call(ctx, {"genres": ["Drama"]})
    r = TOOLS["rank_candidates"].call(ctx, {"top": 15})
    assert r.ok and len(ctx.bus) == 15
    scores = world.retriever.scores(history)
    assert np.all(np.diff(scores[ctx.bus.items]) <= 0)
    drop = world.catalog.ids(ctx.bus.items[:2])
    ctx.rejected = {int(ctx.bus.items[2])}
    gone = {world.catalog.index(i) for i in drop} | ctx.rejected | set(history)
    left = [i for i in ctx.bus.items.tolist() if i not in gone]
    r = TOOLS["exclude_items"].call(ctx, {"item_ids": drop, "seen": True})
    assert r.ok and f"Before: 15 candidates, after: {len(left)}" in r.text
    assert ctx.bus.items.tolist() == left and len(left) < 13
    assert TOOLS["exclude_items"].call(ctx, {"item_ids": ["no-such-item"]}).ok is False
    ctx.knowledge = {"50": "A space opera."}.get
    text = TOOLS["lookup_item"].call(ctx, {"item_id": "50"}).text
    assert "Star Wars (1977)" in text and "Sci-Fi" in text and "A space opera." in text
    assert len(ctx.bus) == len(left)                      # lookup does not touch the bus


def test_kg_attributes_read_the_link_and_kg_files(kg_world):
    cat = kg_world.catalog
    assert cat.attributes == ("genre", "decade", "director", "actor")
    with_director = sum(1 for v in cat.attrs["director"] if v)
    assert with_director > 0.8 * cat.n_items
    i = next(i for i, v in enumerate(cat.attrs["director"]) if v)
    ctx = ChatContext(cat, kg_world.retriever, CandidateBus.all_items(cat.n_items))
    r = TOOLS["search_items"].call(ctx, {"director": cat.values("director", i)[0]})
    assert r.ok and i in ctx.bus.items.tolist()
    assert all(cat.values("director", i)[0] in cat.values("director", j) for j in ctx.bus.items)


def test_lookup_reads_the_stored_llm_item_knowledge_of_the_run(chat_run, llmrec_home, tmp_path,
                                                               monkeypatch):
    from llmrec.chat import ChatWorld
    from llmrec.knowledge import KnowledgeStore, default_store_path

    home = tmp_path / "home"                       # a private home sharing the fetched data
    home.mkdir()
    (home / "data").symlink_to(llmrec_home / "data")
    monkeypatch.setenv("LLMREC_HOME", str(home))
    with KnowledgeStore(default_store_path("ml-100k")) as store:
        store.put(key="k50", kind="item", entity="item:50", template="item@1", model={},
                  decoding={}, prompt=[], output="{}", parsed={"summary": "A space opera."})
        store.link([("item:50", "k50")], "item")
    world = ChatWorld.from_run(chat_run)
    assert world.knowledge == {"50": "summary: A space opera."}
    ctx = ChatContext(world.catalog, world.retriever, CandidateBus.all_items(1),
                      knowledge=world.knowledge.get)
    assert "knowledge: summary: A space opera." in TOOLS["lookup_item"].call(
        ctx, {"item_id": "50"}).text
    assert "knowledge" not in TOOLS["lookup_item"].call(ctx, {"item_id": "1"}).text
