"""The trainer: early stopping, checkpoints in safetensors, resume equals an unbroken run."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from llmrec.data import leave_one_out
from llmrec.errors import ConfigError
from llmrec.models import SASRec
from llmrec.testing import chain_interactions
from llmrec.train._trainer import cosine_lr

SMALL = dict(embedding_size=16, max_seq_len=10, batch_size=32, dropout=0.1, learning_rate=3e-3)


@pytest.fixture(scope="module")
def chains():
    return leave_one_out(chain_interactions(n_chains=4, chain_len=8, n_users=160, steps=7))


class Interrupted(SASRec):
    """SASRec that is 'killed' when epoch ``stop_at`` starts (fault injection)."""

    stop_at = 4

    def training_batches(self, epoch, rng):
        if epoch == self.stop_at:
            raise KeyboardInterrupt
        return super().training_batches(epoch, rng)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_resume_gives_the_same_model_as_an_unbroken_run(chains, tmp_path, schedule):
    histories = chains.test_cases().histories(0, 30)
    opts = dict(epochs=7, patience=100, lr_schedule=schedule, **SMALL)
    unbroken = SASRec(**opts).fit(
        chains.train, chains.valid_cases(), run_dir=tmp_path / "a", progress=False)
    with pytest.raises(KeyboardInterrupt):
        Interrupted(**opts).fit(
            chains.train, chains.valid_cases(), run_dir=tmp_path / "b", progress=False)
    log = (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in log] == [1, 2, 3]
    resumed = SASRec(**opts).fit(
        chains.train, chains.valid_cases(), run_dir=tmp_path / "b", progress=False)
    assert resumed.fit_info["resumed_from"] == 3
    assert resumed.fit_info["best_epoch"] == unbroken.fit_info["best_epoch"]
    torch.testing.assert_close(resumed.score(histories), unbroken.score(histories),
                               rtol=0, atol=0)


def test_cosine_schedule_lowers_the_learning_rate_to_zero_over_the_epochs(chains, tmp_path):
    assert [cosine_lr(2.0, p) for p in (-1, 0, 0.5, 1, 2)] == pytest.approx([2, 2, 1, 0, 0])
    model = SASRec(epochs=4, patience=100, lr_schedule="cosine", **SMALL)
    model.fit(chains.train, chains.valid_cases(), run_dir=tmp_path, progress=False)
    n = -(-model.fit_info["training_sequences"] // SMALL["batch_size"])     # batches per epoch
    logged = [json.loads(line)["lr"] for line in (tmp_path / "train_log.jsonl").open()]
    # the rate of each epoch's last batch
    expected = [cosine_lr(3e-3, (e + (n - 1) / n) / 4) for e in range(4)]
    assert logged == pytest.approx(expected) and logged[-1] < 3e-3 / n


def test_constant_schedule_logs_no_learning_rate(chains, tmp_path):
    model = SASRec(epochs=2, **SMALL)
    model.fit(chains.train, chains.valid_cases(), run_dir=tmp_path, progress=False)
    assert all("lr" not in json.loads(line) for line in (tmp_path / "train_log.jsonl").open())


def test_early_stopping_restores_the_best_epoch(chains):
    model = SASRec(epochs=60, patience=3, **SMALL).fit(chains.train, chains.valid_cases(),
                                                       progress=False)
    info = model.fit_info
    assert info["epochs_run"] == info["best_epoch"] + 3 < 60
    from llmrec.eval import evaluate
    again = evaluate(model, chains.valid_cases(), ks=(10,))["ndcg@10"]
    assert again == pytest.approx(info["best_valid_ndcg@10"])


def test_checkpoint_is_safetensors_with_everything_to_resume(chains, tmp_path):
    SASRec(epochs=2, **SMALL).fit(chains.train, chains.valid_cases(), run_dir=tmp_path,
                                  progress=False)
    with safe_open(str(tmp_path / "checkpoint.safetensors"), framework="pt") as f:
        keys = set(f.keys())
        meta = json.loads(f.metadata()["meta"])
    assert any(k.startswith("model.") for k in keys)
    assert any(k.startswith("optim.") for k in keys) and "rng.torch" in keys
    assert meta["epoch"] == 2 and "numpy_rng" in meta
    assert (tmp_path / "best.safetensors").exists()


def test_checkpoint_of_another_config_is_refused(chains, tmp_path):
    SASRec(epochs=1, **SMALL).fit(chains.train, run_dir=tmp_path, progress=False)
    with pytest.raises(ConfigError, match="another configuration"):
        SASRec(epochs=1, **{**SMALL, "dropout": 0.3}).fit(chains.train, run_dir=tmp_path,
                                                          progress=False)
