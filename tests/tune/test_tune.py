"""llmrec tune: the space file's checks, a real search on a slice of ML-100K (resume, baseline
trial, best config, pruning), and the trainer's validation hook."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from llmrec.testing.slices import recbole_slice

from llmrec.errors import ConfigError
from llmrec.models import SASRecConfig
from llmrec.tune import parse_space

USERS = 80
BASE = ["model.epochs=3", "model.max_seq_len=20", "model.embedding_size=16",
        "model.batch_size=64"]


@pytest.fixture(scope="module")
def data_slice(ml100k, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tune-slice") / "ml100k-tune"
    recbole_slice(ml100k, out, USERS, stem="tune", side=("item",))
    return out


def space(**tables) -> dict:
    return {"model": tables}


LR = {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}


@pytest.mark.parametrize("raw, message", [
    (space(learnig_rate=LR), "no option 'learnig_rate' (did you mean 'learning_rate'?)"),
    (space(learning_rate={"type": "uniform", "low": 0, "high": 1}), "type must be one of"),
    (space(learning_rate={"type": "float", "low": 0.1, "high": 0.01}), "low 0.1 is above high"),
    (space(learning_rate={"type": "float", "low": 0, "high": 0.1, "log": True}),
     "log scale needs low > 0"),
    (space(dropout={"type": "float", "low": 0.1, "high": 1.5}), "value 1.5 is refused"),
    (space(num_layers={"type": "int", "low": 1, "high": 2.5}), "whole numbers"),
    (space(embedding_size={"type": "categorical", "choices": []}), "non-empty list"),
    (space(seed={"type": "int", "low": 1, "high": 5}), "not a hyper-parameter"),
    (space(learning_rate={"type": "float", "low": 1e-3, "hi": 1e-2}), "unknown key 'hi'"),
    ({"data": {"user_core": {}}}, "[data] cannot be tuned"),
    ({}, "nothing to tune"),
])
def test_space_mistakes_are_one_line(raw, message):
    with pytest.raises(ConfigError, match=None) as e:
        parse_space(raw, SASRecConfig, "space.toml")
    assert message in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).startswith("space.toml")


def test_space_typo_through_the_cli(tmp_path):
    bad = tmp_path / "space.toml"
    bad.write_text('[model.dropuot]\ntype = "float"\nlow = 0.0\nhigh = 0.5\n')
    proc = subprocess.run([sys.executable, "-m", "llmrec", "tune", "--model", "sasrec",
                           "--dataset", "ml-100k", "--space", str(bad)], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL, env=os.environ)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert "did you mean 'dropout'" in proc.stderr and str(bad) in proc.stderr


def finished_trials(study_db: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(study_db) as db:
        return db.execute("SELECT number, state FROM trials ORDER BY number").fetchall()


def test_search_resumes_keeps_the_baseline_and_writes_a_trainable_best(data_slice, tmp_path):
    from llmrec.runs import load_config
    from llmrec.tune import tune

    base = load_config(model="sasrec", dataset=str(data_slice), sets=BASE)
    sp = parse_space(space(learning_rate=LR, dropout={"type": "float", "low": 0.0,
                                                      "high": 0.4}), SASRecConfig)
    study = tmp_path / "study"
    result = tune(base, sp, 3, study_dir=study, final_test=True, progress=False)
    rows = finished_trials(study / "study.db")
    assert [state for _, state in rows] == ["COMPLETE"] * 3
    # trial 0 is the base config itself
    import optuna
    s = optuna.load_study(study_name=study.name, storage=f"sqlite:///{study / 'study.db'}")
    assert s.trials[0].params == {"model.learning_rate": base.model_config.learning_rate,
                                  "model.dropout": base.model_config.dropout}
    values = [t.value for t in s.trials]
    assert result.best_value == max(values)
    # best.toml is a complete config: training it reproduces the trial's validation score
    best = load_config(result.best_config)
    assert best.model_config.learning_rate == result.best_params["model.learning_rate"]
    assert best.model_config.epochs == 3 and best.model_config.max_seq_len == 20
    assert result.final is not None
    assert result.final.metrics["valid"]["ndcg@10"] == pytest.approx(result.best_value, abs=1e-6)
    assert "test" in result.final.metrics
    # the same call again: the study already holds 3 trials, nothing runs
    again = tune(base, sp, 3, study_dir=study, final_test=False, progress=False)
    assert len(finished_trials(study / "study.db")) == 3
    assert again.best_value == result.best_value
    # one more trial asked: exactly one more runs
    tune(base, sp, 4, study_dir=study, final_test=False, progress=False)
    assert len(finished_trials(study / "study.db")) == 4
    assert (study / "trials.csv").read_text().count("\n") == 5


def test_pruned_trials_never_count_as_best(data_slice, tmp_path):
    import optuna

    from llmrec.runs import load_config
    from llmrec.tune import tune

    base = load_config(model="sasrec", dataset=str(data_slice), sets=BASE)
    sp = parse_space(space(learning_rate=LR), SASRecConfig)
    # a pruner no trial can pass: every trial stops after its first validation
    pruner = optuna.pruners.ThresholdPruner(lower=1.5, n_warmup_steps=0)
    with pytest.raises(ConfigError, match="no trial completed \\(2 pruned"):
        tune(base, sp, 2, study_dir=tmp_path / "s", pruner=pruner, final_test=False,
             progress=False)
    s = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 's' / 'study.db'}")
    assert [len(t.intermediate_values) for t in s.trials] == [1, 1]


def test_validation_hook_sees_every_epoch(data_slice):
    from llmrec.data import leave_one_out, load_dataset
    from llmrec.models import SASRec
    from llmrec.train import on_validation

    ds = load_dataset(str(data_slice))
    split = leave_one_out(ds.interactions)
    seen = []
    model = SASRec(epochs=3, max_seq_len=20, embedding_size=16)
    with on_validation(lambda epoch, score: seen.append((epoch, score))):
        model.fit(split.train, split.valid_cases(), progress=False)
    assert [e for e, _ in seen] == [1, 2, 3]
    assert max(s for _, s in seen) == model.fit_info["best_valid_ndcg@10"]
    # outside the block nothing is called
    SASRec(epochs=1, max_seq_len=20, embedding_size=16).fit(split.train, split.valid_cases(),
                                                            progress=False)
    assert len(seen) == 3
