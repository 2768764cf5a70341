"""Every numeric option of every subcommand is checked before any work: one line naming the
option and the allowed range, exit status 2, no run folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIG = "99999999999999999999"
TRAIN = ["train", "--model", "sasrec", "--dataset", "ml-100k"]

# (argv, text the one line must hold)
BAD = [
    ([*TRAIN, "--seed", "-5"], "--seed: must be in 0..4294967295, not -5"),
    ([*TRAIN, "--seed", BIG], f"--seed: must be in 0..4294967295, not {BIG}"),
    ([*TRAIN, "--seed", "4294967296"], "--seed: must be in 0..4294967295"),
    ([*TRAIN, "--seed", "x"], "--seed: expects an integer, not 'x'"),
    ([*TRAIN, "--epochs", "0"], "--epochs: must be >= 1, not 0"),
    ([*TRAIN, "--set", "model.seed=-5"], "seed must be in 0..4294967295, not -5"),
    ([*TRAIN, "--set", f"model.seed={BIG}"], "seed must be in 0..4294967295"),
    ([*TRAIN, "--set", "model.batch_size=0"], "batch_size must be > 0"),
    ([*TRAIN, "--set", "model.threads=-1"], "threads must be >= 0"),
    ([*TRAIN, "--set", "model.weight_decay=-0.1"], "weight_decay must be >= 0"),
    ([*TRAIN, "--set", "model.learning_rate=nan"], "learning_rate must be > 0, not nan"),
    ([*TRAIN, "--set", "model.max_grad_norm=inf"], "max_grad_norm must be >= 0, not inf"),
    ([*TRAIN, "--set", "eval.ks=[10, 0]"], "ks must be cut-offs >= 1"),
    ([*TRAIN, "--set", "eval.batch_size=-3"], "batch_size must be > 0"),
    ([*TRAIN, "--set", "data.user_core=-1"], "user_core must be a non-negative integer"),
    (["recommend", "RUN", "--user", "1", "-n", "0"], "-n: must be >= 1, not 0"),
    (["serve", "RUN", "--port", "0"], "--port: must be in 1..65535, not 0"),
    (["serve", "RUN", "--port", "70000"], "--port: must be in 1..65535, not 70000"),
    (["serve", "RUN", "--workers", "0"], "--workers: must be in 1..64, not 0"),
    (["serve", "RUN", "--threads", "0"], "--threads: must be >= 1, not 0"),
    (["serve", "RUN", "--weights", "sequential=nan"], "weights.sequential must be a number >= 0"),
    (["serve", "RUN", "--weights", "ann=inf"], "weights.ann must be a number >= 0"),
    (["knowledge", "generate", "--threads", "0"], "--threads: must be >= 1, not 0"),
    (["knowledge", "generate", "--slots", "-2"], "--slots: must be >= 1, not -2"),
    (["knowledge", "generate", "--limit", "0"], "--limit: must be >= 1, not 0"),
    (["knowledge", "generate", "--n-ctx", "0"], "--n-ctx: must be >= 1, not 0"),
    (["knowledge", "generate", "--clusters", "0"], "--clusters: must be >= 1"),
    (["knowledge", "generate", "--partition-size", "0"], "--partition-size: must be >= 1"),
    (["knowledge", "generate", "--profile-events", "0"], "--profile-events: must be >= 1"),
    (["ranker", "RUN", "--seed", "-1"], "--seed: must be in 0..4294967295, not -1"),
    (["ranker", "RUN", "--epochs", "0"], "--epochs: must be >= 1, not 0"),
    (["ranker", "RUN", "--threads", "-1"], "--threads: must be >= 0, not -1"),
    (["tokenize", "--levels", "0"], "--levels: must be >= 1, not 0"),
    (["tokenize", "--codebook-size", "1"], "--codebook-size: must be >= 2, not 1"),
    (["tokenize", "--seed", BIG], "--seed: must be in 0..4294967295"),
    (["tokenize", "--user-core", "-1"], "--user-core: must be >= 0, not -1"),
    (["tokenize", "--epochs", "0"], "--epochs: must be >= 1, not 0"),
    (["encode", "--batch-size", "0"], "--batch-size: must be >= 1, not 0"),
    (["encode", "--limit", "0"], "--limit: must be >= 1, not 0"),
    (["bench", "knowledge", "--seeds", "0"], "--seeds: must be >= 1, not 0"),
    (["bench", "knowledge", "--epochs", "0"], "--epochs: must be >= 1, not 0"),
    (["bench", "representations", "--patience", "0"], "--patience: must be >= 1, not 0"),
    (["bench", "representations", "--cold-max-count", "-1"], "--cold-max-count: must be >= 0"),
    (["demo", "--seed", "-1"], "--seed: must be in 0..4294967295, not -1"),
    (["compare", "RUN", "--seed", "-1"], "--seed: must be in 0..4294967295, not -1"),
    (["serve", "RUN", "--body-timeout", "0"], "--body-timeout: must be > 0, not 0"),
    (["tune", "--space", "s.toml", "--trials", "0"], "--trials: must be >= 1, not 0"),
    (["tune", "--space", "s.toml", "--timeout", "-5"], "--timeout: must be > 0, not -5"),
    (["tune", "--space", "s.toml", "--timeout", "nan"], "--timeout: must be > 0, not nan"),
    (["tune", "--space", "s.toml", "--sampler-seed", BIG], "--sampler-seed: must be in 0.."),
]


@pytest.fixture
def cli(capsys):
    """``llmrec.cli.main`` in-process: (status, stderr); argparse's exit is a status too."""
    import logging

    from llmrec.cli import main

    logger = logging.getLogger("llmrec")
    saved = (logger.handlers[:], logger.level, logger.propagate)

    def run(*args: str) -> tuple[int, str]:
        try:
            status = main(list(args))
        except SystemExit as e:
            status = e.code
        return status, capsys.readouterr().err

    yield run
    logger.handlers[:], logger.level, logger.propagate = saved


def _runs(home: Path) -> list[Path]:
    return sorted((home / "runs").glob("*")) if (home / "runs").exists() else []


@pytest.mark.parametrize("args, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_number_is_one_line_and_no_run_folder(cli, llmrec_home, tmp_path, args, message):
    before = _runs(llmrec_home)
    status, err = cli(*[str(tmp_path) if a == "RUN" else a for a in args])
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert _runs(llmrec_home) == before


@pytest.mark.parametrize("seed", ["-5", BIG])
def test_bad_seed_in_a_subprocess(seed, tmp_path):
    """As users hit it: the real command, no traceback, nothing written."""
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "llmrec", *TRAIN, "--seed", seed,
                           "--output", str(run)], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, env=os.environ)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "--seed" in proc.stderr
    assert not run.exists()


def test_a_data_error_leaves_no_new_run_folder(tmp_path):
    """The data is read after the run folder is chosen: a failure there removes the folder
    it made (and only a folder it made)."""
    from llmrec.errors import LlmrecError
    from llmrec.runs import load_config, train_run

    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id,timestamp\n1,2,100\n1,3,abc\n")
    cfg = load_config(model="pop", dataset=str(bad))
    run = tmp_path / "run"
    with pytest.raises(LlmrecError, match="timestamp"):
        train_run(cfg, run, progress=False)
    assert not run.exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    with pytest.raises(LlmrecError):
        train_run(cfg, kept, progress=False)
    assert (kept / "notes.txt").read_text() == "mine"


def test_edge_values_are_accepted(cli):
    """The ends of each range parse (then the missing run folder is the error)."""
    for args in (["serve", "/no/run", "--port", "65535", "--workers", "64"],
                 ["ranker", "/no/run", "--seed", "4294967295", "--threads", "0"],
                 ["recommend", "/no/run", "--user", "1", "-n", "1"]):
        status, err = cli(*args)
        assert status == 2 and "/no/run" in err and "argument" not in err, err


def test_every_model_config_refuses_a_bad_seed():
    """`--set model.seed=...` reaches every model's config: each one checks the range."""
    from llmrec.config import from_dict
    from llmrec.ctr import CTR_MODELS
    from llmrec.errors import ConfigError
    from llmrec.models import MODELS

    classes = {name: cls.config_class for name, cls in {**MODELS, **CTR_MODELS}.items()}
    for name, config_class in classes.items():
        for seed in (-5, 2**32, 10**20):
            with pytest.raises(ConfigError, match="seed must be in 0..4294967295"):
                from_dict(config_class, {"seed": seed}, "model")
        assert from_dict(config_class, {"seed": 2**32 - 1}, "model").seed == 2**32 - 1, name
