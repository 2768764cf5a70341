"""``llmrec tokenize`` end to end on the tiny ML-100K fixture (12 items), in process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmrec.cli import main
from llmrec.tokenize import SemanticIds

DATA = str(Path(__file__).parents[1] / "fixtures" / "data" / "ml-100k")
CORE = ["--user-core", "0", "--item-core", "0"]


def tokenize(tmp_path, *args: str) -> tuple[int, Path]:
    out = tmp_path / "ids"
    code = main(["-q", "tokenize", "--dataset", DATA, *CORE, "--encoder", "hashing",
                 "--output", str(out), *args])
    return code, out


@pytest.mark.parametrize("method", ["rqkmeans", "pq", "das", "random", "sequential",
                                    "collaborative"])
def test_writes_a_unique_queryable_table_and_prints_diagnostics(tmp_path, capsys, method):
    extra = ["--epochs", "3"] if method == "das" else []
    code, out = tokenize(tmp_path, "--method", method, "--levels", "2", "--codebook-size", "4",
                         *extra)
    assert code == 0
    text = capsys.readouterr().out
    assert "collision rate" in text and "entropy bits" in text and "utilisation" in text
    ids = SemanticIds.load(out)
    assert ids.n_items == 12 and len(np.unique(ids.codes, axis=0)) == 12
    assert all(ids.item_of(ids.codes_of(i)) == i for i in range(12))
    lines = (out / "items.tsv").read_text().splitlines()
    assert lines[0] == "item_id\tcodes" and len(lines) == 13
    meta = json.loads((out / "meta.json").read_text())
    assert "collision_rate" in meta["diagnostics"] and "levels" in meta["diagnostics"]
    if method in ("rqkmeans", "pq", "das"):
        assert meta["diagnostics"]["reconstruction_error"] is not None
    if method == "das":
        assert meta["method"] == "das" and meta["config"]["cf_weight"] == 0.1


def test_collaborative_and_fusion_inputs_from_a_sasrec_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["-q", "train", "--model", "sasrec", "--dataset", DATA, "--epochs", "1",
                 "--set", "data.user_core=0", "--set", "data.item_core=0",
                 "--set", "model.embedding_size=8", "--output", str(run)]) == 0
    capsys.readouterr()
    for kind in ("collaborative", "fusion"):
        code, out = tokenize(tmp_path, "--method", "rqkmeans", "--input", kind, "--run",
                             str(run), "--levels", "2", "--codebook-size", "3", "--json")
        assert code == 0
        report = json.loads(capsys.readouterr().out)
        assert report["input"] == kind and report["n_items"] == 12
        assert SemanticIds.load(out).n_items == 12


@pytest.mark.parametrize("args, message", [
    (["--input", "collaborative"], "needs --run"),
    (["--method", "rqkmeans", "--epochs", "3"], "--epochs applies to --method rqvae and das"),
    (["--method", "random", "--levels", "1", "--codebook-size", "2"], "do not fit"),
    (["--run", "/nonexistent"], "--run is only used"),
])
def test_user_mistakes_give_one_line(tmp_path, capsys, args, message):
    code, _ = tokenize(tmp_path, *args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1


def test_tiger_trains_on_the_written_ids(tmp_path, capsys):
    code, out = tokenize(tmp_path, "--method", "rqkmeans", "--levels", "2",
                         "--codebook-size", "3")
    assert code == 0
    assert main(["-q", "train", "--model", "tiger", "--dataset", DATA, "--epochs", "2",
                 "--set", "data.user_core=0", "--set", "data.item_core=0",
                 "--set", f"model.ids={json.dumps(str(out))}",
                 "--set", "model.embedding_size=16", "--set", "model.num_heads=2",
                 "--output", str(tmp_path / "tiger")]) == 0
    metrics = json.loads((tmp_path / "tiger" / "metrics.json").read_text())
    assert 0 <= metrics["test"]["ndcg@10"] <= 1


def test_knowledge_input_needs_stored_item_knowledge_and_uses_it(tmp_path, capsys, monkeypatch):
    from llmrec.knowledge import KnowledgeStore, default_store_path
    from llmrec.tokenize.dataset import text_vectors
    from llmrec.data import Preprocessing, load_dataset

    monkeypatch.setenv("LLMREC_HOME", str(tmp_path / "home"))
    args = ("--method", "rqkmeans", "--levels", "2", "--codebook-size", "4", "--input",
            "knowledge")
    assert tokenize(tmp_path, *args)[0] == 2
    err = capsys.readouterr().err
    assert "0 of 12 items" in err and "llmrec knowledge generate" in err

    path = default_store_path("ml-100k")
    path.parent.mkdir(parents=True)
    with KnowledgeStore(path) as store:
        for i in range(1, 13):
            store.put(key=f"k{i}", kind="item", entity=f"item:{i}", template="item@1",
                      model={"model": "m"}, decoding={}, prompt=[], output="",
                      parsed={"mood": "grim" if i % 2 else "sunny"}, failure=None,
                      prompt_tokens=1, completion_tokens=1, seconds=0.1)
            store.link([(f"item:{i}", f"k{i}")], "item")
    code, out = tokenize(tmp_path, *args)
    assert code == 0
    assert "rq-kmeans on ml-100k (knowledge)" in capsys.readouterr().out
    ds = load_dataset(DATA, preprocessing=Preprocessing(user_core=0, item_core=0))
    plain = text_vectors(ds, "hashing")
    known = text_vectors(ds, "hashing", knowledge=True)
    assert plain.shape == known.shape and not np.allclose(plain, known)
