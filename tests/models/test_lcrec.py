"""LC-Rec on a tiny randomly initialised Llama (hidden 32, 2 layers) with the real SmolLM2
tokenizer: the contract, the beam against teacher-forced log-probabilities, the random-init
control, and the task examples (training data only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from llmrec.data import leave_one_out
from llmrec.errors import ConfigError
from llmrec.models import LCRec
from llmrec.testing import (RecommenderContract, chain_interactions, tiny_tokenizer,
                            write_tiny_lm)

TINY = dict(tasks=["seq"], ids="random", id_levels=2, id_codebook_size=4, beam_size=6,
            samples_per_user=8, epochs=10, batch_size=16, micro_batch_size=16,
            learning_rate=1e-2, mode="full", chat=False, max_seq_len=1, warmup_steps=5)


@pytest.fixture(scope="session")
def tiny_lm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A hidden-32, 2-layer Llama with SmolLM2's tokenizer, randomly initialised."""
    tok = tiny_tokenizer(request.config.cache.mkdir("llmrec-lm"))
    return write_tiny_lm(tmp_path_factory.mktemp("tiny-lm"), tok)


class TestLCRecContract(RecommenderContract):
    learns_chains = False      # 12 steps learn the code marginals only; see test_lcrec_learning

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, chains, tiny_lm):
        cls.lm_dir = tiny_lm
        return cls().make_model().fit(chains.train, progress=False)

    def make_model(self, **overrides):
        return LCRec(**{**TINY, "lm": self.lm_dir, "max_steps": 12, "epochs": 1,
                        "id_codebook_size": 8, "beam_size": 12,
                        "samples_per_user": 1, **overrides})

    def test_beam_is_sorted_distinct_and_real(self, fitted, chains):
        items, scores = fitted.generate(chains.test_cases().histories(0, 9))
        assert items.shape == (9, 12)
        assert (items >= 0).all() and (items < chains.interactions.n_items).all()
        assert all(len(set(row.tolist())) == 12 for row in items)
        assert (scores.diff(dim=1) <= 0).all()

    def test_beam_scores_are_teacher_forced_log_probs(self, fitted, chains):
        """The cached, left-padded beam gives each item the log-probability of its code tuple,
        renormalised over the trie's valid codes at each level, recomputed here by one plain
        forward pass over prompt + codes per item."""
        histories = chains.test_cases().histories(0, 3)
        histories[1] = histories[1][:1]
        items, scores = fitted.generate(histories)
        lm, tok = fitted.lm, fitted.lm.tokenizer
        codes = fitted.codes
        for h, row, srow in zip(histories, items, scores):
            system, user = fitted._seq_prompt(fitted._templates()["seq"], np.asarray(h))
            prompt = tok(user, add_special_tokens=False)["input_ids"]
            for item, score in zip(row.tolist(), srow.tolist()):
                tuple_ids = [int(fitted._code_ids[off + c])
                             for off, c in zip(fitted.offsets, codes[item])]
                with torch.no_grad():
                    logits = lm.model(input_ids=torch.tensor([prompt + tuple_ids])).logits[0]
                total = 0.0
                for level, (off, size) in enumerate(zip(fitted.offsets, fitted.sizes)):
                    prefix = codes[item][:level]
                    ok = [c for c in range(size) if any(
                        (codes[j][:level] == prefix).all() and codes[j][level] == c
                        for j in range(len(codes)))]
                    pos = len(prompt) - 1 + level
                    sub = logits[pos, fitted._code_ids[off:off + size]][ok]
                    total += float(sub[ok.index(int(codes[item][level]))] - sub.logsumexp(0))
                assert score == pytest.approx(total, abs=1e-4)

    def test_random_init_is_seeded_and_differs(self, fitted, tiny_lm):
        from safetensors.torch import load_file

        name = "model.layers.0.self_attn.q_proj.weight"
        a, b, c = (LCRec(**{**TINY, "lm": tiny_lm, "init": "random", "seed": s})
                   for s in (1, 1, 2))
        for m in (a, b, c):
            m._load_lm(fitted.codes, fitted.sizes)
        w = [dict(m.lm.model.named_parameters())[name] for m in (a, b, c)]
        assert torch.equal(w[0], w[1]) and not torch.equal(w[0], w[2])
        assert a.lm.source["init"] == "random"
        # the pretrained path starts from the folder's weights; "random" does not
        q0 = load_file(Path(tiny_lm) / "model.safetensors")[name]
        assert not torch.allclose(q0, w[0])
        assert not torch.equal(dict(fitted.lm.model.named_parameters())[name], q0)  # trained
        assert (dict(fitted.lm.model.named_parameters())[name] - q0).abs().max() < 0.5


@pytest.fixture(scope="module")
def titled(tiny_lm):
    split = leave_one_out(chain_interactions(n_chains=2, chain_len=6, n_users=40, steps=6))
    titles = [f"Movie number {i}" for i in range(split.interactions.n_items)]
    model = LCRec(**{**TINY, "lm": tiny_lm, "tasks": ["seq", "item2index", "index2item",
                                                      "fusion"], "epochs": 2,
                     "samples_per_user": 2, "max_seq_len": 3})
    model.set_titles(titles)
    n = split.interactions.n_items
    codes = np.stack([np.arange(n) // 4, np.arange(n) % 4], axis=1)          # (N, 2) unique
    model._load_lm(codes, (int(codes[:, 0].max()) + 1, 4))
    return split, model


def test_examples_come_from_training_data_only(titled):
    split, model = titled
    examples = model.examples(split.train)
    held = {}
    for part in (split.valid_cases(), split.test_cases()):
        for k, u in enumerate(part.users):
            held.setdefault(int(u), set()).update(part.targets(k).tolist())
    by_user = [e for e in examples if e.user is not None]
    assert by_user
    for e in by_user:
        assert not set(e.items) & held[e.user], (e.user, e.items)
        train_items = set(split.train.sequence(e.user).tolist())
        assert set(e.items) <= train_items
    trained = set(split.train.item.tolist())
    assert all(set(e.items) <= trained for e in examples)


def test_every_task_is_built_with_its_template(titled):
    split, model = titled
    examples = model.examples(split.train)
    codes = [e for e in examples if e.answer.startswith("<a_")]
    titles = [e for e in examples if e.answer.startswith("Movie number")]
    assert titles and all("<a_" in e.prompt for e in titles)                    # index2item
    assert any("titled" in e.prompt for e in codes)                             # item2index
    assert any("Movie number" in e.prompt and "oldest first" in e.prompt for e in codes)
    seq = [e for e in codes if "oldest first: <a_" in e.prompt]                 # seq
    assert seq and all(e.prompt.count("<a_") <= 3 for e in seq)                 # max_seq_len
    # 40 users x 2 samples x 2 epochs for each history task
    assert len(seq) == 40 * 2 * 2
    # the same seed draws the same examples (a resumed fine-tuning run needs it)
    assert [e.prompt for e in model.examples(split.train)] == [e.prompt for e in examples]


def test_title_tasks_without_titles_is_one_clear_error(tiny_lm):
    split = leave_one_out(chain_interactions(n_chains=1, chain_len=5, n_users=10, steps=4))
    model = LCRec(**{**TINY, "lm": tiny_lm, "tasks": ["seq", "fusion"]})
    with pytest.raises(ConfigError, match="need item titles"):
        model.fit(split.train, progress=False)


@pytest.mark.parametrize("bad", [{"init": "scratch"}, {"tasks": ["seq", "chat"]},
                                 {"mode": "qlora"}, {"beam_size": 0}, {"tasks": []}])
def test_bad_config_is_rejected(bad):
    with pytest.raises(ConfigError):
        LCRec(**bad)


def test_fine_tuning_resumes_in_the_run_folder(tiny_lm, tmp_path: Path):
    split = leave_one_out(chain_interactions(n_chains=2, chain_len=6, n_users=30, steps=6))
    opts = {**TINY, "lm": tiny_lm, "epochs": 1, "samples_per_user": 2, "save_every": 1}
    whole = LCRec(**opts, max_steps=4).fit(split.train, run_dir=tmp_path / "a", progress=False)
    LCRec(**opts, max_steps=4, max_time=0.3).fit(split.train, run_dir=tmp_path / "b",
                                                  progress=False)
    resumed = LCRec(**opts, max_steps=4).fit(split.train, run_dir=tmp_path / "b",
                                             progress=False)
    assert 1 <= resumed.fit_info["resumed_from"] < 4 and resumed.fit_info["steps"] == 4
    hist = split.test_cases().histories(0, 5)
    torch.testing.assert_close(resumed.score(hist), whole.score(hist), rtol=0, atol=1e-6)
