"""``llmrec bench representations``: one (variant, seed) end to end on synthetic chains, the
summary, the report writers and the CLI's one-line errors."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from llmrec.bench.representations import (RepresentationBenchConfig, load_bench_config,
                                          report_markdown, run_one, run_representation_bench,
                                          summarize, summary_table, write_chart)
from llmrec.cli import main
from llmrec.data import leave_one_out
from llmrec.errors import ConfigError
from llmrec.testing import chain_interactions


@pytest.fixture(scope="module")
def data():
    inter = chain_interactions(n_users=60)
    vectors = np.random.default_rng(0).normal(size=(inter.n_items, 8)).astype(np.float32)
    return SimpleNamespace(n_items=inter.n_items, name="chains"), leave_one_out(inter), vectors


@pytest.mark.parametrize("variant", ["sasrec-text", "tiger-random", "tiger-pq", "tiger-das"])
def test_one_run_has_accuracy_cold_and_cost_columns(data, variant):
    cfg = RepresentationBenchConfig(
        dataset="chains", seeds=(1,), id_levels=2, id_codebook_size=8, cold_max_count=1000,
        sasrec={"epochs": 2, "embedding_size": 16, "max_seq_len": 10},
        tiger={"epochs": 2, "embedding_size": 16, "num_heads": 2, "ffn_size": 32},
        rqvae_epochs=3)
    record = run_one(variant, 1, cfg, data)
    assert 0 <= record["ndcg@10"] <= record["recall@10"] <= 1
    assert record["cold_cases"] == record["cases"] == 60          # every target is "cold"
    assert record["cold_ndcg@10"] == pytest.approx(record["ndcg@10"])
    assert record["parameters"] > 0 and record["latency_ms_per_user"] > 0
    assert record["train_seconds"] >= 0
    per = record["per_user"]                           # kept for the significance table
    assert len(per["user"]) == len(per["ndcg@10"]) == 60
    assert np.mean(per["ndcg@10"]) == pytest.approx(record["ndcg@10"])
    if variant == "tiger-random":                      # unique by construction
        assert record["ids"]["collision_rate"] == 0.0 and record["ids"]["levels"] == 2
    if variant == "tiger-das":                         # an RQ-VAE: a reconstruction error
        assert 0 < record["ids"]["reconstruction_error"] < 2
    if variant == "tiger-pq":                          # 30 items in 8 x 8 cells collide:
        assert record["ids"]["collision_rate"] > 0     # a disambiguation level is added
        assert record["ids"]["levels"] == 3 and record["ids"]["reconstruction_error"] < 1


def _records():
    out = []
    for variant, base in (("sasrec-id", 0.10), ("tiger-random", 0.02)):
        for seed, delta in ((42, 0.0), (43, 0.01)):
            out.append({"variant": variant, "seed": seed, "ndcg@10": base + delta,
                        "recall@10": 2 * base + delta, "cold_ndcg@10": base / 2,
                        "cold_recall@10": base, "parameters": 1000, "train_seconds": 10.0,
                        "latency_ms_per_user": 1.5, "cases": 100, "cold_cases": 9})
    return out


def test_summary_is_mean_and_std_over_seeds():
    summary = summarize(_records())
    assert [r["variant"] for r in summary] == ["sasrec-id", "tiger-random"]
    assert summary[0]["ndcg@10"]["mean"] == pytest.approx(0.105)
    assert summary[0]["ndcg@10"]["std"] == pytest.approx(np.std([0.10, 0.11], ddof=1))
    text = summary_table(summary)
    assert "0.1050 ± 0.0071" in text and "tiger-random" in text
    md = report_markdown({"title": "T", "command": "llmrec bench representations",
                          "date": "2026-01-01", "protocol": "p", "summary": summary})
    assert md.startswith("# T") and "| sasrec-id" in md


def test_chart_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = write_chart(summarize(_records()), tmp_path / "chart.png", "T")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_config_rejects_unknown_variants():
    with pytest.raises(ConfigError, match="unknown variant"):
        RepresentationBenchConfig(variants=("sasrec-id", "tiger-magic"))


@pytest.mark.parametrize("args, message", [
    (["--variants", "sasrec-id,nope"], "unknown variant 'nope'"),
    (["--seeds", "0"], "argument --seeds: must be >= 1, not 0"),
])
def test_cli_mistakes_give_one_line(capsys, args, message):
    assert main(["-q", "bench", "representations", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_ctr_variants_on_real_ml100k(ml100k, tmp_path):
    """The CTR side end to end (DeepFM, one epoch, the hashing encoder): a row per variant,
    codes add parameters, the report has both sections' files, and a second run reuses every
    stored run."""
    variants = ("ctr-id", "ctr-id+text", "ctr-id+semantic-id", "ctr-id+random-id")
    cfg = load_bench_config(None, {"variants": list(variants), "seeds": [1], "ctr_epochs": 1,
                                   "ctr_model": "deepfm", "encoder": "hashing"})
    report = run_representation_bench(cfg, tmp_path / "rep")
    rows = {r["variant"]: r for r in report["ctr_summary"]}
    assert list(rows) == list(variants) and report["summary"] == []
    for r in rows.values():
        assert 0.6 < r["auc"]["mean"] < 1 and 0 < r["logloss"]["mean"] < 0.7
        assert 0.5 < r["rare_auc"]["mean"] < 1 and r["latency_ms_per_1000"]["mean"] > 0
    params = {v: r["parameters"]["mean"] for v, r in rows.items()}
    assert params["ctr-id+semantic-id"] > params["ctr-id"] < params["ctr-id+random-id"]
    assert params["ctr-id+text"] > params["ctr-id"]                  # the adaptor
    md = (tmp_path / "rep" / "results.md").read_text()
    assert "## CTR" in md and "## Sequential" not in md and md.count("| ctr-id") == 4
    assert "rare = items with fewer than 20 training samples" in md
    assert (tmp_path / "rep" / "chart.png").read_bytes()[:4] == b"\x89PNG"
    again = run_representation_bench(cfg, tmp_path / "rep")
    assert [r["auc"] for r in again["ctr_runs"]] == [r["auc"] for r in report["ctr_runs"]]


def test_bench_config_file_updates_model_defaults_and_rejects_mistakes(tmp_path):
    path = tmp_path / "rep.toml"
    path.write_text('seeds = [1, 2]\nvariants = ["tiger-pq", "ctr-id"]\n[tiger]\nepochs = 3\n')
    cfg = load_bench_config(path, {"ctr_model": "dcnv2"})
    assert cfg.seeds == (1, 2) and cfg.variants == ("tiger-pq", "ctr-id")
    assert cfg.tiger["epochs"] == 3 and cfg.tiger["max_seq_len"] == 20   # defaults kept
    assert cfg.ctr_model == "dcnv2"
    for text, message in (('[sasrec]\nbogus = 1\n', "unknown option 'sasrec.bogus'"),
                          ('variants = ["ctr-magic"]\n', "unknown variant 'ctr-magic'"),
                          ('ctr_model = "xgb"\n', "unknown CTR model 'xgb'"),
                          ('seeds = "42"\n', "seeds must be a list")):
        path.write_text(text)
        with pytest.raises(ConfigError, match=message) as e:
            load_bench_config(path)
        assert str(e.value).startswith(str(path))
