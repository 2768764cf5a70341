"""The SemanticIds container: lookups, prefixes, the trie, save/load, diagnostics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmrec.errors import DataError
from llmrec.tokenize import SemanticIds, format_diagnostics, semantic_ids
from llmrec.tokenize._diagnostics import code_diagnostics, entropy_bits


def trie_paths(trie, node=0, prefix=()):  # type: ignore[no-untyped-def]
    """Every root-to-leaf path of the trie, with the leaf's item."""
    if trie.item[node] >= 0:
        yield prefix, int(trie.item[node])
        return
    for j in range(trie.indptr[node], trie.indptr[node + 1]):
        yield from trie_paths(trie, int(trie.children[j]), (*prefix, int(trie.codes[j])))


def test_trie_matches_the_drawn_example():
    ids = SemanticIds(np.array([[0, 1], [0, 2], [3, 1]]), (4, 4))
    t = ids.trie()
    np.testing.assert_array_equal(t.indptr, [0, 2, 4, 5, 5, 5, 5])
    np.testing.assert_array_equal(t.codes, [0, 3, 1, 2, 1])
    np.testing.assert_array_equal(t.children, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(t.item, [-1, -1, -1, 0, 1, 2])
    assert t.to_nested() == {0: {1: 0, 2: 1}, 3: {1: 2}}
    np.testing.assert_array_equal(t.allowed((0,)), [1, 2])
    assert t.allowed((1,)).size == 0 and t.allowed((0, 1)).size == 0
    assert t.step(0, 3) == 2 and t.step(2, 2) == -1
    np.testing.assert_array_equal(t.allowed_mask([0, 2, -1], 4),
                                  [[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0]])


@st.composite
def unique_codes(draw):  # type: ignore[no-untyped-def]
    levels = draw(st.integers(1, 4))
    sizes = tuple(draw(st.lists(st.integers(1, 5), min_size=levels, max_size=levels)))
    space = int(np.prod(sizes))
    n = draw(st.integers(1, min(space, 40)))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    numbers = rng.choice(space, size=n, replace=False)
    codes = np.stack(np.unravel_index(numbers, sizes), axis=1)
    return codes, sizes


@settings(max_examples=120, deadline=None)
@given(unique_codes())
def test_lookups_prefixes_and_trie_agree_with_brute_force(case):
    codes, sizes = case
    ids = SemanticIds(codes, sizes)
    tuples = [tuple(r) for r in codes.tolist()]
    for item, tup in enumerate(tuples):
        assert ids.codes_of(item) == tup
        assert ids.item_of(tup) == item
    trie = ids.trie()
    assert sorted(trie_paths(trie)) == sorted((t, i) for i, t in enumerate(tuples))
    prefixes = {t[:k] for t in tuples for k in range(len(t) + 1)}
    prefixes |= {(sizes[0] - 1,) * k for k in range(1, len(sizes) + 1)}   # maybe invalid
    for p in prefixes:
        brute = sorted(i for i, t in enumerate(tuples) if t[:len(p)] == p)
        assert sorted(ids.prefix_items(p).tolist()) == brute
        nexts = sorted({t[len(p)] for t in tuples if t[:len(p)] == p and len(t) > len(p)})
        assert trie.allowed(p).tolist() == nexts


def test_unknown_lookups_raise_key_error():
    ids = SemanticIds(np.array([[0, 1], [1, 0]]), (2, 2))
    with pytest.raises(KeyError, match=r"\(1, 1\)"):
        ids.item_of((1, 1))
    with pytest.raises(KeyError):
        ids.item_of((0,))                 # a prefix is not an item
    with pytest.raises(KeyError, match=r"not in 0\.\.1"):
        ids.codes_of(2)
    assert ids.prefix_items((5,)).size == 0


def test_container_refuses_bad_codes():
    with pytest.raises(DataError, match="not unique"):
        SemanticIds(np.array([[0, 1], [0, 1]]), (2, 2))
    with pytest.raises(DataError, match="outside"):
        SemanticIds(np.array([[0, 2]]), (2, 2))
    with pytest.raises(DataError, match="do not match"):
        SemanticIds(np.array([[0, 1]]), (2,))


def test_save_load_round_trip(tmp_path):
    pytest.importorskip("faiss")
    x = np.random.default_rng(0).standard_normal((150, 8)).astype(np.float32)
    ids = semantic_ids(x, "rq-kmeans", levels=3, codebook_size=8, collisions="balanced")
    folder = ids.save(tmp_path / "ids")
    assert sorted(p.name for p in folder.iterdir()) == ["codes.npy", "meta.json"]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["method"] == "rq-kmeans" and meta["config"]["levels"] == 3
    assert meta["diagnostics"]["collision_rate"] == ids.diagnostics["collision_rate"]
    back = SemanticIds.load(folder)
    assert back.equals(ids) and back.key == ids.key
    np.testing.assert_array_equal(back.codes, ids.codes)
    assert back.item_of(ids.codes_of(7)) == 7
    np.save(folder / "codes.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="cannot read"):
        SemanticIds.load(folder)
    with pytest.raises(DataError, match="cannot read"):
        SemanticIds.load(tmp_path / "missing")


def test_key_depends_on_input_and_config():
    pytest.importorskip("faiss")
    x = np.random.default_rng(1).standard_normal((60, 4)).astype(np.float32)
    a = semantic_ids(x, "pq", levels=2, codebook_size=4)
    assert a.key == semantic_ids(x, "pq", levels=2, codebook_size=4).key
    assert a.key != semantic_ids(x + 1, "pq", levels=2, codebook_size=4).key
    assert a.key != semantic_ids(x, "pq", levels=2, codebook_size=5).key


def test_diagnostics_hand_computed():
    codes = np.array([[0, 0], [0, 1], [1, 2], [1, 3]])
    d = code_diagnostics(codes, (4, 8))
    assert d["levels"][0]["used"] == 2 and d["levels"][0]["utilisation"] == 0.5
    assert d["levels"][0]["entropy_bits"] == pytest.approx(1.0)
    assert d["levels"][1]["entropy_bits"] == pytest.approx(2.0)
    assert d["levels"][1]["max_entropy_bits"] == pytest.approx(3.0)
    assert entropy_bits(np.array([0, 0, 0, 1]), 2) == pytest.approx(0.8112781)
    d.update(collision_rate=0.25, distinct_before=3, reconstruction_error=None)
    text = format_diagnostics(d)
    assert "collision rate 25.00%" in text and "reconstruction error -" in text
    assert text.splitlines()[3].split() == ["0", "4", "2", "0.500", "1.000", "2.000"]


def test_token_offsets():
    ids = SemanticIds(np.array([[0, 1, 0], [1, 0, 0]]), (2, 3, 1))
    np.testing.assert_array_equal(ids.token_offsets, [0, 2, 5])
