"""``llmrec compare`` and per-user metrics end to end: real runs on a slice of ML-100K."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from llmrec.testing.slices import recbole_slice
import scipy.stats

USERS = 120


def llmrec(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "llmrec", *args], capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL, env=os.environ)
    if check and proc.returncode != 0:
        raise AssertionError(f"llmrec {' '.join(args)} failed:\n{proc.stderr}")
    return proc


def one_line_error(proc: subprocess.CompletedProcess, message: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llmrec: error:"), proc.stderr
    assert message in lines[0], lines[0]


@pytest.fixture(scope="module")
def runs(ml100k, tmp_path_factory) -> dict[str, Path]:
    """Pop and two seeds of a tiny SASRec on the first USERS users of the real ML-100K."""
    root = tmp_path_factory.mktemp("compare")
    data = root / "slice"
    recbole_slice(ml100k, data, USERS, stem="slice", side=("item",))
    out = {"pop": root / "pop", "s42": root / "s42", "s43": root / "s43",
           "other": root / "other"}
    llmrec("-q", "train", "--model", "pop", "--dataset", str(data), "--output", str(out["pop"]))
    for seed in (42, 43):
        llmrec("-q", "train", "--model", "sasrec", "--dataset", str(data), "--epochs", "2",
               "--set", "model.max_seq_len=30", "--set", f"model.seed={seed}",
               "--output", str(out[f"s{seed}"]))
    llmrec("-q", "train", "--model", "pop", "--dataset", str(data), "--set",
           "data.user_core=20", "--output", str(out["other"]))
    return out


def test_runs_save_per_user_and_beyond_accuracy_metrics(runs):
    m = json.loads((runs["s42"] / "metrics.json").read_text())
    for k in (5, 10, 20):
        assert {f"coverage@{k}", f"gini@{k}", f"novelty@{k}", f"ild@{k}", f"ild_vec@{k}",
                f"arp@{k}"} <= set(m["test"])
        assert 0 < m["test"][f"coverage@{k}"] <= 1 and 0 <= m["test"][f"gini@{k}"] < 1
    pop = json.loads((runs["pop"] / "metrics.json").read_text())["test"]
    assert "ild_vec@10" not in pop                       # Pop has no item embeddings
    # Pop's list is the most popular unseen items: no list of the same length (same masking)
    # can have a higher average popularity, user by user
    arp_pop = pl.read_parquet(runs["pop"] / "per_user" / "test.parquet")["arp@10"].to_numpy()
    arp = pl.read_parquet(runs["s42"] / "per_user" / "test.parquet")["arp@10"].to_numpy()
    assert (arp_pop >= arp - 1e-9).all() and arp_pop.mean() > arp.mean()
    for part in ("valid", "test", "test_unmasked"):
        frame = pl.read_parquet(runs["s42"] / "per_user" / f"{part}.parquet")
        assert sorted(frame["user_id"].to_list(), key=int) == [str(u) for u in range(1, 121)]
        # the per-user means are the reported means
        for metric in ("ndcg@10", "recall@20", "novelty@10", "ild_vec@5"):
            assert frame[metric].mean() == pytest.approx(m[part][metric], rel=1e-9)
    meta = json.loads((runs["s42"] / "per_user" / "meta.json").read_text())
    assert meta["split_hash"] == m["split_hash"] and meta["mask"] == "history"


def test_compare_json_agrees_with_scipy_on_the_saved_files(runs):
    out = llmrec("compare", str(runs["pop"]), str(runs["s42"]), str(runs["s43"]),
                 "--metrics", "ndcg@10,recall@10,novelty@10", "--json", "--n-boot", "2000")
    report = json.loads(out.stdout)
    assert report["baseline"] == str(runs["pop"]) and report["users"] == USERS
    rows = report["rows"]
    assert [(r["metric"], Path(r["model"]).name) for r in rows] == [
        (m, s) for m in ("ndcg@10", "recall@10", "novelty@10") for s in ("s42", "s43")]
    base = pl.read_parquet(runs["pop"] / "per_user" / "test.parquet")
    for r in rows:
        other = pl.read_parquet(Path(r["model"]) / "per_user" / "test.parquet")
        joined = base.join(other, on="user_id", suffix="_b")
        a, b = joined[r["metric"]].to_numpy(), joined[f"{r['metric']}_b"].to_numpy()
        assert r["n"] == USERS and r["diff"] == pytest.approx((b - a).mean())
        assert r["p_ttest"] == pytest.approx(scipy.stats.ttest_rel(b, a).pvalue)
        d = b - a
        assert r["p_wilcoxon"] == pytest.approx(scipy.stats.wilcoxon(d[d != 0]).pvalue)
        assert r["ci_low"] <= r["diff"] <= r["ci_high"]
    # Holm over the six Wilcoxon p-values: the smallest is multiplied by 6
    ps = sorted(r["p_wilcoxon"] for r in rows)
    assert min(r["p_holm"] for r in rows) == pytest.approx(min(1.0, 6 * ps[0]))
    assert all(r["p_holm"] >= r["p_wilcoxon"] for r in rows)
    saved = json.loads((runs["s43"] / "metrics.json").read_text())["test"]["ndcg@10"]
    assert report["means"][str(runs["s43"])]["ndcg@10"] == pytest.approx(saved)
    # --baseline and the text table
    text = llmrec("compare", str(runs["pop"]), str(runs["s42"]), "--baseline",
                  str(runs["s42"]), "--n-boot", "500").stdout
    assert "baseline s42" in text and "p holm" in text and "95% CI" in text
    row = [ln for ln in text.splitlines() if ln.startswith("ndcg@10")][0]
    assert row.split()[1] == "pop"


def test_old_runs_are_upgraded_by_evaluate(runs, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(runs["s43"], old)
    shutil.rmtree(old / "per_user")
    proc = llmrec("compare", str(runs["s42"]), str(old), check=False)
    one_line_error(proc, f"{old}: no per-user metrics; re-run `llmrec evaluate {old}`")
    llmrec("-q", "evaluate", str(old), "--mask", "none")        # another mask: not written
    assert not (old / "per_user").exists()
    llmrec("-q", "evaluate", str(old))
    again = pl.read_parquet(old / "per_user" / "test.parquet")
    first = pl.read_parquet(runs["s43"] / "per_user" / "test.parquet")
    assert again.equals(first)
    report = json.loads(llmrec("compare", str(runs["s42"]), str(old), "--json",
                               "--n-boot", "200").stdout)
    assert report["rows"][0]["n"] == USERS


def in_process(*args: str, capsys) -> subprocess.CompletedProcess:
    """The same command through ``llmrec.cli.main`` (parser, error printing, exit status)."""
    import logging

    from llmrec.cli import main

    logger = logging.getLogger("llmrec")
    saved = logger.handlers[:], logger.level, logger.propagate
    try:
        rc = main(list(args))
    except SystemExit as e:                     # argparse's own errors
        rc = e.code
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, out.out, out.err)


def test_refusals_are_one_line(runs, capsys):
    a, b = str(runs["pop"]), str(runs["s42"])
    one_line_error(llmrec("compare", a, b, "--metrics", "ndcg@11", check=False),
                   "unknown metric 'ndcg@11'; available: recall@5, hit@5, ndcg@5")
    cases = [
        (["--metrics", "ild_vec@10"], f"metric 'ild_vec@10' is missing from {a}"),
        (["--baseline", "/no/run"], "--baseline '/no/run' is not one of the runs compared"),
        (["--part", "valid", "--n-boot", "5"], "--n-boot must be >= 100"),
        (["--metrics", ","], "--metrics expects names like ndcg@10,recall@10"),
    ]
    for extra, message in cases:
        one_line_error(in_process("compare", a, b, *extra, capsys=capsys), message)
    one_line_error(in_process("compare", a, str(runs["other"]), capsys=capsys),
                   f"{runs['other']}: evaluated on other data or another split than {a}")
    one_line_error(in_process("compare", a, capsys=capsys), "compare needs at least two")
    one_line_error(in_process("compare", a, "/no/run", capsys=capsys),
                   "/no/run: not a finished llmrec run")
