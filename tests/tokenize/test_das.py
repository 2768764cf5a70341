"""DAS: an RQ-VAE trained with contrastive alignment to collaborative signal."""

from __future__ import annotations

import numpy as np
import pytest

from llmrec.errors import DataError
from llmrec.tokenize import DAS, RQVAE, ppmi_svd, semantic_ids

OPTS = dict(levels=2, codebook_size=8, hidden_sizes=(64,), latent_size=16, batch_size=256,
            seed=1)


@pytest.fixture(scope="module")
def world():
    """256 unit-norm item vectors with a strong content cluster (8) and a weak direction of
    their collaborative group (8, independent of the content); 600 users who each consume 8
    items of one collaborative group."""
    rng = np.random.default_rng(0)
    n, d, g = 256, 32, 8
    content = rng.integers(0, g, n)
    group = rng.permutation(np.arange(n) % g)
    x = (rng.standard_normal((g, d))[content] * 2 + 0.5 * rng.standard_normal((n, d))
         + 0.6 * rng.standard_normal((g, d))[group])
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    users, items = [], []
    for u in range(600):
        members = np.flatnonzero(group == rng.integers(g))
        picked = rng.choice(members, 8, replace=False)
        users += [u] * 8
        items += picked.tolist()
    return x, np.array(users), np.array(items), content, group, rng


def purity(codes: np.ndarray, labels: np.ndarray) -> float:
    """Share of items whose code's majority label is their own."""
    return sum(np.bincount(labels[codes == c]).max() for c in np.unique(codes)) / len(labels)


def test_das_codes_follow_collaborative_groups_and_a_shuffled_control_does_not(world):
    x, users, items, content, group, rng = world
    plain = RQVAE(**OPTS, epochs=60).fit(x).codes_[:, 0]
    das = DAS(**OPTS, epochs=60, cf_weight=1.0, cooc_weight=1.0).fit(
        (x, users, items, len(x))).codes_[:, 0]
    shuffled = DAS(**OPTS, epochs=60, cf_weight=1.0, cooc_weight=1.0).fit(
        (x, users, rng.permutation(items), len(x))).codes_[:, 0]
    assert purity(plain, content) > 0.6                   # RQ-VAE codes follow the content
    assert purity(das, group) > purity(plain, group) + 0.25
    assert purity(shuffled, group) < purity(plain, group) + 0.08


def test_zero_alignment_is_plain_rqvae(world):
    x, users, items, *_ = world
    plain = RQVAE(**OPTS, epochs=8).fit(x)
    das = DAS(**OPTS, epochs=8, cf_weight=0.0, cooc_weight=0.0).fit((x, users, items))
    np.testing.assert_array_equal(das.codes_, plain.codes_)
    ids = das.semantic_ids("level")
    assert ids.method == "das" and len(np.unique(ids.codes, axis=0)) == len(x)
    assert das.input_hash_ != plain.input_hash_           # the collaborative side is keyed


def test_given_collaborative_vectors_alone_reshape_the_codes(world):
    """The dict form with CF vectors only (as from a trained model's item table), through the
    one-call API: item-to-CF alignment alone moves the first code towards the groups."""
    from llmrec.tokenize import cooccurrence

    x, users, items, _, group, _ = world
    collab = ppmi_svd(cooccurrence(users, items, len(x)), 16)
    plain = RQVAE(**OPTS, epochs=60).fit(x).codes_[:, 0]
    ids = semantic_ids({"vectors": x, "collaborative": collab}, "das", epochs=60,
                       cf_weight=1.0, cooc_weight=0.0, **OPTS)
    assert purity(ids.codes[:, 0], group) > purity(plain, group) + 0.15


def test_ppmi_svd_separates_groups_of_co_consumed_items(world):
    _, users, items, _, group, _ = world
    from llmrec.tokenize import cooccurrence

    emb = ppmi_svd(cooccurrence(users, items, 256), 16)
    sim = emb @ emb.T
    same = group[:, None] == group[None, :]
    np.fill_diagonal(same, False)
    assert sim[same].mean() > sim[~same].mean() + 0.3


@pytest.mark.parametrize("data, message", [
    ("not vectors", "DAS.fit takes"),
    ({"collaborative": np.eye(4)}, "needs 'vectors'"),
    ({"vectors": np.eye(4, dtype=np.float32)}, "needs collaborative signal"),
    ({"vectors": np.eye(4, dtype=np.float32), "collaborative": np.eye(3)}, "3 rows"),
    ({"vectors": np.eye(4, dtype=np.float32), "cooccurrence": np.eye(3)}, "shape (3, 3)"),
])
def test_bad_input_is_one_clear_error(data, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DAS(levels=1, codebook_size=2, epochs=1).fit(data)
