"""Text sources on the real ML-100K, the knowledge-store wiring, and ``llmrec encode``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmrec.encode import item_metadata_texts, knowledge_costs, knowledge_texts
from llmrec.encode import user_history_texts
from llmrec.errors import LlmrecError


@pytest.fixture(scope="module")
def ds(ml100k):
    from llmrec.data import load_dataset

    return load_dataset("ml-100k")


def test_item_metadata_texts(ds):
    keys, texts = item_metadata_texts(ds)
    assert len(keys) == len(texts) == ds.n_items == 1682
    assert texts[ds.items.index("1")] == "Toy Story (1995). Genres: Animation, Children's, Comedy."
    no_year = ds.item_features.filter(ds.item_features["year"].is_null())
    for raw in no_year["item_id"].to_list():
        text = texts[ds.items.index(raw)]
        assert "()" not in text and "(None)" not in text


def test_user_texts_only_show_the_events_given(ds):
    inter = ds.interactions
    first_two = inter.select(inter.positions() < 2)
    keys, texts = user_history_texts(ds, first_two)
    u = ds.users.index("196")
    seq = inter.sequence(u)
    titles = item_metadata_texts(ds)[1]
    shown = [titles[i].split(". Genres")[0] for i in seq[:2]]
    hidden = [titles[i].split(". Genres")[0] for i in seq[2:]]
    assert keys[u] == "196" and texts[u].startswith("A 49-year-old male writer. Rated:")
    assert all(f'"{t}"' in texts[u] for t in shown)
    assert not any(f'"{t}"' in texts[u] for t in hidden)
    assert texts[u].count("stars;") == 2


def test_knowledge_store_texts_and_costs(ds, llmrec_home):
    knowledge = pytest.importorskip("llmrec.knowledge")
    with pytest.raises(LlmrecError, match="generate it first"):
        knowledge_texts("no-such-data", "item")
    store = knowledge.KnowledgeStore(knowledge.default_store_path("tiny"))
    common = dict(template="t@1", model={"name": "m"}, decoding={}, prompt=[], output="x")
    store.put(key="k0", kind="item", entity="item:1", parsed={"genre": "old"},    # replaced
              prompt_tokens=100, completion_tokens=50, seconds=9.0, **common)
    store.link([("item:1", "k0")], "item")
    store.put(key="k1", kind="item", entity="item:1", parsed={"genre": "animation"},
              prompt_tokens=10, completion_tokens=5, seconds=1.5, **common)
    store.put(key="k2", kind="user", entity="user:7", parsed={"taste": "comedies"},
              prompt_tokens=20, completion_tokens=8, seconds=2.0, **common)
    store.link([("item:1", "k1")], "item")
    store.link([("user:7", "k2")], "individual")
    store.put(key="c1", kind="cluster", entity="cluster:0", parsed={"taste": "dramas"},
              prompt_tokens=30, completion_tokens=9, seconds=4.0, **common)
    store.link([("user:7", "c1"), ("user:8", "c1")], "collective")
    store.close()
    assert knowledge_texts("tiny", "item") == (["1"], ["genre: animation"])
    assert knowledge_texts("tiny", "user") == (["7"], ["taste: comedies"])
    # the costs of what is used: not the replaced item record, not another mode's records
    assert knowledge_costs("tiny") == {"llm_calls": 2, "llm_tokens": 43,
                                       "generation_seconds": 3.5, "records": 2}
    assert knowledge_costs("tiny", "collective") == {"llm_calls": 2, "llm_tokens": 54,
                                                     "generation_seconds": 5.5, "records": 2}
    assert knowledge_texts("tiny", "user", "collective") == (["7", "8"], ["taste: dramas"] * 2)
    with pytest.raises(LlmrecError, match="no user knowledge"):
        knowledge_texts("tiny", "user", "incremental")


def test_cli_encode_metadata_then_cache_hit(ds, tmp_path, capsys):
    from llmrec.cli import main

    assert main(["-q", "encode", "--dataset", "ml-100k", "--source", "metadata", "--limit",
                 "24", "--json", "--output", str(tmp_path / "v.npz")]) == 0
    first = json.loads(capsys.readouterr().out)
    # other tests of this session may have cached some of these texts already (the vector
    # cache is shared by content): every text is either encoded now or a cache hit
    assert first["texts"] == 24 and first["dim"] == 384
    assert first["encoded"] + first["cache_hits"] == 24
    with np.load(tmp_path / "v.npz", allow_pickle=False) as z:
        assert z["vectors"].shape == (24, 384) and z["keys"][0] == "1"
    assert main(["-q", "encode", "--limit", "24"]) == 0          # all cached: no model load
    table = capsys.readouterr().out
    assert "cache hits   24" in table and "encoded now  0" in table
    assert "all-MiniLM-L6-v2" in table


def test_cli_encode_knowledge_without_a_store_is_a_user_error(capsys):
    from llmrec.cli import main

    assert main(["encode", "--source", "knowledge", "--dataset", "nothing-here"]) == 2
    assert "generate it first" in capsys.readouterr().err
