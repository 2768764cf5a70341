"""Ranking with a CTR model (KAR knowledge prestored) stored in the run folder."""

from __future__ import annotations

import shutil

import numpy as np
import pytest


@pytest.fixture(scope="module")
def ctr_artifacts(serve_run, artifacts, tmp_path_factory):
    from llmrec.ctr import DeepFM, build_ctr_data
    from llmrec.ctr import knowledge_tables
    from llmrec.encode import HashingEncoder
    from llmrec.serve import ServeConfig, load_artifacts, save_ctr_ranker

    ds = artifacts.dataset
    data = build_ctr_data(ds)
    data = knowledge_tables(ds, data, "metadata", HashingEncoder(64),
                            progress=False).attach(data)
    model = DeepFM(epochs=1, embedding_size=8, mlp_sizes=(16,), expert_sizes=(16,),
                   knowledge=True, seed=0).fit(data.train, data.valid, progress=False)
    run = tmp_path_factory.mktemp("ctr-run") / "run"
    shutil.copytree(serve_run, run)
    save_ctr_ranker(run, model, data, ds)
    return load_artifacts(run, ServeConfig(encoder="hashing", ranker="ctr")), model, data


def test_ranker_scores_equal_the_models_predictions(ctr_artifacts):
    art, model, data = ctr_artifacts
    ranker = art.ranker
    assert ranker is not None and ranker.model.prestored is not None
    rows = np.flatnonzero(data.hist_items[:, 0] < data.schema.n_items)[:20]  # full histories
    expected = model.predict(data.take(rows))
    for row, want in zip(rows, expected):
        hist = data.hist_items[row]                    # the same index space here
        got = ranker.score(int(data.user[row]), hist, data.hist_ratings[row].astype(float),
                           np.array([data.item[row]]))
        assert got[0] == pytest.approx(want, abs=1e-5)


def test_recommendations_are_ranked_by_click_probability(ctr_artifacts):
    from llmrec.serve import Service

    art, model, _ = ctr_artifacts
    out = Service(art).recommend(user_id="1", n=10)
    assert out["ranker"] == "deepfm"
    scores = [it["score"] for it in out["items"]]
    assert all(0 < s < 1 for s in scores) and scores == sorted(scores, reverse=True)
    cold = Service(art).recommend(user_id="stranger", n=5)
    assert cold["ranker"] == "deepfm"                 # ranked as the CTR model's average user
    cold_scores = [it["score"] for it in cold["items"]]
    assert cold_scores == sorted(cold_scores, reverse=True)
    assert "deepfm" in art.info["ranker"]
