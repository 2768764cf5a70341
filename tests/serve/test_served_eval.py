"""``llmrec evaluate --served`` and ``llmrec tune-serving``: replaying a split through the
service, without leakage, equal to the offline metrics, and tuning that improves validation."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

SEQ = {"sequential": 1.0, "ann": 0.0, "popularity": 0.0}


@pytest.fixture(scope="module")
def replay_art(serve_run):
    from llmrec.serve import ServeConfig, replay_artifacts

    return replay_artifacts(serve_run, ServeConfig(encoder="hashing"))


@pytest.fixture(scope="module")
def ranked_art(serve_run, tmp_path_factory):
    """A copy of the run with a small next-item DIN ranker trained on its training split."""
    from llmrec.ctr import DIN, CTRDataConfig, build_ctr_data
    from llmrec.ctr._data import next_item_data, training_part
    from llmrec.runs import open_run
    from llmrec.serve import ServeConfig, replay_artifacts, save_ctr_ranker

    run_dir = tmp_path_factory.mktemp("served-ranker") / "run"
    shutil.copytree(serve_run, run_dir)
    run = open_run(run_dir)
    ds = training_part(run.dataset, run.split)
    data = next_item_data(build_ctr_data(ds, CTRDataConfig(split="chronological")), 2, 0)
    model = DIN(epochs=1, embedding_size=8, mlp_sizes=(16,), seed=0, threads=1)
    model.fit(data.train, data.valid, progress=False)
    save_ctr_ranker(run_dir, model, data, ds, {"objective": "next-item",
                                                "history_ratings": False})
    return replay_artifacts(run_dir, ServeConfig(encoder="hashing"))


@pytest.mark.parametrize("split", ["test", "valid"])
def test_the_sequential_channel_served_equals_llmrec_evaluate(replay_art, serve_run, split):
    """The same model under the same mask: the served list's metrics are the full-ranking
    metrics of `llmrec evaluate`, to the last bit."""
    from llmrec.runs import evaluate_run
    from llmrec.serve import Variant, replay

    ks = (5, 10, 20)
    served = replay(replay_art, split, [Variant("seq", SEQ)], n=20, ks=ks)["seq"]
    offline = evaluate_run(serve_run, mask="history", ks=ks)[split]
    assert served["cases"] == offline["cases"] > 50
    for k in ks:
        for m in ("ndcg", "recall", "mrr", "hit"):
            assert served[f"{m}@{k}"] == offline[f"{m}@{k}"], f"{m}@{k}"
    assert served["ndcg@20"] > 0                      # the comparison is not 0 == 0


def _targets(art, split: str) -> list[set[int]]:
    s = art.run.split
    cases = s.test_cases() if split == "test" else s.valid_cases()
    return cases, [set(cases.targets(k).tolist()) for k in range(len(cases))]


@pytest.mark.parametrize("split", ["test", "valid"])
def test_no_stage_sees_a_target(replay_art, split):
    """What the service receives is the history cut at the split; prestored scores poisoned
    with every user's target change nothing."""
    from llmrec.serve import Service, Variant, replay
    from llmrec.serve._replay import served_ranks, with_variant

    art = replay_art
    cases, targets = _targets(art, split)
    later = art.run.split.test_cases() if split == "valid" else None
    received: list[dict] = []

    class Recording(Service):
        def recommend(self, **kw):
            received.append(kw)
            return super().recommend(**kw)

    ranks = served_ranks(Recording(with_variant(art, Variant("d", art.config.weights))),
                         cases, 20)
    assert len(received) == len(cases) and (ranks > 0).any()
    index = art.dataset.items.index
    for k, kw in enumerate(received):
        assert kw["history"] is not None            # never the stored (full) history
        hist = [index(x) for x in kw["history"]]
        assert hist == cases.history(k).tolist()
        assert not targets[k] & set(hist)
        if later is not None:                       # nor the test item when replaying valid
            row = int(np.flatnonzero(later.users == cases.users[k])[0])
            assert not set(later.targets(row).tolist()) & set(hist)
    # prestored scores that put every target first: replay never reads them
    poisoned = np.zeros((art.dataset.n_users, art.n_items), np.float32)
    for k, t in enumerate(targets):
        poisoned[cases.users[k], list(t)] = 1e9
    variants = [Variant("seq", SEQ), Variant("fused", art.config.weights)]
    clean = replay(art, split, variants, 20)
    dirty = replay(dataclasses.replace(art, user_scores=poisoned), split, variants, 20)
    for v in variants:
        assert dirty[v.name]["ndcg@10"] == clean[v.name]["ndcg@10"] < 0.5


def test_the_ranker_learns_from_the_training_split_only(replay_art):
    from llmrec.ctr import CTRDataConfig, build_ctr_data
    from llmrec.ctr._data import next_item_data, training_part

    run = replay_art.run
    ds = training_part(run.dataset, run.split)
    data = next_item_data(build_ctr_data(ds, CTRDataConfig(split="chronological")), 3, 0)
    held = run.dataset.interactions.select(run.split.part > 0)
    held_pairs = set(zip(held.user.tolist(), held.item.tolist()))
    # positives and histories; negatives are drawn blind to held-out events (may hit one)
    sample_pairs = set(zip(data.user[data.label == 1].tolist(),
                           data.item[data.label == 1].tolist()))
    hist_pairs = {(int(u), int(i)) for u, row in zip(data.user, data.hist_items)
                  for i in row if i < data.schema.n_items}
    assert held_pairs and not held_pairs & sample_pairs and not held_pairs & hist_pairs
    pos, neg = data.label == 1, data.label == 0
    assert neg.sum() == 3 * pos.sum() and (data.hist_ratings == 0).all()
    train_pairs = set(zip(ds.interactions.user.tolist(), ds.interactions.item.tolist()))
    assert not set(zip(data.user[neg].tolist(), data.item[neg].tolist())) & train_pairs


@pytest.mark.parametrize("weights, ranker_weight", [
    ({"sequential": 1.0, "ann": 0.5, "popularity": 0.1}, 0.0),
    ({"sequential": 0.3, "ann": 1.0, "popularity": 0.2}, 0.4),
    ({"sequential": 1.0, "ann": 0.0, "popularity": 0.0}, 1.0),
    ({"sequential": 0.0, "ann": 0.0, "popularity": 1.0}, 0.0)])
def test_the_tuners_fast_path_serves_what_the_service_serves(ranked_art, weights,
                                                             ranker_weight):
    from llmrec.serve import ReplayCache, Service, Variant
    from llmrec.serve._replay import served_ranks, split_cases, with_variant

    cases = split_cases(ranked_art, "valid")
    cache = ReplayCache.build(ranked_art, cases)
    assert cache.ctr is not None
    service = Service(with_variant(ranked_art, Variant("v", weights, ranker_weight)))
    expected = served_ranks(service, cases, 10)
    assert (expected <= 10).sum() > 0
    np.testing.assert_array_equal(cache.ranks(weights, ranker_weight, n=10), expected)


def test_the_tuner_improves_validation_over_a_bad_start(replay_art):
    from llmrec.serve import ReplayCache, tune
    from llmrec.serve._replay import split_cases

    cache = ReplayCache.build(replay_art, split_cases(replay_art, "valid"))
    singles = {c: cache.ndcg({x: float(x == c) for x in SEQ}) for c in SEQ}
    worst = min(singles, key=singles.get)
    start = {x: float(x == worst) for x in SEQ}
    result = tune(cache, trials=30, seed=0, start=start)
    start_score = result.best_of("start").score
    assert start_score == singles[worst]
    assert result.best_of("cem").score > start_score
    assert result.best_of("tpe").score > start_score
    assert result.best.score >= max(singles.values())
    again = tune(cache, trials=30, seed=0, start=start)
    assert again.best == result.best                  # seeded: the same choice


@pytest.fixture
def cli(capsys):
    import logging

    from llmrec.cli import main

    logger = logging.getLogger("llmrec")
    saved = (logger.handlers[:], logger.level, logger.propagate)

    def run(*args: str) -> tuple[int, str, str]:
        status = main(list(args))
        out = capsys.readouterr()
        return status, out.out, out.err

    yield run
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.mark.parametrize("args, message", [
    (["evaluate", "{run}", "--split", "valid"], "go with --served"),
    (["evaluate", "{run}", "--served", "--n", "5"], "--n 5 is shorter"),
    (["evaluate", "{run}", "--served", "--mask", "none"], "excludes seen items"),
    (["evaluate", "{run}", "--served", "--ks", "0,10"], "must be >= 1"),
    (["evaluate", "{run}", "--served", "--serve-config", "{missing}"], "missing.toml"),
    (["tune-serving", "{run}", "--methods", "grid"], "--methods"),
    (["tune-serving", "{run}", "--trials", "0"], "argument --trials: must be >= 1, not 0"),
    (["tune-serving", "{run}", "--seed", "-1"], "--seed"),
    (["tune-serving", "{missing}"], "not a finished llmrec run"),
    (["tune-serving", "{run}", "--output", "{missing}/x.toml"], "does not exist"),
])
def test_cli_mistakes_get_one_line(cli, serve_run, tmp_path, args, message):
    args = [a.format(run=serve_run, missing=tmp_path / "missing.toml") for a in args]
    status, _, err = cli(*args)
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_tune_serving_writes_the_config_serve_and_evaluate_use(cli, serve_run, tmp_path):
    from llmrec.runs import evaluate_run
    from llmrec.serve import ServeConfig, run_serve_config

    run = tmp_path / "run"
    shutil.copytree(serve_run, run)
    start = tmp_path / "start.toml"
    start.write_text('encoder = "hashing"\nweights = { sequential = 0.0, ann = 0.0, '
                     'popularity = 1.0 }\n')
    status, out, err = cli("-q", "tune-serving", str(run), "--serve-config", str(start),
                           "--trials", "15", "--no-test")
    assert status == 0, err
    tuning = json.loads((run / "tuning.json").read_text())
    cfg = run_serve_config(run)
    assert cfg.weights == tuning["chosen"]["weights"] and cfg.encoder == "hashing"
    assert tuning["chosen"]["score"] >= tuning["rows"]["start (current config)"]["score"]
    assert run_serve_config(run) != ServeConfig()
    status, out, err = cli("-q", "evaluate", str(run), "--served", "--split", "valid",
                           "--json")
    assert status == 0, err
    result = json.loads(out)
    assert result["served_weights"] == cfg.weights and result["split"] == "valid"
    seq = result["rows"]["sequential alone (the retrieval model)"]
    assert seq["ndcg@10"] == evaluate_run(run, mask="history")["valid"]["ndcg@10"]
    assert result["rows"]["served default"]["ndcg@10"] == pytest.approx(
        tuning["chosen"]["score"], abs=1e-12)
    assert result["paired_default_vs_sequential"]["users"] == seq["cases"]


def test_the_ranker_is_kept_only_when_it_significantly_helps(ranked_art):
    from llmrec.serve import ReplayCache, tune
    from llmrec.serve._replay import split_cases

    cache = ReplayCache.build(ranked_art, split_cases(ranked_art, "valid"))
    strict = tune(cache, trials=15, seed=0, alpha=0.0)        # no p-value is below 0
    assert strict.best.ranker_weight == 0 and not strict.info["ranker_used"]
    assert strict.best.score == max(t.score for t in strict.trials if t.ranker_weight == 0)
    lax = tune(cache, trials=15, seed=0, alpha=1.0)
    top = max(t.score for t in lax.trials)
    assert lax.best.score == top or lax.info["ranker_test"]["mean_diff"] <= 0
