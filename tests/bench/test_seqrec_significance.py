"""The seqrec bench's significance table: per-user metrics averaged over paired seeds, tested
against the baseline model, on real runs (Pop and a tiny SASRec on a slice of ML-100K)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.stats

from llmrec.bench.seqrec import COLUMNS, compare, significance, write_report
from llmrec.errors import ConfigError
from llmrec.testing.slices import recbole_slice

USERS = 100


@pytest.fixture(scope="module")
def setup(ml100k, tmp_path_factory):
    root = tmp_path_factory.mktemp("bench-sig")
    data = root / "slice"
    recbole_slice(ml100k, data, USERS, stem="slice", side=())
    config = root / "sasrec.toml"
    config.write_text("[model]\nepochs = 2\nmax_seq_len = 30\n")
    args = (["pop", "sasrec"], str(data), [42, 43])
    options = {"config_files": {"sasrec": config}, "progress": False}
    return compare(*args, **options), args, options


@pytest.fixture(scope="module")
def records(setup):
    return setup[0]


def per_user(run_dir: str, part: str, metric: str) -> np.ndarray:
    frame = pl.read_parquet(Path(run_dir) / "per_user" / f"{part}.parquet").sort("user_id")
    return frame[metric].to_numpy()


def test_rows_test_the_seed_averaged_per_user_metrics(records, tmp_path):
    json_path, md_path = write_report(tmp_path, records, "title", "cmd")
    sig = json.loads(json_path.read_text())["significance"]
    assert sig["baseline"] == "pop" and "averaged over the seeds" in sig["method"]
    rows = sig["rows"]
    assert [r["model"] for r in rows] == ["sasrec"] * len(COLUMNS)
    runs = {(r["model"], r["seed"]): r["run_dir"] for r in records}
    for row, (part, metric) in zip(rows, COLUMNS):
        a = np.mean([per_user(runs["pop", s], part, metric) for s in (42, 43)], axis=0)
        b = np.mean([per_user(runs["sasrec", s], part, metric) for s in (42, 43)], axis=0)
        assert row["n"] == USERS and row["seeds"] == [42, 43]
        assert row["diff"] == pytest.approx((b - a).mean())
        # the mean difference is the difference of the summary table's seed means
        means = {m: np.mean([r[part][metric] for r in records if r["model"] == m])
                 for m in ("pop", "sasrec")}
        assert row["diff"] == pytest.approx(means["sasrec"] - means["pop"])
        assert row["p_ttest"] == pytest.approx(scipy.stats.ttest_rel(b, a).pvalue)
        d = b - a
        assert row["p_wilcoxon"] == pytest.approx(scipy.stats.wilcoxon(d[d != 0]).pvalue)
    ps = sorted(r["p_wilcoxon"] for r in rows)
    assert min(r["p_holm"] for r in rows) == pytest.approx(min(1.0, len(rows) * ps[0]))
    md = md_path.read_text()
    cells = [[c.strip() for c in ln.split("|")[1:3]] for ln in md.splitlines()]
    assert "p holm" in md and ["unmasked ndcg@10", "sasrec"] in cells


def test_baseline_choice_and_errors(records):
    sig = significance(records, "sasrec", n_boot=200)
    assert {r["model"] for r in sig["rows"]} == {"pop"}
    assert sig["rows"][0]["diff"] == pytest.approx(
        -significance(records, n_boot=200)["rows"][0]["diff"])
    with pytest.raises(ConfigError, match="baseline 'gru4rec' is not one of the models"):
        significance(records, "gru4rec")
    assert significance([r for r in records if r["model"] == "pop"])["rows"] == []


def test_older_runs_get_per_user_metrics_when_compared_again(setup):
    records, args, options = setup
    run = Path(next(r["run_dir"] for r in records if r["model"] == "sasrec"))
    before = pl.read_parquet(run / "per_user" / "test.parquet")
    shutil.rmtree(run / "per_user")                    # as a run trained before they existed
    again = compare(*args, **options)
    assert all(r["cached"] for r in again)
    assert pl.read_parquet(run / "per_user" / "test.parquet").equals(before)
