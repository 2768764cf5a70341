"""``llmrec bench knowledge`` end to end on real ML-100K (one backbone, one seed, one epoch,
the hashing encoder so the test does not wait for MiniLM; the MiniLM path is tested in
tests/encode)."""

from __future__ import annotations

import json

import pytest

from llmrec.cli import main
from llmrec.bench.knowledge import KnowledgeBenchConfig, run_knowledge_bench, summarize


@pytest.mark.slow
def test_bench_knowledge_writes_reports_and_reuses_runs(ml100k, tmp_path, capsys):
    out = tmp_path / "bench"
    code = main(["-q", "bench", "knowledge", "--models", "deepfm", "--seeds", "1",
                 "--epochs", "1", "--encoder", "hashing", "--output", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "metadata-text stand-in (no LLM)" in printed and "infer ms/1k" in printed
    report = json.loads((out / "results.json").read_text())
    assert report["command"].startswith("llmrec bench knowledge --dataset ml-100k")
    rows = {(r["model"], r["knowledge"]): r for r in report["summary"]}
    assert set(rows) == {("deepfm", False), ("deepfm", True)}
    for r in rows.values():
        assert 0.6 < r["auc"]["mean"] < 1 and r["latency_ms_per_1000"]["served"] > 0
    assert rows[("deepfm", True)]["latency_ms_per_1000"]["live"] > 0
    assert "auc_lift" in rows[("deepfm", True)] and "auc_lift" not in rows[("deepfm", False)]
    knowledge_run = next(r for r in report["runs"] if r["knowledge"])
    assert knowledge_run["prestore_seconds"] is not None      # served from stored vectors
    assert report["knowledge"]["costs"]["texts"] == 1682 + 943
    assert report["knowledge"]["costs"]["llm_calls"] == 0
    md = (out / "results.md").read_text()
    assert md.count("| deepfm ") == 2
    assert "ΔAUC" in md and "LLM calls" in md
    # the same benchmark again: every run comes from its record
    cfg = KnowledgeBenchConfig(models=("deepfm",), seeds=(42,), encoder="hashing", epochs=1)
    again = run_knowledge_bench(cfg, out, progress=False)
    assert all(r["cached"] for r in again["runs"])
    assert [r["auc"] for r in again["summary"]] == [r["auc"] for r in report["summary"]]


def test_summary_pairs_lifts_by_seed():
    def run(k, seed, a, rare):
        return {"model": "m", "knowledge": k, "seed": seed, "rare_samples": 5,
                "test": {"auc": a, "logloss": 0.5, "gauc": a}, "rare_auc": rare,
                "train_seconds": 1.0, "best_epoch": 1}
    rows = summarize([run(False, 1, 0.70, 0.60), run(False, 2, 0.72, 0.62),
                      run(True, 1, 0.71, 0.65), run(True, 2, 0.75, 0.63)])
    base, know = rows
    assert base["auc"]["mean"] == pytest.approx(0.71) and "auc_lift" not in base
    assert know["auc_lift"]["mean"] == pytest.approx(0.02)           # (0.01 + 0.03) / 2
    assert know["auc_lift"]["std"] == pytest.approx(0.0141421, abs=1e-6)
    assert know["rare_auc_lift"]["mean"] == pytest.approx(0.03)


def test_adaptor_ablations_share_the_baseline_runs():
    from llmrec.bench.knowledge import _options

    cfg = KnowledgeBenchConfig(model_options={"knowledge_kinds": ["item"], "dropout": 0.3})
    assert _options(cfg, knowledge=False) == {"dropout": 0.3}
    assert _options(cfg, knowledge=True) == {"knowledge_kinds": ["item"], "dropout": 0.3}
