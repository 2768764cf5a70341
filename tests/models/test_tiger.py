"""TIGER: the contract, constrained beam search (property tests), cached decoding."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from llmrec.errors import ConfigError
from llmrec.models import TIGER
from llmrec.models._beam import child_table, constrained_beam_search
from llmrec.testing import RecommenderContract, chain_interactions
from llmrec.tokenize import SemanticIds

TINY = dict(ids="random", id_levels=2, id_codebook_size=8, embedding_size=32, num_heads=2,
            ffn_size=64, batch_size=32, beam_size=12, learning_rate=5e-3, dropout=0.0,
            samples_per_user=0)


class TestTIGERContract(RecommenderContract):
    model = "tiger"

    def make_model(self, **overrides):
        return TIGER(**{**TINY, "epochs": 8, **overrides})

    def test_cached_decoding_equals_full_redecoding(self, fitted, chains):
        histories = chains.test_cases().histories(0, 40)
        histories[5] = histories[5][:1]
        items_c, scores_c = fitted.generate(histories, use_cache=True)
        items_f, scores_f = fitted.generate(histories, use_cache=False)
        assert torch.equal(items_c, items_f)
        torch.testing.assert_close(scores_c, scores_f, rtol=1e-5, atol=1e-5)

    def test_beam_is_sorted_distinct_and_real(self, fitted, chains):
        items, scores = fitted.generate(chains.test_cases().histories(0, 30))
        assert items.shape == (30, 12)
        assert (items >= 0).all() and (items < chains.interactions.n_items).all()
        assert all(len(set(row.tolist())) == 12 for row in items)
        assert (scores.diff(dim=1) <= 0).all()

    def test_items_outside_the_beam_rank_after_it_by_popularity(self, fitted, chains):
        history = chains.test_cases().history(0)
        items, scores = fitted.generate([history])
        row = fitted.score([history])[0]
        beam = set(items[0].tolist())
        rest = [i for i in range(len(row)) if i not in beam]
        assert row[rest].max() < scores[0].min()
        order = sorted(rest, key=lambda i: -float(row[i]))
        counts = fitted.popularity[order]
        assert (counts.diff() <= 0).all()
        torch.testing.assert_close(row[items[0]], scores[0])


def _ids_strategy():
    @st.composite
    def build(draw):
        sizes = tuple(draw(st.lists(st.integers(2, 5), min_size=1, max_size=4)))
        space = int(np.prod(sizes))
        n = draw(st.integers(1, min(space, 40)))
        keys = draw(st.lists(st.integers(0, space - 1), min_size=n, max_size=n, unique=True))
        codes = np.array([np.unravel_index(k, sizes) for k in keys], dtype=np.int64)
        return SemanticIds(codes.reshape(n, len(sizes)), sizes)
    return build()


def _prefix_logits(tokens: torch.Tensor, vocab: int, salt: int) -> torch.Tensor:
    """Deterministic logits from a prefix: (B, W, t) -> (B, W, V)."""
    weights = torch.arange(1, tokens.shape[-1] + 1, dtype=torch.float32)
    h = (tokens.float() * weights).sum(-1, keepdim=True) + salt
    return torch.sin(h * 1.7 + torch.arange(vocab, dtype=torch.float32) * 2.3) * 3


@settings(max_examples=60, deadline=None)
@given(ids=_ids_strategy(), beam=st.integers(1, 50), salt=st.integers(0, 1000))
def test_constrained_search_only_emits_valid_tuples_and_matches_brute_force(ids, beam, salt):
    sizes = ids.codebook_sizes
    offsets = tuple(int(o) for o in ids.token_offsets)
    vocab, bos = int(sum(sizes)) + 1, int(sum(sizes))
    trie = ids.trie()

    def step(tokens, state):
        return _prefix_logits(tokens, vocab, salt), state

    items, scores = constrained_beam_search(
        step, lambda s, p: s, 2, bos, sizes, offsets, child_table(trie),
        torch.from_numpy(trie.item), beam)
    want = min(beam, ids.n_items)
    assert want <= items.shape[1] <= beam
    for row, srow in zip(items, scores):
        assert (row[:want] >= 0).all() and (row[want:] == -1).all()  # real items first
        assert len(set(row[:want].tolist())) == want                 # distinct
        assert (srow[:want].diff() <= 0).all() and (srow[want:] == -np.inf).all()
        row = row[:want]
        for item in row.tolist():                                    # a real tuple, re-found
            assert ids.item_of(ids.codes_of(item)) == item
    # exact scores: the log-probability renormalised over the trie's children at each level
    brute = {}
    for item in range(ids.n_items):
        prefix, total = [bos], 0.0
        for level, code in enumerate(ids.codes_of(item)):
            logits = _prefix_logits(torch.tensor([[prefix]]), vocab, salt)[0, 0]
            allowed = torch.from_numpy(trie.allowed(ids.codes_of(item)[:level]))
            lp = torch.log_softmax(logits[offsets[level] + allowed], 0)
            total += float(lp[int((allowed == code).nonzero())])
            prefix.append(offsets[level] + code)
        brute[item] = total
    if beam >= ids.n_items:              # exhaustive: the beam is the exact ranking
        best = sorted(brute.values(), reverse=True)
        np.testing.assert_allclose(scores[0, :want].numpy(), best, rtol=1e-4, atol=1e-4)
    for item, s in zip(items[0, :want].tolist(), scores[0, :want].tolist()):
        assert s == pytest.approx(brute[item], abs=1e-4)


@settings(max_examples=8, deadline=None)
@given(ids=_ids_strategy(), seed=st.integers(0, 100))
def test_model_never_emits_an_invalid_tuple(ids, seed):
    rng = np.random.default_rng(seed)
    n = ids.n_items
    inter = chain_interactions(n_chains=1, chain_len=n, n_users=4, steps=max(2, min(n, 4)),
                               seed=seed)
    model = TIGER(**{**TINY, "epochs": 1, "beam_size": n + 3, "seed": seed})
    model.set_semantic_ids(ids).fit(inter, progress=False)
    histories = [rng.integers(0, n, size=rng.integers(1, 6)) for _ in range(3)]
    items, scores = model.generate(histories)
    for row, srow in zip(items, scores):
        real = row[row >= 0]
        assert sorted(real.tolist()) == list(range(n))                # every item, once
        assert torch.isfinite(srow[row >= 0]).all() and (srow[row < 0] == -np.inf).all()


def test_ids_from_a_tokenize_folder(tmp_path):
    inter = chain_interactions(n_chains=1, chain_len=6, n_users=5, steps=4)
    codes = np.array([[i // 3, i % 3] for i in range(6)])
    SemanticIds(codes, (2, 3), method="test").save(tmp_path / "ids")
    model = TIGER(**{**TINY, "epochs": 1, "ids": str(tmp_path / "ids")}).fit(inter,
                                                                             progress=False)
    assert model.fit_info["ids"] == "test"
    SemanticIds(codes[:5], (2, 3)).save(tmp_path / "short")
    with pytest.raises(ConfigError, match="cover 5 items"):
        TIGER(**{**TINY, "ids": str(tmp_path / "short")}).fit(inter, progress=False)
    with pytest.raises(ConfigError, match="model.ids"):
        TIGER(**{**TINY, "ids": "rq-kmeans"}).fit(inter, progress=False)


def test_config_is_validated():
    with pytest.raises(ConfigError):
        TIGER(embedding_size=30, num_heads=4)
    with pytest.raises(ConfigError):
        TIGER(beam_size=0)
