"""RLMRec: alignment pulls collaborative vectors towards what the profiles say; without it the
model is its backbone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmrec.errors import ConfigError, DataError
from llmrec.models import BPR, LightGCN, RLMRec
from llmrec.models.rlmrec import info_nce

from llmrec.testing.synthetic import two_groups

OPTS = {"embedding_size": 16, "batch_size": 64, "learning_rate": 1e-2, "epochs": 15,
        "seed": 5}


def profiles(seed=2) -> tuple[np.ndarray, np.ndarray]:
    """Group A's items 0-4 and 5-9 have two different profiles (the interactions cannot tell
    them apart: users pick items of their group at random); group B's items one profile."""
    rng = np.random.default_rng(seed)
    a1, a2, b = rng.normal(size=(3, 8))
    items = np.vstack([np.repeat(a1[None], 5, 0), np.repeat(a2[None], 5, 0),
                       np.repeat(b[None], 11, 0)]) + 0.01 * rng.normal(size=(21, 8))
    users = rng.normal(size=(60, 8))
    return users.astype(np.float32), items.astype(np.float32)


def halves_gap(model) -> float:
    """Mean cosine of group A item vectors within a profile half minus across halves."""
    _, items = model.final_embeddings()
    v = torch.nn.functional.normalize(items[:10], dim=1)
    sim = (v @ v.T).numpy()
    same = np.add.outer(np.arange(10) < 5, np.arange(10) < 5) != 1
    off = ~np.eye(10, dtype=bool)
    return float(sim[same & off].mean() - sim[~same].mean())


def test_contrastive_alignment_separates_what_only_the_profiles_tell_apart():
    data = two_groups()
    aligned = RLMRec(**OPTS, alignment="contrastive", kd_weight=1.0
                     ).set_knowledge(*profiles()).fit(data, progress=False)
    plain = RLMRec(**OPTS, alignment="none").fit(data, progress=False)
    assert halves_gap(aligned) > 0.2
    assert halves_gap(aligned) > halves_gap(plain) + 0.15


def masked_reconstruction_accuracy(model, item_profiles) -> float:
    """Mask each item alone, propagate, map into profile space: share of items whose own
    group's profile (A: items 0-9, B: 10-20) is nearer than the other group's."""
    m = model.module
    groups = np.r_[np.zeros(10), np.ones(11)].astype(int)
    centres = torch.tensor(np.stack([item_profiles[groups == g].mean(0) for g in (0, 1)]))
    right = 0
    with torch.no_grad():
        x = m.embedding.weight
        for i in range(21):
            masked = torch.zeros(len(x), 1, dtype=torch.bool)
            masked[model.n_users + i] = True
            _, items = m.propagate(torch.where(masked, m.mask, x))
            guess = torch.nn.functional.cosine_similarity(m.project(items[i])[None], centres)
            right += int(guess.argmax()) == groups[i]
    return right / 21


def test_generative_alignment_learns_to_reconstruct_a_masked_items_profile():
    data = two_groups()
    users, items = profiles()
    trained = RLMRec(**OPTS, alignment="generative", kd_weight=1.0, mask_ratio=0.5
                     ).set_knowledge(users, items).fit(data, progress=False)
    untrained = RLMRec(**{**OPTS, "epochs": 1}, alignment="generative", kd_weight=0.0,
                       mask_ratio=0.5).set_knowledge(users, items).fit(data, progress=False)
    assert masked_reconstruction_accuracy(trained, items) >= 0.9
    assert masked_reconstruction_accuracy(untrained, items) < 0.9


def test_without_alignment_it_is_exactly_its_backbone():
    data = two_groups()
    hist, users = [np.array([0])] * 60, np.arange(60)
    for backbone, plain in (("lightgcn", LightGCN(**OPTS)), ("bpr", BPR(**OPTS))):
        ours = RLMRec(**OPTS, backbone=backbone, alignment="none").fit(data, progress=False)
        plain.fit(data, progress=False)
        np.testing.assert_allclose(ours.score(hist, users).numpy(),
                                   plain.score(hist, users).numpy(), rtol=1e-5, atol=1e-6)


def test_info_nce_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # own rows identical, the other orthogonal: logits [[1/t, 0], [0, 1/t]]
    t = 0.5
    expected = -np.log(np.exp(2) / (np.exp(2) + 1))
    assert float(info_nce(a, a, t)) == pytest.approx(expected, rel=1e-6)


def test_bad_profiles_are_one_clear_error():
    data = two_groups()
    users, items = profiles()
    with pytest.raises(ConfigError, match="needs user and item profile vectors"):
        RLMRec(**OPTS).fit(data, progress=False)
    with pytest.raises(DataError, match="user knowledge vectors have 3 rows; the training "
                                        "data has 60 users"):
        RLMRec(**OPTS).set_knowledge(users[:3], items).fit(data, progress=False)
    with pytest.raises(ConfigError, match="same encoder"):
        RLMRec(**OPTS).set_knowledge(users[:, :4], items).fit(data, progress=False)
    with pytest.raises(ConfigError, match="alignment must be one of"):
        RLMRec(alignment="both")
