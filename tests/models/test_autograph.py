"""AutoGraph: what the knowledge factor nodes add, and that without them it is its backbone."""

from __future__ import annotations

import numpy as np
import pytest

from llmrec.data import Interactions
from llmrec.errors import ConfigError, DataError
from llmrec.models import BPR, AutoGraph, LightGCN
from llmrec.testing.synthetic import two_groups

OPTS = {"embedding_size": 16, "batch_size": 64, "learning_rate": 1e-2, "epochs": 15,
        "seed": 5}


def item_vectors(seed=1) -> np.ndarray:
    """Group A items near a, group B items near b, the cold item 20 exactly a."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=8), rng.normal(size=8)
    v = np.vstack([a + 0.05 * rng.normal(size=(10, 8)), b + 0.05 * rng.normal(size=(10, 8)),
                   a[None]])
    return v.astype(np.float32)


def test_without_factors_it_is_exactly_its_backbone():
    data = two_groups()
    for backbone, plain in (("lightgcn", LightGCN(**OPTS)), ("bpr", BPR(**OPTS))):
        ag = AutoGraph(**OPTS, backbone=backbone, use_factors=False).fit(data, progress=False)
        plain.fit(data, progress=False)
        users = np.arange(60)
        hist = [np.array([0])] * 60
        np.testing.assert_allclose(ag.score(hist, users).numpy(),
                                   plain.score(hist, users).numpy(), rtol=1e-5, atol=1e-6)


def test_item_factors_carry_knowledge_to_a_cold_item():
    data = two_groups()
    hist = [np.array([0])] * 60
    users = np.arange(60)

    def preference(model):
        s = model.fit(data, progress=False).score(hist, users).numpy()[:, 20]
        return s[:30].mean() - s[30:].mean()     # group A users minus group B users

    with_factors = preference(AutoGraph(**OPTS, levels=2, codebook_size=2)
                              .set_knowledge(None, item_vectors()))
    without = preference(LightGCN(**OPTS))
    # the cold item shares its factor nodes with group A's items: group A users prefer it
    assert with_factors > 0.5
    assert with_factors > 5 * abs(without)


def test_factor_edges_follow_the_codes():
    data = two_groups()
    rng = np.random.default_rng(0)
    users = rng.normal(size=(60, 8)).astype(np.float32)
    users[1] = users[0]                          # identical knowledge, identical factors
    model = AutoGraph(**{**OPTS, "epochs": 1}, levels=3, codebook_size=4)
    model.set_knowledge(users, item_vectors()).fit(data, progress=False)
    assert model.user_codes.shape == (60, 3) and model.item_codes.shape == (21, 3)
    assert (model.user_codes >= 0).all() and (model.user_codes < 4).all()
    np.testing.assert_array_equal(model.user_codes[0], model.user_codes[1])
    ui, fi = model._factor_edges(model.user_codes, 0, 81)
    assert len(ui) == 60 * 3                      # one factor node per user and level
    assert set(fi[ui == 0]) == set(fi[ui == 1])
    assert set(model.fit_info["relation_weights"]) == {"user-factor", "item-factor"}


def test_bad_knowledge_is_one_clear_error():
    data = two_groups()
    with pytest.raises(ConfigError, match="needs knowledge vectors"):
        AutoGraph(**OPTS).fit(data, progress=False)
    with pytest.raises(DataError, match="item knowledge vectors have 5 rows; the training "
                                        "data has 21 items"):
        AutoGraph(**OPTS).set_knowledge(None, np.ones((5, 4))).fit(data, progress=False)
    with pytest.raises(DataError, match="finite 2-d array"):
        AutoGraph(**OPTS).set_knowledge(np.full((60, 4), np.nan), None)
    with pytest.raises(ConfigError, match="backbone must be one of"):
        AutoGraph(backbone="mf")


def test_user_vectors_are_means_of_training_items_only():
    from llmrec.models.autograph import mean_vectors

    items = np.array([[1.0, 0.0], [0.0, 1.0], [4.0, 4.0]], np.float32)
    train = Interactions(np.array([0, 0, 2]), np.array([0, 1, 2]), np.arange(3),
                         np.full(3, np.nan), 3, 3)
    np.testing.assert_allclose(mean_vectors(items, train),
                               [[0.5, 0.5], [0.0, 0.0], [4.0, 4.0]])


def test_llmrec_train_builds_text_factors_from_the_data_set(ml100k, tmp_path):
    from llmrec.models import load_model
    from llmrec.runs import load_config, train_run
    from llmrec.testing.slices import recbole_slice

    data = recbole_slice(ml100k, tmp_path / "slice", 120)
    cfg = load_config(model="autograph", dataset=str(data),
                      sets=["model.epochs=2", "model.levels=2", "model.codebook_size=8",
                            "model.embedding_size=16", "model.threads=1"])
    run = train_run(cfg, tmp_path / "run", progress=False)
    model = load_model(run.run_dir / "model")
    assert (model.item_codes >= 0).all() and (model.user_codes >= 0).all()
    # items with the same genres and similar titles share first-level factors: codes are
    # not all distinct and not all equal
    first = model.item_codes[:, 0]
    assert 1 < len(np.unique(first)) <= 8
    assert run.metrics["test"]["ndcg@10"] > 0
