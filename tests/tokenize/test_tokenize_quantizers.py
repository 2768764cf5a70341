"""Quantizers of item vectors: RQ-KMeans, PQ, RQ-VAE."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from llmrec.errors import ConfigError, DataError
from llmrec.tokenize import (
    PQ,
    RQVAE,
    TOKENIZERS,
    PQConfig,
    RQKMeans,
    RQKMeansConfig,
    RQVAEConfig,
    fuse,
    relative_mse,
    semantic_ids,
)

needs_faiss = pytest.mark.skipif(importlib.util.find_spec("faiss") is None,
                                 reason="needs faiss-cpu (the [faiss] extra)")

SMALL_VAE = dict(hidden_sizes=(64,), latent_size=16, epochs=60, batch_size=256)


def first_level_matches_clusters(codes: np.ndarray, labels: np.ndarray) -> None:
    for c in np.unique(labels):
        assert len(np.unique(codes[labels == c, 0])) == 1, f"cluster {c} is split"
    firsts = [codes[labels == c, 0][0] for c in np.unique(labels)]
    assert len(set(firsts)) == len(firsts), "two clusters share a first-level code"


@needs_faiss
@pytest.mark.parametrize("method", ["rq-kmeans", "pq"])
def test_known_answer_clusters_share_first_code(method, clusters):
    x, labels = clusters(n_clusters=8, per_cluster=25, dim=32)
    tok = TOKENIZERS[method](levels=2, codebook_size=8, init="k-means++").fit(x)
    first_level_matches_clusters(tok.codes_, labels)


def test_rqvae_known_answer_first_level(clusters):
    x, labels = clusters(n_clusters=6, per_cluster=40, dim=32, spread=0.02)
    tok = RQVAE(levels=2, codebook_size=6, **SMALL_VAE).fit(x)
    first_level_matches_clusters(tok.codes_, labels)


@pytest.mark.parametrize("method,extra", [pytest.param("rq-kmeans", {}, marks=needs_faiss),
                                          pytest.param("pq", {}, marks=needs_faiss),
                                          ("rq-vae", SMALL_VAE)])
def test_same_seed_same_codes(method, extra):
    x = np.random.default_rng(1).standard_normal((300, 24)).astype(np.float32)
    a = TOKENIZERS[method](levels=3, codebook_size=16, seed=3, **extra).fit(x)
    b = TOKENIZERS[method](levels=3, codebook_size=16, seed=3, **extra).fit(x)
    np.testing.assert_array_equal(a.codes_, b.codes_)
    np.testing.assert_array_equal(a.decode(a.codes_), b.decode(b.codes_))
    c = TOKENIZERS[method](levels=3, codebook_size=16, seed=4, **extra).fit(x)
    assert not np.array_equal(a.codes_, c.codes_)


@needs_faiss
def test_rqkmeans_error_decreases_with_levels():
    x = np.random.default_rng(2).standard_normal((500, 32)).astype(np.float32)
    errors = []
    for levels in (1, 2, 3, 4):
        tok = RQKMeans(levels=levels, codebook_size=16).fit(x)
        errors.append(relative_mse(x, tok.decode(tok.encode(x))))
        assert errors[-1] == pytest.approx(tok.reconstruction_error_)
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[0] < 1.0


@needs_faiss
def test_rqkmeans_decode_is_sum_of_codewords():
    x = np.random.default_rng(3).standard_normal((100, 8)).astype(np.float32)
    tok = RQKMeans(levels=2, codebook_size=4).fit(x)
    codes = tok.encode(x)
    expected = tok.codebooks[0][codes[:, 0]] + tok.codebooks[1][codes[:, 1]]
    np.testing.assert_allclose(tok.decode(codes), expected)
    # each level's code is the nearest codeword of that level's residual
    d0 = ((x[:, None, :] - tok.codebooks[0][None]) ** 2).sum(-1)
    np.testing.assert_array_equal(codes[:, 0], d0.argmin(1))


@needs_faiss
def test_pq_sub_spaces_and_uneven_split():
    x = np.random.default_rng(4).standard_normal((200, 10)).astype(np.float32)
    tok = PQ(PQConfig(levels=3, codebook_size=8)).fit(x)       # 10 = 4 + 3 + 3
    assert [len(s) for s in tok.splits] == [4, 3, 3]
    rec = tok.decode(tok.encode(x))
    assert rec.shape == x.shape
    for level, cols in enumerate(tok.splits):                   # sub-space l is coded alone
        np.testing.assert_allclose(rec[:, cols], tok.codebooks[level][tok.codes_[:, level]])
    assert tok.reconstruction_error_ < 1.0
    with pytest.raises(ConfigError, match="dimensions"):
        PQ(levels=11, codebook_size=4).fit(x)


def test_rqvae_utilisation_and_reconstruction(clusters):
    x, _ = clusters(n_clusters=48, per_cluster=12, dim=48, spread=0.3, seed=5)
    three = RQVAE(levels=3, codebook_size=32, seed=0, **SMALL_VAE).fit(x)
    ids = three.semantic_ids()
    util0 = ids.diagnostics["levels"][0]["utilisation"]
    assert util0 >= 0.75                     # a collapsed codebook would use 1/32 = 0.03
    assert ids.diagnostics["levels"][0]["entropy_bits"] >= 4.0    # of log2(32) = 5
    one = RQVAE(levels=1, codebook_size=32, seed=0, **SMALL_VAE).fit(x)
    assert three.reconstruction_error_ < 0.9 * one.reconstruction_error_
    assert three.reconstruction_error_ < 0.55


def test_rqvae_dead_code_reset_counters_collapse():
    # all points but a few sit on one spot: without re-seeding most codes stay unused
    rng = np.random.default_rng(6)
    x = np.concatenate([np.zeros((300, 16)), rng.standard_normal((60, 16)) * 3])
    x = (x + 0.01 * rng.standard_normal(x.shape)).astype(np.float32)
    cfg = dict(levels=1, codebook_size=32, hidden_sizes=(32,), latent_size=8, epochs=40,
               batch_size=360)
    reset = RQVAE(**cfg).fit(x)
    frozen = RQVAE(**cfg, reset_dead_codes=False).fit(x)
    used_reset = len(np.unique(reset.codes_))
    used_frozen = len(np.unique(frozen.codes_))
    assert used_reset > used_frozen, (used_reset, used_frozen)


@needs_faiss
def test_encode_new_items_and_errors():
    x = np.random.default_rng(7).standard_normal((120, 12)).astype(np.float32)
    tok = RQKMeans(levels=2, codebook_size=8).fit(x)
    assert tok.encode(x[:5] + 1e-4).shape == (5, 2)
    with pytest.raises(DataError, match="dimensions"):
        tok.encode(x[:, :5])
    with pytest.raises(DataError, match="NaN"):
        tok.encode(np.full((2, 12), np.nan))
    with pytest.raises(DataError, match="codes"):
        tok.decode(np.array([[0, 8]]))
    with pytest.raises(ConfigError, match="not fitted"):
        RQKMeans().encode(x)
    with pytest.raises(ConfigError, match="not fitted"):
        RQVAE().semantic_ids()


def test_configs_validate_and_round_trip():
    with pytest.raises(ConfigError, match="levels"):
        RQKMeansConfig(levels=0)
    with pytest.raises(ConfigError, match="codebook_size"):
        RQKMeansConfig(codebook_size=1)
    with pytest.raises(ConfigError, match="init"):
        RQKMeansConfig(init="kmeans")
    with pytest.raises(ConfigError, match="learning_rate"):
        RQVAEConfig(learning_rate=0)
    with pytest.raises(ConfigError, match="unknown"):
        RQKMeans(n_levels=3)
    with pytest.raises(ConfigError, match="unknown"):
        RQVAEConfig.from_dict({"levels": 2, "layers": 3})
    with pytest.raises(ConfigError, match="takes a RQVAEConfig"):
        RQVAE(RQKMeansConfig())
    cfg = RQVAEConfig(levels=2, hidden_sizes=(8, 4))
    assert RQVAEConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_fuse_normalises_and_weights():
    a = np.array([[3.0, 4.0], [0.0, 0.0]])
    b = np.array([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]])
    f = fuse(a, b, weights=(1.0, 0.5))
    np.testing.assert_allclose(f, [[0.6, 0.8, 0.0, 0.5, 0.0], [0, 0, 0.5, 0, 0]])
    assert f.dtype == np.float32
    with pytest.raises(DataError, match="rows"):
        fuse(a, b[:1])


@needs_faiss
def test_semantic_ids_one_call_unique_and_described():
    x = np.random.default_rng(8).standard_normal((400, 16)).astype(np.float32)
    x[200:] = x[:200]                                     # every item has a twin
    ids = semantic_ids(x, "rq-kmeans", levels=2, codebook_size=8)
    assert len({tuple(r) for r in ids.codes}) == 400
    assert ids.diagnostics["collision_rate"] == 1.0      # twins collide by construction
    assert ids.codebook_sizes[:2] == (8, 8) and ids.codebook_sizes[2] >= 2
    with pytest.raises(ConfigError, match="unknown tokenizer"):
        semantic_ids(x, "vq-vae")
