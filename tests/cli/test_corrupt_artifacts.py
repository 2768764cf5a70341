"""Every artifact llmrec reads back, damaged (truncated or garbled), under every command that
reads it, in subprocesses: exit status 2, one line on stderr naming the file and the way out,
no traceback. Then the way out works."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llmrec.testing.slices import recbole_slice

USERS = 60           # the first 60 users of ML-100K: a run trains in seconds


def llmrec(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmrec", "-q", *args], capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def data_slice(ml100k, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corrupt-slice") / "ml100k-corrupt"
    recbole_slice(ml100k, out, USERS, stem="c", side=("item",))
    return out


def train_args(data: Path, run: Path) -> list[str]:
    return ["train", "--model", "sasrec", "--dataset", str(data), "--epochs", "2",
            "--set", "model.max_seq_len=20", "--set", "model.embedding_size=16",
            "--output", str(run)]


@pytest.fixture(scope="module")
def good_run(data_slice, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("corrupt-runs") / "sasrec"
    proc = llmrec(*train_args(data_slice, run))
    assert proc.returncode == 0, proc.stderr
    return run


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def garble(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(b"\xff\x00\x13garbage!" + data[12:])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def one_line_naming(proc: subprocess.CompletedProcess, path: Path, *hints: str) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llmrec: error: "), proc.stderr
    assert str(path) in lines[0], lines[0]
    for hint in hints:
        assert hint in lines[0], lines[0]
    return lines[0]


def copy_run(good_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    return run


# (file in the run folder, damage, command); {run} is the damaged copy
READERS = [
    ("model/model.safetensors", truncate, ["evaluate", "{run}"]),
    ("model/model.safetensors", garble, ["recommend", "{run}", "--user", "1"]),
    ("model/model.safetensors", empty, ["evaluate", "{run}", "--json"]),
    ("model/model.json", truncate, ["recommend", "{run}", "--user", "1"]),
    ("model/model.json", garble, ["evaluate", "{run}"]),
    ("config.toml", garble, ["evaluate", "{run}"]),
    ("config.toml", truncate, ["recommend", "{run}", "--user", "1"]),
    ("run.json", truncate, ["evaluate", "{run}"]),
    ("run.json", garble, ["recommend", "{run}", "--user", "1"]),
]


@pytest.mark.parametrize("name, damage, command", READERS,
                         ids=[f"{n}-{d.__name__}-{c[0]}" for n, d, c in READERS])
def test_damaged_run_file_is_one_line_for_every_reader(good_run, tmp_path, name, damage,
                                                       command):
    run = copy_run(good_run, tmp_path)
    damage(run / name)
    proc = llmrec(*[a.replace("{run}", str(run)) for a in command])
    one_line_naming(proc, run / name, "--force")


def test_resumed_train_with_a_damaged_checkpoint_says_how_to_recover(good_run, data_slice,
                                                                     tmp_path):
    """A run without metrics resumes from its checkpoint: a truncated checkpoint is one line
    naming it; deleting it (the way out it names) trains again and finishes the run."""
    run = copy_run(good_run, tmp_path)
    (run / "metrics.json").unlink()
    truncate(run / "checkpoint.safetensors")
    proc = llmrec(*train_args(data_slice, run))
    one_line_naming(proc, run / "checkpoint.safetensors", "delete", "--force")
    (run / "checkpoint.safetensors").unlink()
    proc = llmrec(*train_args(data_slice, run))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 2


def test_resumed_train_with_damaged_best_weights(good_run, data_slice, tmp_path):
    run = copy_run(good_run, tmp_path)
    (run / "metrics.json").unlink()
    garble(run / "best.safetensors")
    proc = llmrec(*train_args(data_slice, run))
    one_line_naming(proc, run / "best.safetensors", "--force")


def test_cached_train_with_damaged_metrics_or_run_json(good_run, data_slice, tmp_path):
    """train reads run.json (which config) and metrics.json (cache hit): each damaged one is
    one line; --force, the way out, retrains and rewrites them."""
    run = copy_run(good_run, tmp_path)
    truncate(run / "metrics.json")
    one_line_naming(llmrec(*train_args(data_slice, run)), run / "metrics.json", "--force")
    garble(run / "run.json")
    one_line_naming(llmrec(*train_args(data_slice, run)), run / "run.json", "--force")
    proc = llmrec(*train_args(data_slice, run), "--force")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((run / "run.json").read_text())["n_users"] == USERS
    assert "ndcg@10" in json.loads((run / "metrics.json").read_text())["test"]
    assert llmrec("evaluate", str(run)).returncode == 0


@pytest.fixture
def knowledge_store(tmp_path) -> Path:
    """A real knowledge store with item records, written through the store's own API."""
    from llmrec.knowledge import KnowledgeStore

    path = tmp_path / "k.sqlite"
    with KnowledgeStore(path) as store:
        for i in range(1, 101):
            store.put(key=f"k{i}", kind="item", entity=f"item:{i}", template="item@1",
                      model={"model": "test"}, decoding={}, prompt=[
                          {"role": "user", "content": f"item {i} " * 40}],
                      output="{}", parsed={"genre": f"genre of item {i} " * 10})
        store.link(((f"item:{i}", f"k{i}") for i in range(1, 101)), "item")
    return path


@pytest.mark.parametrize("damage", [truncate, garble])
def test_damaged_knowledge_store(knowledge_store, damage):
    assert llmrec("knowledge", "show", "--item", "7", "--store",
                  str(knowledge_store)).returncode == 0
    damage(knowledge_store)
    for command in (["knowledge", "show", "--item", "7"], ["knowledge", "stats"]):
        proc = llmrec(*command, "--store", str(knowledge_store))
        one_line_naming(proc, knowledge_store, "delete")


def test_damaged_vector_cache_shard(data_slice, tmp_path):
    home = {"LLMREC_HOME": str(tmp_path / "home")}
    args = ["encode", "--dataset", str(data_slice), "--encoder", "hashing"]
    assert llmrec(*args, env=home).returncode == 0
    shard = sorted((tmp_path / "home" / "vectors").glob("*/shard-*.npz"))[0]
    truncate(shard)
    one_line_naming(llmrec(*args, env=home), shard, "delete")
    shard.unlink()
    assert llmrec(*args, env=home).returncode == 0


def test_damaged_user_config_toml(data_slice, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"[model]\nname = \"sasrec\xff\xfe\"\n")
    run = tmp_path / "never"
    proc = llmrec("train", "--config", str(bad), "--dataset", str(data_slice), "--output",
                  str(run))
    one_line_naming(proc, bad, "invalid TOML")
    assert not run.exists()


def test_damaged_tune_study(data_slice, tmp_path):
    """`llmrec tune` keeps its Optuna study in SQLite: a damaged one is one line naming it."""
    space = tmp_path / "space.toml"
    space.write_text('[model.dropout]\ntype = "float"\nlow = 0.0\nhigh = 0.5\n')
    study = tmp_path / "study"
    study.mkdir()
    (study / "study.db").write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)
    proc = llmrec("tune", "--model", "sasrec", "--dataset", str(data_slice), "--space",
                  str(space), "--trials", "1", "--study-dir", str(study), "--no-test")
    one_line_naming(proc, study / "study.db", "delete")


@pytest.mark.parametrize("name, damage", [("per_user/meta.json", garble),
                                          ("per_user/test.parquet", truncate)])
def test_damaged_per_user_metrics(good_run, tmp_path, name, damage):
    """`llmrec compare` reads each run's per-user metrics; `evaluate` rewrites them."""
    run = copy_run(good_run, tmp_path)
    other = tmp_path / "other"
    shutil.copytree(good_run, other)
    damage(run / name)
    proc = llmrec("compare", str(other), str(run))
    one_line_naming(proc, run / name, "delete", "llmrec evaluate")
    shutil.rmtree(run / "per_user")                  # the way out it names
    assert llmrec("evaluate", str(run)).returncode == 0
    proc = llmrec("compare", str(other), str(run), "--json")
    assert proc.returncode == 0, proc.stderr
