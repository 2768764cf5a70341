"""The representations bench's significance table: variants against the first, per user."""

import numpy as np
import pytest
import scipy.stats

from llmrec.bench.representations import report_markdown, significance, summarize


def record(variant, seed, ndcg, cold):
    ndcg = np.asarray(ndcg, dtype=float)
    return {"variant": variant, "seed": seed, "per_user": {
        "user": list(range(len(ndcg))), "ndcg@10": ndcg.tolist(), "recall@10": ndcg.tolist(),
        "cold_ndcg@10": np.where(cold, ndcg, np.nan).tolist(),
        "cold_recall@10": np.where(cold, ndcg, np.nan).tolist()}}


def test_variants_are_tested_against_the_first_on_seed_averaged_users():
    rng = np.random.default_rng(0)
    cold = np.arange(40) < 10                           # the first 10 users are cold
    base = {s: rng.random(40) for s in (42, 43)}
    other = {s: base[s] + rng.normal(0.1, 0.1, 40) for s in (42, 43)}
    records = [record("sasrec-id", s, base[s], cold) for s in (42, 43)]
    records += [record("sasrec-text", s, other[s], cold) for s in (42, 43)]
    records.append({"variant": "tiger-random", "seed": 42})        # cached before per_user
    sig = significance(records, n_boot=500)
    assert sig["baseline"] == "sasrec-id" and sig["skipped_runs"] == 1
    rows = {r["metric"]: r for r in sig["rows"]}
    a = (base[42] + base[43]) / 2
    b = (other[42] + other[43]) / 2
    assert rows["ndcg@10"]["n"] == 40 and rows["ndcg@10"]["diff"] == pytest.approx((b - a).mean())
    assert rows["ndcg@10"]["p_ttest"] == pytest.approx(scipy.stats.ttest_rel(b, a).pvalue)
    assert rows["cold_ndcg@10"]["n"] == 10                          # NaN pairs left out
    assert rows["cold_ndcg@10"]["diff"] == pytest.approx((b - a)[cold].mean())
    ps = sorted(r["p_wilcoxon"] for r in sig["rows"])
    assert min(r["p_holm"] for r in sig["rows"]) == pytest.approx(min(1, 4 * ps[0]))
    md = report_markdown({"title": "t", "command": "c", "date": "d", "protocol": "p",
                          "summary": summarize(records), "significance": sig})
    assert "Against sasrec-id" in md and "p holm" in md
    cells = [[c.strip() for c in ln.split("|")[1:3]] for ln in md.splitlines()]
    assert ["cold_ndcg@10", "sasrec-text"] in cells
    assert significance(records[:2])["rows"] == []                  # one variant: nothing
