"""Knowledge generation with the real local model (SmolLM2-135M via llama.cpp), real SQLite.

Tiny templates and a handful of entities keep it quick; see conftest.py.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest

from llmrec.data import Split, build_dataset, leave_one_out, load_dataset
from llmrec.errors import ConfigError, DataError
from llmrec.knowledge import KnowledgeConfig, KnowledgeStore, generate_knowledge
from llmrec.llm import LLMError, LocalBackend, OpenAIBackend, serve_local_openai
from llmrec.llm.local import PACKAGED_MODEL_NAME

FACTORS = ("genre", "mood")


def run(ds, split, llm, store, templates, **config):
    cfg = KnowledgeConfig(**{"factors": FACTORS, "templates": str(templates), **config})
    return generate_knowledge(ds, split, llm, cfg, store=store, progress=False)


def test_individual_extraction_then_rerun_is_all_cache_hits(ml100k_split, local_llm,
                                                            tiny_templates, tmp_path) -> None:
    ds, split = ml100k_split
    path = tmp_path / "k.sqlite"
    first = run(ds, split, local_llm, path, tiny_templates, limit=3)
    assert (first.items_ok, first.users_ok) == (3, 3), first
    assert first.stats["calls"]["item"] >= 3 and first.stats["calls"]["user"] >= 3
    assert sum(first.stats["completion_tokens"].values()) > 0
    with KnowledgeStore(path) as store:
        rows = store.count()
        item = store.get_item(ds.items.id(0))
        assert item.ok and item.kind == "item" and item.template == "item@2"
        assert [ln.split(":")[0] for ln in item.text.splitlines()] == list(FACTORS)
        for t in (item, store.get_user(ds.users.id(0))):   # the word rule of the grammar
            words = [w for ln in t.text.splitlines() for w in ln.split(":", 1)[1].split()]
            assert 0 < len(words) <= 2 * len(FACTORS), t.text
            word = re.compile(r"[A-Za-z0-9][A-Za-z0-9'&-]{0,11},?")
            assert all(word.fullmatch(w) for w in words), t.text
        assert "Toy Story (1995)" in item.prompt[-1]["content"]
        user = store.get_user(ds.users.id(0))
        assert user.ok and user.kind == "user" and user.model["model"] == PACKAGED_MODEL_NAME
        assert set(store.export("item")) == {ds.items.id(i) for i in range(3)}
    again = run(ds, split, local_llm, path, tiny_templates, limit=3)
    assert again.calls == 0 and sum(again.stats["cached"].values()) == 6
    assert (again.items_ok, again.users_ok) == (3, 3)
    with KnowledgeStore(path) as store:
        assert store.count() == rows
        assert [r["mode"] for r in store.runs()] == ["individual", "individual"]


def test_only_the_chosen_items_and_users(ml100k_split, local_llm, tiny_templates,
                                         tmp_path) -> None:
    """``item_ids``/``user_ids`` (what `llmrec demo` uses): exactly those entities, no others;
    an id the data set lacks is a clear error before any LLM call."""
    ds, split = ml100k_split
    items, users = ("50", "181"), ("196",)
    s = run(ds, split, local_llm, tmp_path / "k.sqlite", tiny_templates, item_ids=items,
            user_ids=users)
    assert set(s.item_keys) == set(items) and set(s.user_keys) == set(users)
    assert (s.items_ok, s.users_ok) == (2, 1)
    with KnowledgeStore(tmp_path / "k.sqlite") as store:
        assert set(store.export("item")) == set(items)
        assert "Star Wars (1977)" in store.get_item("50").prompt[-1]["content"]
    with pytest.raises(ConfigError, match="unknown user id 'nobody'"):
        run(ds, split, local_llm, tmp_path / "k2.sqlite", tiny_templates, user_ids=("nobody",))
    assert not (tmp_path / "k2.sqlite").exists()


def test_factors_are_derived_once(ml100k_split, local_llm, tiny_templates, tmp_path) -> None:
    ds, split = ml100k_split
    s = run(ds, split, local_llm, tmp_path / "k.sqlite", tiny_templates, factors=(),
            users=False, limit=1)
    assert 3 <= len(s.factors) <= 5 and s.stats["calls"]["factors"] >= 1
    with KnowledgeStore(s.store) as store:
        rec = store.get_item(ds.items.id(0))
        assert rec is None or list(rec.parsed) == s.factors
    again = run(ds, split, local_llm, tmp_path / "k.sqlite", tiny_templates, factors=(),
                users=False, limit=1)
    assert again.stats["cached"]["factors"] == 1 and again.factors == s.factors


def test_json_constrained_output(ml100k_split, local_llm, tiny_templates, tmp_path) -> None:
    ds, split = ml100k_split
    s = run(ds, split, local_llm, tmp_path / "k.sqlite", tiny_templates, users=False,
            limit=1, constrain="json")
    assert s.items_ok == 1, s
    with KnowledgeStore(s.store) as store:
        rec = store.get_item(ds.items.id(0))
        assert list(rec.parsed) == list(FACTORS) and rec.output.lstrip().startswith("{")
        assert rec.decoding["response_format"]["type"] == "json_schema"


def test_collective_extraction_one_call_per_cluster(ml100k_split, local_llm, tiny_templates,
                                                    tmp_path) -> None:
    ds, split = ml100k_split
    s = run(ds, split, local_llm, tmp_path / "k.sqlite", tiny_templates, mode="collective",
            items=False, limit=8, n_clusters=2)
    assert s.stats["calls"].get("cluster", 0) >= 2 and "user" not in s.stats["calls"]
    assert s.users == 8 and s.users_ok == 8, s
    with KnowledgeStore(s.store) as store:
        recs = [store.get_user(ds.users.id(u), "collective") for u in range(8)]
        assert all(r.kind == "cluster" for r in recs)
        assert len({r.key for r in recs}) == 2                     # members inherit
        assert "A group of" in recs[0].prompt[-1]["content"]
        assert store.get_user(ds.users.id(0), "individual") is None


def _only_user(split: Split, user: int, n_train: int) -> Split:
    """A split in which ``user`` trains on their first ``n_train`` events, nobody else trains."""
    inter = split.interactions
    pos = inter.positions()
    part = np.where((inter.user == user) & (pos < n_train), 0,
                    np.where(inter.user == user, 1, 2)).astype(np.int8)
    return Split(inter, part, "custom")


def test_incremental_only_new_partitions_cost_calls(ml100k_split, local_llm, tiny_templates,
                                                     tmp_path) -> None:
    ds, split = ml100k_split
    user = int(np.flatnonzero(split.interactions.lengths() >= 40)[0])
    path = tmp_path / "k.sqlite"
    early = run(ds, _only_user(split, user, 20), local_llm, path, tiny_templates,
                mode="incremental", items=False, partition_size=10)
    assert early.stats["ok"] == {"partition": 2, "summary": 1}, early.stats
    assert early.users_ok == 1
    late = run(ds, _only_user(split, user, 35), local_llm, path, tiny_templates,
               mode="incremental", items=False, partition_size=10)
    # partitions [0:10] [10:20] unchanged; [20:30] [30:35] new; folds 2 and 3 new
    assert late.stats["cached"] == {"partition": 2, "summary": 1}, late.stats
    assert late.stats["ok"] == {"partition": 2, "summary": 2}, late.stats
    assert late.stats["calls"]["partition"] >= 2 and "partition" not in late.stats["failed"]
    with KnowledgeStore(path) as store:
        rec = store.get_user(ds.users.id(user), "incremental")
        assert rec.kind == "summary" and rec.entity.endswith("/fold:3")
        assert "Current profile:" in rec.prompt[-1]["content"]


def test_malformed_output_is_stored_and_retried(ml100k_split, local_llm, tiny_templates,
                                                tmp_path) -> None:
    ds, split = ml100k_split
    path = tmp_path / "k.sqlite"
    kw = dict(factors=("zzqx",), constrain="none", users=False, limit=1, max_attempts=2)
    s = run(ds, split, local_llm, path, tiny_templates, **kw)
    assert s.items_ok == 0 and s.failed == 1 and s.stats["failed"] == {"malformed": 1}
    with KnowledgeStore(path) as store:
        (rec,) = [store.get(k) for k in s.item_keys.values()]
        assert rec.status == "failed" and rec.failure_kind == "malformed"
        assert rec.attempts == 2 and rec.output and "zzqx" in rec.failure_message
        assert rec.decoding["temperature"] > 0 and rec.decoding["seed"] == 2   # retried sampled
    run(ds, split, local_llm, path, tiny_templates, **kw)
    with KnowledgeStore(path) as store:
        assert store.get(rec.key).attempts == 4 and store.count() == 1


def _tiny_dataset(titles: list[str]):
    n = len(titles)
    ids = [str(i + 1) for i in range(n)]
    inter = pl.DataFrame({"user_id": ["a"] * n + ["b"] * n, "item_id": ids * 2,
                          "rating": [4.0] * 2 * n, "timestamp": list(range(2 * n))})
    ds = build_dataset("tiny", inter, pl.DataFrame({"item_id": ids, "title": titles}))
    return ds, leave_one_out(ds.interactions)


def test_bad_item_text_is_stored_as_failure_and_the_rest_generated(local_llm, tiny_templates,
                                                                  tmp_path) -> None:
    ds, split = _tiny_dataset(["Heat", "", "Broken \ufffd text", "Bell\x07 ring"])
    s = run(ds, split, local_llm, tmp_path / "k.sqlite", tiny_templates, users=False)
    assert s.items_ok == 1 and s.stats["ok"] == {"item": 1}
    assert s.stats["failed"] == {"bad_input": 3} and s.failed == 3
    assert any("item:2: empty item text" in p for p in s.problems)
    assert sum("not valid UTF-8" in p for p in s.problems) == 2
    no_text = build_dataset("notext", pl.DataFrame({"user_id": ["a", "a", "a"],
                                                    "item_id": ["1", "2", "3"]}))
    with pytest.raises(DataError, match="has no item text"):
        run(no_text, leave_one_out(no_text.interactions), local_llm, tmp_path / "x.sqlite",
            tiny_templates)


def test_non_utf8_item_file_is_a_clear_error(tmp_path) -> None:
    folder = tmp_path / "latin"
    folder.mkdir()
    (folder / "latin.inter").write_text("user_id:token\titem_id:token\nu\t1\n")
    (folder / "latin.item").write_bytes(b"item_id:token\tmovie_title:token_seq\n1\tCaf\xe9\n")
    with pytest.raises(DataError, match="not valid utf-8"):
        load_dataset(str(folder))


def test_context_overflow_is_a_stored_failure(local_llm, tiny_templates, tmp_path) -> None:
    ds, split = _tiny_dataset(["Heat", "Epic " * 400])
    with LocalBackend(threads=1, parallel=1, n_ctx=256) as small:
        s = run(ds, split, small, tmp_path / "k.sqlite", tiny_templates, users=False)
    assert s.items_ok == 1 and s.stats["failed"] == {"context_overflow": 1}
    with KnowledgeStore(s.store) as store:
        assert store.failures() == [("item", "context_overflow", 1)]


def test_environment_errors_are_clear_and_keep_work(ml100k_split, local_llm, tiny_templates,
                                                    tmp_path, monkeypatch) -> None:
    ds, split = ml100k_split
    path = tmp_path / "k.sqlite"
    run(ds, split, local_llm, path, tiny_templates, users=False, limit=1)
    with KnowledgeStore(path) as store:
        kept = store.count("ok")
    down = OpenAIBackend(base_url="http://127.0.0.1:9/v1", model="m", max_retries=0)
    with pytest.raises(LLMError, match="cannot reach http://127.0.0.1:9/v1"):
        run(ds, split, down, path, tiny_templates, users=False, limit=2)
    monkeypatch.setenv("KNOWLEDGE_TEST_KEY", "wrong")
    with serve_local_openai(threads=1, parallel=1, n_ctx=512, api_key="right") as url:
        wrong_model = OpenAIBackend(base_url=url, model="gpt-nope", api_key_env=None)
        with pytest.raises(LLMError, match="requires an API key"):
            run(ds, split, wrong_model, path, tiny_templates, users=False, limit=2)
        monkeypatch.setenv("KNOWLEDGE_TEST_KEY", "right")
        wrong_model = OpenAIBackend(base_url=url, model="gpt-nope",
                                    api_key_env="KNOWLEDGE_TEST_KEY")
        with pytest.raises(LLMError, match="'gpt-nope' is not served.*smollm2-135m-instruct"):
            run(ds, split, wrong_model, path, tiny_templates, users=False, limit=2)
    with KnowledgeStore(path) as store:
        assert store.count("ok") == kept
