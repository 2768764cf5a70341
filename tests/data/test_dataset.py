"""Preprocessing and the dataset builder."""

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmrec.data import Preprocessing, Vocabulary, build_dataset
from llmrec.errors import ConfigError, DataError


def frame(rows, rating=True):
    data = {"user_id": [r[0] for r in rows], "item_id": [r[1] for r in rows],
            "timestamp": [r[2] for r in rows]}
    if rating:
        data["rating"] = [float(r[3]) for r in rows]
    return pl.DataFrame(data)


def test_min_rating_makes_implicit_feedback():
    ds = build_dataset("t", frame([("1", "a", 1, 5), ("1", "b", 2, 2), ("2", "a", 3, 4)]),
                       preprocessing=Preprocessing(min_rating=4))
    assert len(ds.interactions) == 2 and ds.items.ids.tolist() == ["a"]


def test_min_rating_without_ratings_is_refused():
    with pytest.raises(ConfigError, match="needs ratings"):
        build_dataset("t", frame([("1", "a", 1, 5)], rating=False),
                      preprocessing=Preprocessing(min_rating=4))


@pytest.mark.parametrize("keep,expected_ts", [("first", 1), ("last", 3)])
def test_dedup_keeps_first_or_last_in_time(keep, expected_ts):
    rows = [("1", "a", 3, 5), ("1", "b", 2, 5), ("1", "a", 1, 4)]
    ds = build_dataset("t", frame(rows), preprocessing=Preprocessing(dedup=keep))
    a = ds.items.index("a")
    ts = ds.interactions.timestamp[ds.interactions.item == a]
    assert ts.tolist() == [expected_ts]


def test_dedup_none_keeps_repeats():
    rows = [("1", "a", 3, 5), ("1", "a", 1, 4)]
    assert len(build_dataset("t", frame(rows), preprocessing=Preprocessing(dedup="none"))
               .interactions) == 2


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=1, max_size=150),
       st.integers(1, 4), st.integers(1, 4))
def test_kcore_property(pairs, uk, ik):
    rows = [(str(u), str(i), t, 1) for t, (u, i) in enumerate(pairs)]
    try:
        ds = build_dataset("t", frame(rows), preprocessing=Preprocessing(
            dedup="none", user_core=uk, item_core=ik))
    except DataError as e:
        assert "no interactions left" in str(e)
        return
    assert ds.interactions.lengths().min() >= uk
    assert ds.interactions.item_counts().min() >= ik


def test_chronological_with_file_order_tie_break():
    rows = [("1", "z", 5, 1), ("1", "b", 5, 1), ("1", "a", 1, 1), ("1", "y", 5, 1)]
    ds = build_dataset("t", frame(rows))
    assert ds.items.to_raw(ds.interactions.sequence(0)).tolist() == ["a", "z", "b", "y"]


def test_vocabulary_natural_order_and_lookup():
    v = Vocabulary.from_values(["10", "9", "100"])
    assert v.ids.tolist() == ["9", "10", "100"]
    assert v.index(10) == 1 and "100" in v and v.lookup(["9", "x"]).tolist() == [0, -1]
    with pytest.raises(ValueError):
        Vocabulary(np.array(["a", "a"]))


def test_features_aligned_to_item_index():
    ds = build_dataset("t", frame([("1", "b", 1, 5), ("1", "a", 2, 5)]),
                       items=pl.DataFrame({"item_id": ["a", "b", "c"],
                                           "title": ["A", "B", "C"]}))
    assert ds.item_features["item_id"].to_list() == ["a", "b"]
    assert ds.item_titles() == ["A", "B"]


def test_duplicate_item_rows_are_refused():
    with pytest.raises(DataError, match="more than once"):
        build_dataset("t", frame([("1", "a", 1, 5)]),
                      items=pl.DataFrame({"item_id": ["a", "a"], "title": ["A", "A2"]}))


def test_empty_after_filtering_names_the_settings():
    with pytest.raises(DataError, match="no interactions left.*user_core"):
        build_dataset("t", frame([("1", "a", 1, 5)]),
                      preprocessing=Preprocessing(user_core=3))


def test_bad_preprocessing_options():
    with pytest.raises(ConfigError):
        Preprocessing(dedup="sometimes")
    with pytest.raises(ConfigError):
        Preprocessing(user_core=-1)
