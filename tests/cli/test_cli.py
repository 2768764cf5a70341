"""The ``llmrec`` command end to end on a slice of the real ML-100K, in subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmrec.testing.slices import recbole_slice

USERS = 120          # the slice: the first 120 users of ML-100K (about 12,000 ratings)


def llmrec(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "llmrec", *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=os.environ)
    if check and proc.returncode != 0:
        raise AssertionError(f"llmrec {' '.join(args)} failed:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def ml100k_slice(ml100k, tmp_path_factory) -> Path:
    """RecBole atomic files holding only the first USERS users of the real data set."""
    out = tmp_path_factory.mktemp("slice") / "ml100k-slice"
    recbole_slice(ml100k, out, USERS, stem="slice", side=("item", "user"))
    return out


@pytest.fixture(scope="module")
def trained_run(ml100k_slice, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "sasrec"
    llmrec("-q", "train", "--model", "sasrec", "--dataset", str(ml100k_slice), "--epochs", "4",
           "--set", "model.max_seq_len=50", "--output", str(run))
    return run


def test_train_writes_a_complete_run_folder(trained_run):
    names = {p.name for p in trained_run.iterdir()}
    assert {"config.toml", "run.json", "metrics.json", "metrics.md", "train_log.jsonl",
            "log.jsonl", "checkpoint.safetensors", "best.safetensors", "model"} <= names
    m = json.loads((trained_run / "metrics.json").read_text())
    for part in ("valid", "test", "test_unmasked"):
        assert {"ndcg@10", "recall@10", "mrr@10"} <= set(m[part])
    assert m["best_epoch"] >= 1 and m["train_seconds"] > 0
    assert 0 < m["test"]["ndcg@10"] <= 1
    info = json.loads((trained_run / "run.json").read_text())
    assert info["n_users"] == USERS and len(info["config_hash"]) == 64
    assert "max_seq_len = 50" in (trained_run / "config.toml").read_text()


def test_train_again_is_a_cache_hit(trained_run, ml100k_slice):
    out = llmrec("-q", "train", "--model", "sasrec", "--dataset", str(ml100k_slice),
                 "--epochs", "4", "--set", "model.max_seq_len=50", "--output", str(trained_run))
    assert "cached run" in out.stdout


def test_evaluate_reproduces_the_training_metrics(trained_run):
    out = json.loads(llmrec("-q", "evaluate", str(trained_run), "--json").stdout)
    saved = json.loads((trained_run / "metrics.json").read_text())
    for key in ("ndcg@10", "recall@10", "mrr@10"):
        assert out["test"][key] == pytest.approx(saved["test"][key], abs=1e-6)
    table = llmrec("-q", "evaluate", str(trained_run), "--mask", "none").stdout
    assert "ndcg@10" in table and "test" in table


def test_recommend_prints_titles_and_skips_seen(trained_run, ml100k_slice):
    out = llmrec("-q", "recommend", str(trained_run), "--user", "1", "-n", "5", "--json")
    recs = json.loads(out.stdout)
    assert [r["rank"] for r in recs] == [1, 2, 3, 4, 5]
    seen = {ln.split("\t")[1] for ln in (ml100k_slice / "slice.inter").read_text().splitlines()
            if ln.split("\t")[0] == "1"}
    assert not seen & {r["item_id"] for r in recs}
    assert all(r["title"] for r in recs)
    text = llmrec("-q", "recommend", str(trained_run), "--user", "1", "-n", "3").stdout
    assert recs[0]["title"] in text


def test_demo_knowledge_step_explains_a_user_and_their_recommendations(trained_run, capsys):
    """`llmrec demo`'s knowledge path: the real local LLM, only the shown user and items, one
    table row each, stored (a second call is all cache hits)."""
    from llmrec.cli.demo import knowledge_step
    from llmrec.knowledge import KnowledgeStore
    from llmrec.runs import open_run, recommend_user

    run = open_run(trained_run)
    items = [r["item_id"] for r in recommend_user(run, "1", 3)]
    knowledge_step(run, "1", items, progress=False)
    out = capsys.readouterr().out
    titles = dict(zip(run.dataset.items.ids, run.dataset.item_titles()))
    assert "user 1 " in out and all(titles[i][:40] in out for i in items)
    store = out.rsplit("store ", 1)[1].strip()
    with KnowledgeStore(store) as db:
        assert set(db.export("item")) == set(items) and set(db.export("individual")) == {"1"}
    knowledge_step(run, "1", items, progress=False)
    assert " 0 LLM calls" in capsys.readouterr().out


def test_data_info_on_a_path(ml100k_slice):
    out = llmrec("data", "info", str(ml100k_slice), "--json")
    info = json.loads(out.stdout)
    assert info["users"] == USERS and info["interactions"] > 5000
    assert 0 < info["users_with_last_two_tied"] < 1
    text = llmrec("data", "info", str(ml100k_slice)).stdout
    assert "whose last two share a timestamp" in text
    assert "same-timestamp order agreement" in text


def test_killed_training_resumes(ml100k_slice, tmp_path):
    run = tmp_path / "run"
    args = ["train", "--model", "sasrec", "--dataset", str(ml100k_slice), "--epochs", "6",
            "--set", "model.patience=100", "--set", "model.max_seq_len=30", "--output", str(run)]
    cmd = [sys.executable, "-m", "llmrec", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    log = run / "train_log.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and (not log.exists() or
                                      len(log.read_text().splitlines()) < 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(log.read_text().splitlines())
    assert 2 <= done < 6 and not (run / "metrics.json").exists()
    second = llmrec(*args)
    resumed = int(second.stderr.split("resuming from epoch ")[1].split()[0])
    assert resumed in (done, done + 1)      # killed after a checkpoint, before its log line
    m = json.loads((run / "metrics.json").read_text())
    assert m["resumed_from"] == resumed and m["epochs_run"] == 6
    epochs = [json.loads(line)["epoch"] for line in log.read_text().splitlines()]
    assert epochs == list(range(1, 7))


BAD = [
    (["train", "--model", "sasrec", "--dataset", "/no/such/file.csv"], "no such file"),
    (["train", "--model", "nope", "--dataset", "ml-100k"], "unknown model 'nope'"),
    (["train", "--model", "sasrec", "--dataset", "ml-100k", "--set", "model.nope=1"],
     "unknown option 'model.nope'"),
    (["train", "--model", "sasrec", "--dataset", "ml-100k", "--set", "model.dropout=\"x\""],
     "model.dropout must be a number"),
    (["train", "--model", "sasrec", "--dataset", "ml-100k", "--set", "model.dropout=1.5"],
     "dropout must be in"),
    (["train", "--model", "sasrec", "--dataset", "ml-100k", "--set", "data.user_core=100000"],
     "no interactions left"),
    (["train", "--model", "sasrec", "--dataset", "ml-100k", "--config", "/no/config.toml"],
     "config file not found"),
    (["train", "--model", "sasrec", "--dataset", "imaginary-data"], "unknown data set"),
    (["data", "info", "ml-100k", "--format", "weird"], "unknown data format"),
    (["evaluate", "/no/run"], "not a finished llmrec run"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a[:3]) + f" [{i}]"
                                                   for i, (a, _) in enumerate(BAD)])
def test_bad_input_gives_one_clear_line(args, message, ml100k):
    proc = llmrec(*args, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llmrec: error:"), proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr


def test_bad_files_give_one_clear_line(tmp_path, ml100k_slice, trained_run):
    csv = tmp_path / "ratings.csv"
    cases = {
        "user_id,item_id,timestamp\n1,2,100\n1,3,abc\n": "timestamp",
        "who,what\n1,2\n": "user_id",
    }
    for text, message in cases.items():
        csv.write_text(text)
        proc = llmrec("train", "--model", "pop", "--dataset", str(csv), check=False)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
        assert str(csv) in proc.stderr
    truncated = tmp_path / "trunc"
    truncated.mkdir()
    text = (ml100k_slice / "slice.inter").read_text()
    (truncated / "t.inter").write_text(text[:len(text) // 2].rsplit("\t", 1)[0])
    proc = llmrec("train", "--model", "pop", "--dataset", str(truncated), check=False)
    assert proc.returncode == 2 and "truncated" in proc.stderr, proc.stderr
    proc = llmrec("recommend", str(trained_run), "--user", "99999", check=False)
    assert proc.returncode == 2 and "user '99999' is not in" in proc.stderr


def test_demo_lanes_balance_cost_and_keep_every_model():
    from llmrec.cli.demo import lanes

    assert lanes(["pop", "gru4rec", "sasrec", "bert4rec"], 2) == [["bert4rec", "pop"],
                                                                   ["sasrec", "gru4rec"]]
    assert lanes(["sasrec", "gru4rec"], 1) == [["sasrec", "gru4rec"]]
    assert lanes(["sasrec"], 4) == [["sasrec"]]


def test_demo_trains_in_parallel_lanes_the_runs_one_lane_reuses(ml100k_slice):
    """Two worker processes (one thread each) write the very run folders that the one-lane
    path then finds finished: same config hash, same metrics, records in the asked order."""
    from llmrec.cli.demo import train_models

    budget = {"gru4rec": ["model.epochs=2", "model.max_seq_len=20"],
              "sasrec": ["model.epochs=2", "model.max_seq_len=20"]}
    models = ["sasrec", "pop", "gru4rec"]
    parallel = train_models(models, 3, jobs=2, quiet=True, dataset=str(ml100k_slice),
                            budget=budget)
    assert [r["model"] for r in parallel] == models
    assert not any(r["cached"] for r in parallel)
    assert len({r["run_dir"] for r in parallel}) == 3
    serial = train_models(models, 3, jobs=1, quiet=True, dataset=str(ml100k_slice),
                          budget=budget)
    assert [r["run_dir"] for r in serial] == [r["run_dir"] for r in parallel]
    assert all(r["cached"] for r in serial)
    assert [r["test"]["ndcg@10"] for r in serial] == [r["test"]["ndcg@10"] for r in parallel]
