"""CTR samples from ML-100K: labels, the profile cut, a history that never sees the sample or
anything at or after its time, and the documented splits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmrec.ctr import TEST, TRAIN, VALID, CTRDataConfig, build_ctr_data, history_index
from llmrec.data import Interactions
from llmrec.errors import ConfigError, DataError


def reference_history(user, timestamp, n_history):
    """Plain loops: for each event, the last ``n_history`` earlier-in-time events of its user."""
    out = []
    for k in range(len(user)):
        earlier = [j for j in range(len(user))
                   if user[j] == user[k] and timestamp[j] < timestamp[k]]
        out.append(earlier[-n_history:] if n_history else [])
    return out


events = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 6)), min_size=1, max_size=50)


@settings(max_examples=200, deadline=None)
@given(events, st.integers(1, 6))
def test_history_is_the_last_events_strictly_before_the_sample(rows, n_history):
    rows.sort()                                           # by user, then time (ties kept)
    user = np.array([r[0] for r in rows])
    ts = np.array([r[1] for r in rows], dtype=np.int64)
    inter = Interactions(user, np.zeros(len(user)), ts, np.zeros(len(user)), 4, 1)
    idx, valid = history_index(inter.user, inter.timestamp, inter.indptr, n_history)
    expected = reference_history(user, ts, n_history)
    for k in range(len(user)):
        got = idx[k][valid[k]].tolist()
        assert got == expected[k]
        assert all(user[j] == user[k] and ts[j] < ts[k] for j in got)   # no leakage
        assert not valid[k][:n_history - len(got)].any()                # padding in front


def test_ml100k_samples_labels_and_profile(ml100k_dataset, ml100k_ctr):
    ds, d = ml100k_dataset, ml100k_ctr
    lengths = ds.interactions.lengths()
    profile = np.minimum((lengths + 1) // 2, 30)
    assert len(d) == len(ds.interactions) - profile.sum() == d.meta["samples"]
    assert len(d.profile) == profile.sum()
    # samples are exactly the events after each user's profile, with rating >= 4 as a click
    inter = ds.interactions
    is_sample = inter.positions() >= profile[inter.user]
    np.testing.assert_array_equal(d.item, inter.item[is_sample])
    np.testing.assert_array_equal(d.label, (inter.rating[is_sample] >= 4).astype(np.float32))
    assert 0.5 < d.label.mean() < 0.6
    # every profile event precedes (or ties with) every sample of its user
    last_profile = np.full(ds.n_users, np.iinfo(np.int64).min)
    np.maximum.at(last_profile, d.profile.user, d.profile.timestamp)
    assert (d.timestamp >= last_profile[d.user]).all()


def test_ml100k_history_never_reaches_the_sample_time(ml100k_dataset, ml100k_ctr):
    d, inter = ml100k_ctr, ml100k_dataset.interactions
    assert d.hist_items.shape == (len(d), 10)
    real = d.hist_items != d.schema.n_items
    assert ((d.hist_ratings > 0) == real).all()
    # for every sample, each history item was rated by the same user strictly earlier
    when = {}
    for u, i, t in zip(inter.user.tolist(), inter.item.tolist(), inter.timestamp.tolist()):
        when[(u, i)] = t
    rows, cols = np.nonzero(real)
    hist_t = np.array([when[(u, i)] for u, i in zip(d.user[rows].tolist(),
                                                     d.hist_items[rows, cols].tolist())])
    assert (hist_t < d.timestamp[rows]).all()
    assert not (d.hist_items == d.item[:, None]).any()     # ML-100K: one rating per pair


def test_user_split_is_8_1_1_over_disjoint_users(ml100k_ctr):
    d = ml100k_ctr
    users = [set(d.user[d.part == p].tolist()) for p in (TRAIN, VALID, TEST)]
    assert not (users[0] & users[1] or users[0] & users[2] or users[1] & users[2])
    assert [len(u) for u in users] == [755, 94, 94]
    assert d.train.part.max() == TRAIN and len(d.train) + len(d.valid) + len(d.test) == len(d)


def test_chronological_split_orders_each_users_samples(ml100k_dataset):
    d = build_ctr_data(ml100k_dataset, CTRDataConfig(split="chronological"))
    for u in np.unique(d.user)[:200]:
        parts, ts = d.part[d.user == u], d.timestamp[d.user == u]
        assert (np.diff(parts) >= 0).all()                  # train, then valid, then test
        assert {TRAIN, VALID, TEST} <= set(parts.tolist())
        assert ts[parts == TRAIN].max() <= ts[parts == TEST].min()
    assert abs(d.meta["test"] / len(d) - 0.1) < 0.01


def test_features_and_batches(ml100k_dataset, ml100k_ctr):
    d = ml100k_ctr
    assert list(d.schema.user_fields) == ["age", "gender", "occupation", "zip"]
    assert d.schema.user_fields["gender"] == 3 and d.schema.n_genres == 19 + 1
    zips = ml100k_dataset.user_features["zip_code"].str.slice(0, 2).to_numpy()
    same_code = d.user_table[:, 3][:, None] == d.user_table[:, 3][None, :]
    assert (same_code == (zips[:, None] == zips[None, :])).all()
    toy = ml100k_dataset.items.index("1")                   # Toy Story: 3 genres
    assert (d.item_genres[toy] > 0).sum() == 3
    b = d.batch(np.arange(7))
    assert b["hist_items"].shape == (7, 10) and b["user_fields"].shape == (7, 4)
    assert "item_knowledge" not in b


def test_knowledge_tables_must_fit(ml100k_ctr):
    d = ml100k_ctr
    with pytest.raises(DataError, match="do not fit"):
        d.with_knowledge(np.zeros((3, 4)), np.zeros((d.schema.n_users, 4)))
    k = d.with_knowledge(np.ones((d.schema.n_items, 4)), np.ones((d.schema.n_users, 4)))
    assert k.schema.knowledge_dim == 4 and k.batch(np.arange(2))["user_knowledge"].shape == (2, 4)
    assert d.schema.knowledge_dim == 0                      # the original is unchanged


def test_config_is_validated():
    with pytest.raises(ConfigError):
        CTRDataConfig(valid_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ConfigError):
        CTRDataConfig(history_len=0)


def test_item_codes_become_categorical_item_fields(ml100k_ctr):
    d = ml100k_ctr
    codes = np.stack([np.arange(d.schema.n_items) % 7, np.arange(d.schema.n_items) % 3], 1)
    withc = d.with_item_codes(codes)
    names = list(withc.schema.item_fields)
    assert names == [*d.schema.item_fields, "sid0", "sid1"]
    assert withc.schema.item_fields["sid0"] == 8 and withc.schema.item_fields["sid1"] == 4
    batch = withc.batch(np.arange(50))
    np.testing.assert_array_equal(batch["item_fields"][:, -2:].numpy(),
                                  codes[d.item[:50]] + 1)          # 0 stays "unknown"
    assert d.item_table.shape[1] == len(d.schema.item_fields)     # the original is untouched
    with pytest.raises(DataError, match="already have a field 'sid0'"):
        withc.with_item_codes(codes)
    for bad in (codes[:-1], -codes - 1, codes.astype(np.float32), codes[:, 0]):
        with pytest.raises(DataError, match="non-negative integers of shape"):
            d.with_item_codes(bad)
