"""The SQLite store: WAL, one row per key, failures replaced and counted, links (no LLM)."""

from __future__ import annotations

import sqlite3

import pytest

from llmrec.errors import LlmrecError
from llmrec.knowledge import KnowledgeStore

MODEL = {"backend": "local", "model": "m"}


def put(store: KnowledgeStore, key: str, *, entity: str = "item:1", failure=None,
        parsed=None, tokens: int = 10) -> None:
    store.put(key=key, kind="item", entity=entity, template="item@1", model=MODEL,
              decoding={"max_tokens": 8}, prompt=[{"role": "user", "content": "p"}],
              output="out", parsed=parsed if failure is None else None, failure=failure,
              prompt_tokens=tokens, completion_tokens=tokens, seconds=0.5)


def test_store_is_wal_and_round_trips(tmp_path) -> None:
    with KnowledgeStore(tmp_path / "k.sqlite") as store:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        put(store, "a", parsed={"genre": "crime", "mood": "tense"})
        rec = store.get("a")
        assert rec.ok and rec.text == "genre: crime\nmood: tense"
        assert rec.model == MODEL and rec.prompt[0]["content"] == "p" and rec.attempts == 1
        assert store.get("missing") is None and store.ok_keys(["a", "b"]) == {"a"}


def test_failures_are_replaced_and_costs_add_up_but_ok_is_final(tmp_path) -> None:
    with KnowledgeStore(tmp_path / "k.sqlite") as store:
        put(store, "a", failure=("malformed", "no line for factor mood"))
        put(store, "a", failure=("timeout", "no answer"))
        rec = store.get("a")
        assert not rec.ok and rec.failure_kind == "timeout" and rec.attempts == 2
        assert rec.completion_tokens == 20
        put(store, "a", parsed={"genre": "x"})
        put(store, "a", failure=("malformed", "late"))            # never replaces ok
        rec = store.get("a")
        assert rec.ok and rec.text == "genre: x" and rec.attempts == 3
        assert store.count() == 1
        assert store.stats() == [{"kind": "item", "ok": 1, "failed": 0, "calls": 3,
                                  "prompt_tokens": 30, "completion_tokens": 30,
                                  "seconds": 1.5}]


def test_links_pick_the_latest_ok_record(tmp_path) -> None:
    with KnowledgeStore(tmp_path / "k.sqlite") as store:
        put(store, "old", entity="user:7", parsed={"genre": "old"})
        put(store, "new", entity="user:7", failure=("timeout", "x"))
        store.link([("user:7", "old")], "individual")
        store.link([("user:7", "new")], "individual")
        assert store.get_user("7").key == "old"          # the newer link has no ok record
        put(store, "new", entity="user:7", parsed={"genre": "new"})
        assert store.get_user("7").key == "new"
        assert store.get_user("7", "collective") is None
        assert store.export("individual") == {"7": "genre: new"}


def test_a_file_that_is_not_a_store_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "k.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LlmrecError, match="not a usable knowledge store"):
        KnowledgeStore(path)
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(LlmrecError, match="schema 99"):
        KnowledgeStore(other)


def test_stored_item_knowledge_merges_the_general_and_ctr_stores(tmp_path, monkeypatch) -> None:
    from llmrec.knowledge import default_store_path, stored_item_knowledge

    monkeypatch.setenv("LLMREC_HOME", str(tmp_path))     # other tests use a "tiny" data set
    assert stored_item_knowledge("tiny") == {}
    assert not default_store_path("tiny").exists()        # reading created nothing
    default_store_path("tiny").parent.mkdir(parents=True, exist_ok=True)
    for name, items in (("tiny-ctr-profile30", {"1": "ctr", "2": "ctr"}),
                        ("tiny", {"2": "general", "3": "general"}),
                        ("tinyother", {"4": "other data set"})):
        with KnowledgeStore(default_store_path(name)) as store:
            for item, word in items.items():
                put(store, f"{name}-{item}", entity=f"item:{item}", parsed={"genre": word})
                store.link([(f"item:{item}", f"{name}-{item}")], "item")
    assert stored_item_knowledge("tiny") == {"1": "genre: ctr", "2": "genre: general",
                                             "3": "genre: general"}
