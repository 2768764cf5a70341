"""BPR-MF and LightGCN beyond the shared contract: the graph, the sampler, the scoring paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmrec.data import Interactions, leave_one_out
from llmrec.errors import ConfigError
from llmrec.eval import evaluate
from llmrec.models import BPR, LightGCN, load_model
from llmrec.models._pairwise import sample_negatives, unique_pairs
from llmrec.models.lightgcn import LightGCNModule, normalized_adjacency
from llmrec.testing import chain_interactions
from llmrec.train import on_validation

FAST = dict(embedding_size=16, batch_size=128, learning_rate=1e-2, patience=50)


def interactions(pairs: list[tuple[int, int]], n_users: int, n_items: int) -> Interactions:
    pairs = sorted(pairs)
    users, items = np.array(pairs).T
    n = len(pairs)
    return Interactions(users, items, np.arange(n), np.full(n, np.nan), n_users, n_items)


def two_groups(n_users: int = 80, items_per_group: int = 20, per_user: int = 12,
               seed: int = 0) -> tuple[Interactions, np.ndarray]:
    """Users of group g (u % 2) only ever touch items of group g (i // items_per_group);
    both groups' items are equally popular, so popularity cannot tell them apart."""
    rng = np.random.default_rng(seed)
    pairs = []
    for u in range(n_users):
        g = u % 2
        for i in rng.choice(items_per_group, per_user, replace=False):
            pairs.append((u, g * items_per_group + int(i)))
    return interactions(pairs, n_users, 2 * items_per_group), np.arange(n_users) % 2


# -- the graph -----------------------------------------------------------------------------
def dense_reference(users, items, n_users, n_items, e0: torch.Tensor, layers: int):
    """Plain LightGCN: dense A, D^-1/2 A D^-1/2 by loops, mean of the layer outputs."""
    n = n_users + n_items
    a = torch.zeros(n, n, dtype=torch.float64)
    for u, i in zip(users, items):
        a[u, n_users + i] = a[n_users + i, u] = 1.0
    deg = a.sum(1)
    norm = torch.zeros_like(a)
    for r in range(n):
        for c in range(n):
            if a[r, c]:
                norm[r, c] = 1.0 / (deg[r].sqrt() * deg[c].sqrt())
    x, outs = e0, [e0]
    for _ in range(layers):
        x = norm @ x
        outs.append(x)
    out = torch.stack(outs).mean(0)
    return norm, out[:n_users], out[n_users:]


@pytest.fixture
def small_graph():
    # user 3 and item 5 have no edges (zero degree: no inf, no NaN); pair (0, 1) is repeated
    inter = interactions([(0, 0), (0, 1), (0, 1), (1, 1), (1, 2), (1, 4), (2, 0), (2, 3),
                          (4, 2), (4, 3), (4, 4)], n_users=5, n_items=6)
    users, items = unique_pairs(inter)
    return inter, users, items


def test_unique_pairs_collapse_repeats(small_graph):
    inter, users, items = small_graph
    assert len(inter) == 11 and len(users) == 10
    assert list(zip(users.tolist(), items.tolist()))[:3] == [(0, 0), (0, 1), (1, 1)]


def test_adjacency_equals_dense_normalisation(small_graph):
    _, users, items = small_graph
    norm, _, _ = dense_reference(users, items, 5, 6, torch.zeros(11, 1, dtype=torch.float64), 0)
    sparse = normalized_adjacency(users, items, 5, 6).to_dense().double()
    torch.testing.assert_close(sparse, norm, rtol=1e-6, atol=1e-7)
    assert torch.equal(sparse, sparse.T)


@pytest.mark.parametrize("layers", [1, 3])
def test_propagation_and_gradient_equal_dense_reference(small_graph, layers):
    _, users, items = small_graph
    module = LightGCNModule(normalized_adjacency(users, items, 5, 6), 5, 6, 4, layers)
    e0 = module.embedding.weight
    got_u, got_i = module()
    ref = e0.detach().double().requires_grad_(True)
    _, ref_u, ref_i = dense_reference(users, items, 5, 6, ref, layers)
    torch.testing.assert_close(got_u.double(), ref_u, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got_i.double(), ref_i, rtol=1e-5, atol=1e-6)
    # gradient of an arbitrary loss through the symmetric sparse product
    w = torch.randn(11, 4, generator=torch.Generator().manual_seed(0))
    (torch.cat([got_u, got_i]) * w).sum().backward()
    (torch.cat([ref_u, ref_i]) * w.double()).sum().backward()
    torch.testing.assert_close(e0.grad.double(), ref.grad, rtol=1e-5, atol=1e-6)
    # the isolated user keeps 1/(K+1) of its own vector and nothing else
    torch.testing.assert_close(got_u[3], e0[3] / (layers + 1))


# -- the sampler ---------------------------------------------------------------------------
def test_negatives_are_unseen_and_cover_every_unseen_item():
    inter, _ = two_groups()
    users, items = unique_pairs(inter)
    keys = users * inter.n_items + items
    rng = np.random.default_rng(0)
    draw_users = np.repeat(np.arange(inter.n_users), 50)
    neg = sample_negatives(rng, draw_users, inter.n_items, keys, k=3)      # (4000, 3)
    assert neg.shape == (len(draw_users), 3)
    seen = set(keys.tolist())
    assert not any(int(u) * inter.n_items + int(i) in seen
                   for u, row in zip(draw_users, neg) for i in row)
    for u in (0, 1):                   # all 28 unseen items come up in 150 draws, about evenly
        mine = neg[draw_users == u].ravel()
        unseen = sorted(set(range(inter.n_items)) - set(inter.sequence(u).tolist()))
        counts = np.bincount(mine, minlength=inter.n_items)[unseen]
        assert sorted(set(mine.tolist())) == unseen and counts.max() <= 4 * counts.mean()


# -- learning a known structure ------------------------------------------------------------
@pytest.mark.parametrize("cls", [BPR, LightGCN])
def test_learns_two_disjoint_user_groups(cls):
    """Every user's unseen items of their own group must outrank every item of the other
    group -- with the learned user vectors and with fold-in from the history alone."""
    inter, group = two_groups()
    model = cls(**FAST, epochs=30).fit(inter, progress=False)
    histories = [inter.sequence(u) for u in range(inter.n_users)]
    item_group = np.arange(inter.n_items) // 20
    for users in (np.arange(inter.n_users), None):
        scores = model.score(histories, users).numpy()
        ok = []
        for u, h in enumerate(histories):
            own = np.setdiff1d(np.flatnonzero(item_group == group[u]), h)
            other = np.flatnonzero(item_group != group[u])
            ok.append(scores[u, own].min() > scores[u, other].max())
        assert np.mean(ok) >= 0.9, f"{cls.name} users={users is not None}: {np.mean(ok):.0%}"


# -- scoring paths -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted_lightgcn():
    split = leave_one_out(chain_interactions())
    model = LightGCN(**FAST, epochs=20).fit(split.train, split.valid_cases(), progress=False)
    return model, split


def test_known_users_use_their_vector_others_are_folded_in(fitted_lightgcn):
    model, split = fitted_lightgcn
    user_emb, item_emb = model.final_embeddings()
    h = [split.train.sequence(0), split.train.sequence(1), split.train.sequence(2)]
    users = np.array([0, model.n_users + 7, -1])          # known, out of range, negative
    scores = model.score(h, users)
    torch.testing.assert_close(scores[0], item_emb @ user_emb[0])
    for row in (1, 2):
        folded = item_emb[torch.from_numpy(h[row].astype(np.int64))].mean(0)
        torch.testing.assert_close(scores[row], item_emb @ folded)
    torch.testing.assert_close(model.score(h[1:]), scores[1:])


def test_scores_after_training_come_from_the_best_weights(fitted_lightgcn):
    """The cached propagation is refreshed when the trainer restores the best epoch."""
    model, split = fitted_lightgcn
    # validation improved after epoch 1 (the cache follows optimizer steps) and the best
    # epoch is not the last (the trainer restored earlier weights)
    assert 1 < model.fit_info["best_epoch"] < model.fit_info["epochs_run"]
    again = evaluate(model, split.valid_cases(), ks=(10,))["ndcg@10"]
    assert again == pytest.approx(model.fit_info["best_valid_ndcg@10"], abs=1e-9)
    with torch.no_grad():
        fresh_users, fresh_items = model.module()             # no cache: the weights now
    cached_users, cached_items = model.final_embeddings()
    assert torch.equal(cached_users, fresh_users) and torch.equal(cached_items, fresh_items)


def test_saved_model_scores_known_users_identically(fitted_lightgcn, tmp_path):
    model, split = fitted_lightgcn
    cases = split.test_cases()
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    h, users = cases.histories(0, 30), cases.users[:30]
    assert torch.equal(loaded.score(h, users), model.score(h, users))
    assert loaded.item_embeddings().shape == (model.n_items, 16)


def test_interrupted_training_resumes_to_the_same_model(tmp_path):
    split = leave_one_out(chain_interactions())
    make = lambda: LightGCN(**FAST, epochs=5)                          # noqa: E731
    whole = make().fit(split.train, split.valid_cases(), progress=False)

    def stop(epoch, score):
        if epoch == 2:
            raise KeyboardInterrupt
    with on_validation(stop), pytest.raises(KeyboardInterrupt):
        make().fit(split.train, split.valid_cases(), run_dir=tmp_path, progress=False)
    resumed = make().fit(split.train, split.valid_cases(), run_dir=tmp_path, progress=False)
    assert resumed.fit_info["resumed_from"] == 1     # the hook ran before epoch 2's checkpoint
    h = split.test_cases().histories(0, 20)
    torch.testing.assert_close(resumed.score(h), whole.score(h))


# -- bad configuration ---------------------------------------------------------------------
@pytest.mark.parametrize("cls,option,value,message", [
    (BPR, "embedding_size", 0, "embedding_size must be > 0"),
    (BPR, "num_negatives", 0, "num_negatives must be > 0"),
    (BPR, "reg_weight", -1e-4, "reg_weight must be >= 0"),
    (BPR, "init_std", float("nan"), "init_std must be > 0"),
    (BPR, "learning_rate", float("inf"), "learning_rate must be > 0"),
    (BPR, "batch_size", "big", "bpr.batch_size must be an integer"),
    (BPR, "num_layers", 2, "unknown option 'bpr.num_layers'"),
    (LightGCN, "num_layers", 0, "num_layers must be in 1..16 (0 layers is matrix "
                                "factorisation: use model bpr), not 0"),
    (LightGCN, "num_layers", 40, "num_layers must be in 1..16"),
])
def test_bad_config_is_one_clear_line(cls, option, value, message):
    with pytest.raises(ConfigError) as e:
        cls(**{option: value})
    assert message in str(e.value) and "\n" not in str(e.value)
