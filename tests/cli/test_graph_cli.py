"""``llmrec train/evaluate/recommend`` with the user-based models (BPR, LightGCN), end to end
on a slice of the real ML-100K, in subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmrec.testing.slices import recbole_slice


def llmrec(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "llmrec", *args], capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL, env=os.environ)
    if check and proc.returncode != 0:
        raise AssertionError(f"llmrec {' '.join(args)} failed:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def lightgcn_run(ml100k, tmp_path_factory) -> tuple[Path, Path]:
    data = recbole_slice(ml100k, tmp_path_factory.mktemp("slice") / "s", 120)
    run = tmp_path_factory.mktemp("runs") / "lightgcn"
    llmrec("-q", "train", "--model", "lightgcn", "--dataset", str(data), "--epochs", "4",
           "--set", "model.embedding_size=16", "--set", "model.learning_rate=0.01",
           "--set", "model.batch_size=512", "--output", str(run))
    return run, data


def test_train_then_evaluate_reproduces_the_metrics(lightgcn_run):
    run, _ = lightgcn_run
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["model"] == "lightgcn" and saved["epochs_run"] == 4
    assert 0 < saved["test"]["ndcg@10"] <= 1
    assert saved["test"]["ild_vec@10"] > 0                  # the propagated item vectors
    out = json.loads(llmrec("-q", "evaluate", str(run), "--json").stdout)
    for key in ("ndcg@10", "recall@10", "mrr@10"):
        assert out["test"][key] == pytest.approx(saved["test"][key], abs=1e-9)


def test_recommend_skips_the_users_items(lightgcn_run):
    run, data = lightgcn_run
    recs = json.loads(llmrec("-q", "recommend", str(run), "--user", "1", "-n", "5",
                             "--json").stdout)
    seen = {ln.split("\t")[1] for ln in (data / "slice.inter").read_text().splitlines()[1:]
            if ln.split("\t")[0] == "1"}
    assert len(recs) == 5 and not {r["item_id"] for r in recs} & seen


def test_bad_option_is_one_line():
    """(Every bad value's message: tests/models/test_graph.py, in process.)"""
    proc = llmrec("train", "--model", "lightgcn", "--dataset", "ml-100k", "--set",
                  "model.num_layers=0", check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "num_layers must be in 1..16 (0 layers is matrix factorisation" in lines[0]


def test_serving_uses_learned_user_vectors_and_folds_in_histories(lightgcn_run):
    import numpy as np

    from llmrec.serve import ServeConfig, Service, load_artifacts

    run, _ = lightgcn_run
    art = load_artifacts(run, ServeConfig(item_vectors="model"))
    model, ds = art.run.model, art.dataset
    u = ds.users.index("1")
    history = ds.interactions.sequence(u)
    expected = model.score([history], np.array([u]))[0].numpy()
    np.testing.assert_allclose(art.user_scores[u], expected, rtol=1e-5)   # the learned vector
    service = Service(art)
    explicit = {"history": ds.items.ids[history[:5]].tolist()}
    for request, seen in (({"user_id": "1"}, history), (explicit, history[:5])):
        items = [r["item_id"] for r in service.recommend(n=5, **request)["items"]]
        assert len(set(items)) == 5 and not set(items) & set(ds.items.ids[seen].tolist())
