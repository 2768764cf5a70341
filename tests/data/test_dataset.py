"""Preprocessing and the dataset builder."""

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmrec.data import Interactions, Preprocessing, Vocabulary, build_dataset, describe
from llmrec.data import tie_order_agreement
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


def tied_rows(n_users=200):
    """Every user rates a, b, c, d in one second (file order a b c d), then e later."""
    return [(str(u), it, t, 1) for u in range(n_users)
            for it, t in (("a", 7), ("b", 7), ("c", 7), ("d", 7), ("e", 9))]


def test_random_ties_shuffle_each_user_alike_on_every_run_and_keep_time_order():
    rows = tied_rows()
    file = build_dataset("t", frame(rows))
    rand = build_dataset("t", frame(rows), preprocessing=Preprocessing(ties="random"))
    again = build_dataset("t", frame(rows), preprocessing=Preprocessing(ties="random"))
    assert np.array_equal(rand.interactions.item, again.interactions.item)
    seqs = [tuple(rand.items.to_raw(rand.interactions.sequence(u))) for u in range(200)]
    assert all(s[-1] == "e" and sorted(s[:4]) == list("abcd") for s in seqs)
    assert all(tuple(file.items.to_raw(file.interactions.sequence(u))) == tuple("abcde")
               for u in range(200))
    # not one global item order: which tied item comes last before "e" varies by user
    last_tied = [s[3] for s in seqs]
    assert {last_tied.count(x) for x in "abcd"} <= set(range(30, 71)), last_tied
    assert len(set(seqs)) > 12


def test_tie_order_agreement_tells_one_item_order_from_a_random_one():
    rows = tied_rows()
    file = build_dataset("t", frame(rows))
    rand = build_dataset("t", frame(rows), preprocessing=Preprocessing(ties="random"))
    t = tie_order_agreement(file.interactions)
    assert t["item_pairs"] == 3 and t["agreement"] == 1.0     # a-b, b-c, c-d everywhere
    r = tie_order_agreement(rand.interactions)
    assert r["item_pairs"] == 6 and abs(r["agreement"] - r["chance"]) < 0.08
    assert 0.52 < t["chance"] < 0.54 and 0.52 < r["chance"] < 0.6  # pairs in 200 / ~67 users
    assert tie_order_agreement(file.interactions, min_users=201)["agreement"] is None
    info = describe(file)
    assert info["tie_order"] == t
    assert info["users_with_last_two_tied"] == 0.0     # e comes two seconds later
    # a repeated item in one second carries no order; no ties at all gives no figure
    one = Interactions(np.zeros(3, int), np.array([1, 1, 2]), np.array([5, 5, 6]),
                       np.full(3, np.nan), 1, 3)
    assert tie_order_agreement(one, min_users=1)["item_pairs"] == 0
    assert describe(build_dataset("t", frame(rows[:4] + [("0", "f", 7, 1)])))[
        "users_with_last_two_tied"] == 1.0


def test_chance_agreement_is_the_binomial_expectation():
    from llmrec.data._stats import _chance_agreement
    assert _chance_agreement(1) == 1.0 and _chance_agreement(2) == 0.75  # 2 of 4 orders split
    assert _chance_agreement(10) == pytest.approx(0.623, abs=1e-3)
    assert 0.51 < _chance_agreement(1000) < 0.52


def test_ties_option_keeps_earlier_run_hashes_and_reaches_the_data():
    from llmrec.runs import load_config
    from llmrec.testing.options import check_added_option
    rand = check_added_option('data.ties="file"', 'data.ties="random"', model="pop")
    assert rand.data.preprocessing() == Preprocessing(user_core=5, item_core=5, ties="random")
    with pytest.raises(ConfigError, match="data.ties"):
        load_config(model="pop", dataset="ml-100k", sets=['data.ties="item"'])


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
    with pytest.raises(ConfigError, match="ties"):
        Preprocessing(ties="item")
