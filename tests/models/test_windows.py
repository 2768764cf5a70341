"""Training windows of the sequential models, and options added after runs existed."""

import numpy as np
import pytest
import torch
from torch import nn

from llmrec.data import Interactions
from llmrec.errors import ConfigError
from llmrec.models import SASRec
from llmrec.models._sequence import windows
from llmrec.models._transformer import SASRecPaperBlock, TransformerBlock
from llmrec.testing.options import check_added_option


def histories(lengths):
    user = np.repeat(np.arange(len(lengths)), lengths)
    item = np.concatenate([np.arange(n) + 100 * u for u, n in enumerate(lengths)])
    return Interactions(user, item, np.arange(len(user)), np.full(len(user), np.nan),
                        len(lengths), 100 * len(lengths))


def transitions(ws):
    return sorted((int(w[i]), int(w[i + 1])) for w in ws for i in range(len(w) - 1))


def test_all_windows_cover_every_transition_once_and_last_keeps_the_newest():
    train = histories([25, 3, 1, 11])                  # user 2 has nothing to learn from
    every = windows(train, size=11, step=10)
    assert transitions(every) == transitions([train.sequence(u) for u in range(4)])
    assert [len(w) for w in every] == [11, 11, 5, 3, 11]
    last = windows(train, size=11, step=10, keep="last")
    assert [w.tolist() for w in last] == [list(range(14, 25)), [100, 101, 102],
                                          list(range(300, 311))]


def test_sasrec_trains_on_the_windows_its_config_asks_for():
    train = histories([25, 3])
    assert len(SASRec(max_seq_len=10)._training_windows(train)) == 4
    assert len(SASRec(max_seq_len=10, train_windows="last")._training_windows(train)) == 2


def test_an_added_option_at_its_default_leaves_earlier_run_hashes_alone():
    other = check_added_option('model.train_windows="all"', 'model.train_windows="last"')
    assert other.to_dict()["model"]["train_windows"] == "last"


def test_sasrec_block_option_keeps_old_hashes_and_builds_the_block_it_names():
    check_added_option('model.block="pre_ln"', 'model.block="paper"')
    train = histories([25, 3])
    for block, cls in [("pre_ln", TransformerBlock), ("paper", SASRecPaperBlock)]:
        model = SASRec(max_seq_len=10, embedding_size=8, block=block, epochs=1)
        model.fit(train)
        assert {type(b) for b in model.module.blocks} == {cls}


def test_sasrec_positions_option_keeps_old_hashes_and_never_depends_on_padding():
    check_added_option('model.positions="from_end"', 'model.positions="from_start"')
    train = histories([25, 3, 12])
    scores = {}
    for positions in ("from_end", "from_start"):
        model = SASRec(max_seq_len=10, embedding_size=8, positions=positions, epochs=2, seed=3)
        model.fit(train)
        short = [train.sequence(1)]
        alone = model._score(short, None)
        padded = model._score(short + [train.sequence(0)], None)[:1]   # padded to 10 items
        assert torch.allclose(alone, padded, atol=1e-5)
        scores[positions] = alone
    # Same seed, same data: only the position ids differ, and they change the scores.
    assert not torch.allclose(scores["from_end"], scores["from_start"], atol=1e-3)


def test_init_std_option_keeps_old_hashes_and_draws_every_weight_from_it():
    check_added_option("model.init_std=0.0", "model.init_std=0.02")
    with pytest.raises(ConfigError, match="init_std"):
        SASRec(init_std=-0.1)
    train = histories([25, 3, 12])
    d = 32
    # One epoch at a negligible learning rate leaves the weights where fit() put them.
    default = SASRec(max_seq_len=10, embedding_size=d, epochs=1, learning_rate=1e-9, seed=3)
    normal = SASRec(max_seq_len=10, embedding_size=d, epochs=1, learning_rate=1e-9, seed=3,
                    init_std=0.02, block="paper")
    default.fit(train)
    normal.fit(train)
    table = default.module.items.table_emb.weight
    assert abs(table[:-1].std().item() - 1 / d ** 0.5) < 0.02      # the layer's own std 1/sqrt(d)
    layers = [m for m in normal.module.modules() if isinstance(m, (nn.Linear, nn.Embedding))]
    assert {type(m) for m in layers} == {nn.Linear, nn.Embedding}
    for m in layers:
        w = m.weight.detach()
        if isinstance(m, nn.Embedding) and m.padding_idx is not None:
            assert not w[m.padding_idx].any()                         # padding stays zero
            w = torch.cat([w[:m.padding_idx], w[m.padding_idx + 1:]])
        assert abs(w.std().item() - 0.02) < 0.004, m
        if isinstance(m, nn.Linear):
            assert torch.count_nonzero(m.bias.detach().abs() > 1e-6) == 0
    # LayerNorms keep their identity initialisation.
    for m in normal.module.modules():
        if isinstance(m, nn.LayerNorm):
            assert torch.allclose(m.weight, torch.ones_like(m.weight), atol=1e-6)


def test_softmax_over_unseen_keeps_old_hashes_and_never_uses_window_items_as_negatives():
    check_added_option('model.softmax_over="all"', 'model.softmax_over="unseen"')
    with pytest.raises(ConfigError, match="softmax_over"):
        SASRec(loss="bce", softmax_over="unseen")
    # One window [0, 1, 2, 3] of a 6-item catalogue: targets 1, 2, 3; item 0 is only ever an
    # input. With an untied output table, the output row of item 0 gets a gradient only as a
    # negative, which "unseen" must take away; items 4 and 5 stay negatives either way.
    train = Interactions(np.zeros(4, dtype=np.int64), np.arange(4), np.arange(4),
                         np.full(4, np.nan), 1, 6)
    grads = {}
    for over in ("all", "unseen"):
        model = SASRec(max_seq_len=10, embedding_size=8, tied=False, softmax_over=over,
                       epochs=1, learning_rate=1e-9, seed=3)
        model.fit(train)
        model.module.train()
        model.module.zero_grad()
        batch = {"items": torch.tensor([[0, 1, 2, 3]]), "lengths": torch.tensor([4])}
        model.loss(batch).backward()
        grads[over] = model.module.items.out_emb.weight.grad.abs().sum(1)
    assert grads["all"][0] > 0 and grads["unseen"][0] == 0
    assert (grads["unseen"][4:] > 0).all() and (grads["unseen"][1:4] > 0).all()


def test_full_cross_entropy_excluding_items_is_the_softmax_over_the_rest():
    from llmrec.models._sequence import window_items
    from llmrec.train.losses import full_cross_entropy

    gen = torch.Generator().manual_seed(0)
    hidden, weights = torch.randn(3, 4, generator=gen), torch.randn(6, 4, generator=gen)
    targets = torch.tensor([1, 2, 5])
    exclude = window_items(torch.tensor([[0, 1, 2, 6], [0, 1, 2, 6], [3, 6, 6, 6]]), 6)
    assert exclude.tolist() == [[True, True, True, False, False, False]] * 2 + \
        [[False, False, False, True, False, False]]
    logits = hidden @ weights.T
    expected = []
    for m, t in enumerate(targets.tolist()):
        keep = [i for i in range(6) if not exclude[m, i] or i == t]   # the target always stays
        expected.append(-torch.log_softmax(logits[m, keep], 0)[keep.index(t)])
    assert torch.allclose(full_cross_entropy(hidden, weights, targets, exclude),
                          torch.stack(expected).mean())
    assert not torch.allclose(full_cross_entropy(hidden, weights, targets),
                              torch.stack(expected).mean())
