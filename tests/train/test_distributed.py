"""Data-parallel training under torchrun: 2 CPU processes (gloo) against one process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from llmrec.testing.slices import recbole_slice
from llmrec.train import shard

pytestmark = pytest.mark.slow

OPTIONS = ["--model", "sasrec", "--set", "model.dropout=0", "--set", "model.embedding_size=32",
           "--set", "model.max_seq_len=50", "--set", "model.batch_size=32",
           "--set", "model.threads=1"]


def train(data: Path, out: Path, epochs: int, procs: int = 1, **popen) -> subprocess.Popen:
    launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={procs}"] if procs > 1 else [sys.executable])
    cmd = [*launch, "-m", "llmrec", "--quiet", "train", "--dataset", str(data), *OPTIONS,
           "--epochs", str(epochs), "--output", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, **popen)


def finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    return out


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant (torchrun starts its workers in sessions of
    their own, so killing its process group would leave them running)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    todo, tree = [pid], []
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def data(ml100k, tmp_path_factory) -> Path:
    return recbole_slice(ml100k, tmp_path_factory.mktemp("ddp") / "slice", 150)


@pytest.fixture(scope="module")
def one_process(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one") / "run"
    finish(train(data, out, epochs=4))
    return out


def test_two_processes_follow_one_process_write_one_run_and_resume_after_a_kill(
        data, one_process, tmp_path):
    out = tmp_path / "run"
    proc = train(data, out, epochs=4, procs=2)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "train_log.jsonl").exists() and log(out):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    kill_tree(proc.pid)                                    # rank 0, rank 1 and torchrun
    proc.communicate(timeout=60)
    assert not (out / "metrics.json").exists()
    done = len(log(out))
    assert 1 <= done < 4

    text = finish(train(data, out, epochs=4, procs=2))    # the same command resumes
    assert text.count("run folder:") == 1                  # rank 0 alone reports
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_from"] >= done
    one, two = log(one_process), log(out)
    assert [r["epoch"] for r in two] == [1, 2, 3, 4]       # one line per epoch, not per rank
    # the same global batches, gradients averaged over the shards: the one-process curve
    np.testing.assert_allclose([r["loss"] for r in two], [r["loss"] for r in one], rtol=1e-5)
    # sharded full-ranking validation: the same numbers as one process ranking every case
    for a, b in zip(one, two):
        assert b["valid_ndcg@10"] == pytest.approx(a["valid_ndcg@10"], abs=1e-9)
        assert b["valid_recall@10"] == pytest.approx(a["valid_recall@10"], abs=1e-9)
    m1 = json.loads((one_process / "metrics.json").read_text())
    assert metrics["test"]["ndcg@10"] == pytest.approx(m1["test"]["ndcg@10"], abs=1e-6)
    events = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert sum(r.get("event") == "start" for r in events) == 2     # run, then resume: rank 0


def test_shard_splits_every_leaf_of_a_batch_contiguously():
    batch = {"items": torch.arange(10).reshape(5, 2), "lengths": np.arange(5),
             "pair": (torch.arange(5), [torch.ones(5)])}
    parts = [shard(batch, r, 2) for r in range(2)]
    assert parts[0]["items"].tolist() == [[0, 1], [2, 3]]
    assert parts[1]["items"].tolist() == [[4, 5], [6, 7], [8, 9]]
    assert parts[1]["lengths"].tolist() == [2, 3, 4]
    assert parts[0]["pair"][0].tolist() == [0, 1]
    assert isinstance(parts[0]["pair"], tuple) and len(parts[1]["pair"][1][0]) == 3
    assert shard(batch, 0, 1) is batch


def test_a_ctr_ranker_trains_the_same_in_two_processes(one_process, tmp_path):
    """`torchrun ... -m llmrec ranker RUN --model deepfm`: the CTR model goes through the same
    trainer (shards, weighted gradient all-reduce); rank 0 alone writes RUN/ctr, and its
    weights match one process's within float tolerance after an epoch of ~160 steps (dropout
    0: masks drawn per shard differ from one mask of the whole batch; DIN's batch norm is
    left out for the same reason, each shard normalises by its own batch statistics). Longer
    runs drift apart as ReLU units near zero flip on float rounding, as any two summation
    orders do."""
    import shutil

    from safetensors.torch import load_file

    runs = {}
    for procs in (1, 2):
        run = tmp_path / f"run{procs}"
        shutil.copytree(one_process, run, ignore=shutil.ignore_patterns("ctr", ".ctr-*"))
        launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc-per-node={procs}"] if procs > 1 else [sys.executable])
        proc = subprocess.Popen(
            [*launch, "-m", "llmrec", "--quiet", "ranker", str(run), "--model", "deepfm",
             "--epochs", "1", "--threads", "1", "--knowledge-source", "none", "--dropout", "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"})
        out = finish(proc)
        assert out.count("ranker: ") == 1                  # one report, from rank 0
        assert not list(run.glob(".ctr-*"))                # no half-written folder left
        runs[procs] = (load_file(str(run / "ctr" / "model.safetensors")),
                       json.loads((run / "ctr" / "model.json").read_text())["fit_info"])
    (one, info1), (two, info2) = runs[1], runs[2]
    assert one.keys() == two.keys()
    for key, value in one.items():
        torch.testing.assert_close(two[key], value, rtol=1e-3, atol=1e-4)
    assert info2["best_valid_auc"] == pytest.approx(info1["best_valid_auc"], abs=1e-5)
