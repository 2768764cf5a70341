"""Training windows of the sequential models, and options added after runs existed."""

import numpy as np

from llmrec.data import Interactions
from llmrec.models import SASRec
from llmrec.models._sequence import windows
from llmrec.models._transformer import SASRecPaperBlock, TransformerBlock
from llmrec.runs import load_config


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
    base = load_config(model="sasrec", dataset="ml-100k")
    same = load_config(model="sasrec", dataset="ml-100k", sets=['model.train_windows="all"'])
    other = load_config(model="sasrec", dataset="ml-100k", sets=['model.train_windows="last"'])
    assert "train_windows" not in base.to_dict()["model"]
    assert same.hash() == base.hash() != other.hash()
    assert other.to_dict()["model"]["train_windows"] == "last"


def test_sasrec_block_option_keeps_old_hashes_and_builds_the_block_it_names():
    base = load_config(model="sasrec", dataset="ml-100k")
    same = load_config(model="sasrec", dataset="ml-100k", sets=['model.block="pre_ln"'])
    paper = load_config(model="sasrec", dataset="ml-100k", sets=['model.block="paper"'])
    assert same.hash() == base.hash() != paper.hash()
    train = histories([25, 3])
    for block, cls in [("pre_ln", TransformerBlock), ("paper", SASRecPaperBlock)]:
        model = SASRec(max_seq_len=10, embedding_size=8, block=block, epochs=1)
        model.fit(train)
        assert {type(b) for b in model.module.blocks} == {cls}
