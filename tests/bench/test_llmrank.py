"""LLMRank: the answer parser, bootstrap aggregation, candidate-based metrics, candidate retrieval
on real ML-100K, and a small real run through the local llama.cpp backend (SmolLM2-135M) whose
every prompt is checked for leakage."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from llmrec.bench import (LLMRankConfig, aggregate_rankings, expected_random, parse_ranking,
                          rank_metrics, run_llmrank)
from llmrec.bench.llmrank import (evaluation_users, number_grammar, read_rank_template,
                                  retrieve_candidates)
from llmrec.errors import ConfigError
from llmrec.knowledge import TrainHistory
from llmrec.runs import load_config, open_run, train_run

TITLES = ["Heat (1995)", "Fargo (1996)", "Matrix, The (1999)", "Heat Wave (1990)",
          "Toy Story (1995)"]


# -- parser ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, order, invalid", [
    ("3, 1, 5", (2, 0, 4), 0),                                   # the grammar's format
    ("[2] Fargo (1996)\n[5] Toy Story (1995)", (1, 4), 0),       # bracketed numbers win
    ("1. Fargo (1996)\n2. Heat (1995)", (1, 0), 0),              # "1." is a rank, not [1]
    ("1. The Matrix\n2. heat wave", (2, 3), 0),                  # article moved; no "heat"
    ("Fargo (1997)\n  - Toy Stroy", (1, 4), 0),                  # fuzzy title match
    ("2, 2, 9, 0, 4", (1, 3), 2),                                # repeats; out of range
    ('{"ranking": [5, 4, 17]}', (4, 3), 1),                      # JSON (response_format)
    ('["Fargo", "Heat"]', (1, 0), 0),                            # a JSON list of titles
    ("I cannot rank movies, sorry.", (), 0),                     # names no candidate
    ("", (), 0),
])
def test_parser_reads_hand_written_answers(text, order, invalid):
    parsed = parse_ranking(text, TITLES)
    assert parsed.order == order
    assert parsed.invalid == invalid


def test_parser_does_not_read_years_or_ranks_as_candidates():
    # titles with numbers inside and years: no line is "numbers only", so no number is taken
    parsed = parse_ranking("My top pick is Heat (1995), then maybe 1995 classics.", TITLES)
    assert parsed.order == (0,)


def test_grammar_lists_every_number_longest_first():
    g = number_grammar(12)
    assert g.startswith('root ::= num (", " num){11}')
    assert number_grammar(20, 10).startswith('root ::= num (", " num){9}')
    assert g.index('"12"') < g.index('"1"')


# -- bootstrap aggregation and metrics (hand-computed) ---------------------------------------
def test_borda_and_reciprocal_aggregation_by_hand():
    # n = 4, fallback (retrieval) order 0,1,2,3. Round A ranks 2,0 (partial), round B 1,2,3,0.
    rankings = [[2, 0], [1, 2, 3, 0]]
    # Borda: 2 -> 4 + 3 = 7; 0 -> 3 + 1 = 4; 1 -> 0 + 4 = 4; 3 -> 0 + 2 = 2; tie 0/1 by fallback
    assert aggregate_rankings(rankings, 4, [0, 1, 2, 3], "borda") == [2, 0, 1, 3]
    # rr: 2 -> 1 + 1/2; 1 -> 1; 0 -> 1/2 + 1/4; 3 -> 1/3
    assert aggregate_rankings(rankings, 4, [0, 1, 2, 3], "rr") == [2, 1, 0, 3]
    # nothing named: the fallback order survives untouched
    assert aggregate_rankings([[], []], 4, [3, 1, 0, 2]) == [3, 1, 0, 2]


def test_candidate_metrics_by_hand():
    m = rank_metrics(2)
    assert m["ndcg@10"] == pytest.approx(1 / math.log2(4))
    assert (m["recall@1"], m["recall@5"], m["recall@10"]) == (0.0, 1.0, 1.0)
    assert m["mrr"] == pytest.approx(1 / 3)
    assert rank_metrics(10)["ndcg@10"] == 0.0 and rank_metrics(10)["recall@10"] == 0.0
    r = expected_random(20)
    assert r["recall@10"] == pytest.approx(0.5) and r["recall@1"] == pytest.approx(0.05)
    assert r["ndcg@10"] == pytest.approx(sum(1 / math.log2(k + 2) for k in range(10)) / 20)


# -- candidates from a real run ----------------------------------------------------------------
@pytest.fixture(scope="module")
def pop_run(ml100k, tmp_path_factory):
    folder = tmp_path_factory.mktemp("llmrank") / "pop"
    train_run(load_config(model="pop", dataset="ml-100k"), folder, progress=False)
    return folder


def test_retrieval_baseline_is_the_models_order_of_the_candidates(pop_run):
    run = open_run(pop_run)
    history = TrainHistory(run.dataset, run.split)
    users, positives = evaluation_users(run.split, history, LLMRankConfig(users=25))
    assert len(users) == 25
    counts = np.bincount(history.train.item, minlength=run.dataset.n_items)   # Pop's score
    scores = run.model.score([history.items(u) for u in users[:1]]).numpy()[0]
    assert np.argsort(-scores, kind="stable")[:5].tolist() == \
        np.argsort(-counts, kind="stable")[:5].tolist()
    for c, u, pos in zip(retrieve_candidates(run.model, history, users, positives, 20),
                         users, positives):
        banned = set(history.items(u).tolist()) | set(history.held_out(u).tolist())
        negatives = [i for i in c.items.tolist() if i != pos]
        assert len(c.items) == 20 and c.items[c.retrieval_rank] == pos and len(negatives) == 19
        assert not banned & set(negatives)
        # hand-computed: the 19 highest-scoring allowed items; the positive placed by its score
        allowed = [i for i in np.argsort(-scores, kind="stable") if i not in banned | {pos}]
        assert sorted(negatives) == sorted(allowed[:19])
        assert c.retrieval_rank == sum(scores[i] > scores[pos] for i in negatives)


# -- a real run through the local backend ----------------------------------------------------
@pytest.fixture(scope="module")
def local_llm():
    from llmrec.llm import make_backend

    with make_backend("local", threads=1, parallel=1, n_ctx=1024) as llm:
        yield llm


def test_small_real_run_parses_aggregates_resumes_and_never_leaks(pop_run, local_llm, tmp_path):
    cfg = LLMRankConfig(candidates=5, bootstrap=2, users=2, max_history=4, batch_users=1)
    out = tmp_path / "out"
    report = run_llmrank(pop_run, local_llm, cfg, out, progress=False)
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert report["users"] == len(records) == 2
    assert report["parse"]["rounds"] == 4 and not report["parse"]["failed"]
    assert report["parse"]["mean_named"] > 0          # the grammar makes answers parseable
    assert report["label"].startswith("candidate-based")
    ranks = {"llm_rank": [], "retrieval_rank": []}
    run = open_run(pop_run)
    history = TrainHistory(run.dataset, run.split)
    titles = history.titles
    for rec in records:
        for key in ranks:
            ranks[key].append(rec[key])
        # the final list is the Borda aggregate of the parsed rounds, and it holds the positive
        assert rec["final"] == aggregate_rankings(rec["rankings"], 5, list(range(5)))
        assert rec["candidates"][rec["retrieval_rank"]] == rec["positive"]
        assert rec["final"][rec["llm_rank"]] == rec["retrieval_rank"]
        check_prompts_do_not_leak(rec, run, history, titles)
    rr = report["metrics"][f"retrieval order ({run.config.model})"]
    assert rr["mrr"] == pytest.approx(np.mean([1 / (r + 1) for r in ranks["retrieval_rank"]]))
    llm_key = next(k for k in report["metrics"] if k.startswith("llmrank"))
    assert report["metrics"][llm_key]["mrr"] == pytest.approx(
        np.mean([1 / (r + 1) for r in ranks["llm_rank"]]))
    # the report can be rewritten from the folder alone (no LLM)
    from llmrec.bench.llmrank import report_from_folder
    assert report_from_folder(out)["metrics"] == report["metrics"]
    # resumable: a rerun finds every user done and never calls the LLM -- here the same
    # backend with its engine detached as close() does (a call would fail), the engine kept
    # alive (a local backend created and closed at once can hang in llama.cpp's destructor)
    before = (out / "results.jsonl").read_text()
    engine, local_llm._server = local_llm._server, None
    try:
        again = run_llmrank(pop_run, local_llm, cfg, out, progress=False)
    finally:
        local_llm._server = engine
    assert (out / "results.jsonl").read_text() == before
    assert again["metrics"] == report["metrics"]
    # a cut last line (a killed write) is dropped, and that user alone is redone
    lines = before.splitlines()
    (out / "results.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:40])
    run_llmrank(pop_run, local_llm, cfg, out, progress=False)
    redone = (out / "results.jsonl").read_text().splitlines()
    assert redone[:-1] == lines[:-1]
    assert [json.loads(x)["user"] for x in redone] == [r["user"] for r in records]
    # other settings into the same folder: one clear error
    with pytest.raises(ConfigError, match="other settings"):
        run_llmrank(pop_run, local_llm, LLMRankConfig(candidates=5, bootstrap=3, users=2,
                                                      max_history=4), out, progress=False)


def check_prompts_do_not_leak(rec, run, history, titles):
    """Every prompt of a user: the history part holds only that user's training titles; the
    held-out (valid/test) titles appear only as the test item, once, among the candidates."""
    u = run.dataset.users.index(rec["user"])
    train_titles = {titles[i] for i in history.items(u).tolist()}
    positive = titles[run.dataset.items.index(rec["positive"])]
    held = {titles[i] for i in history.held_out(u).tolist()} - train_titles
    for rnd in rec["rounds"]:
        system, user = rnd["prompt"]
        hist, _, rest = user.partition("\n\nNow there are")
        hist_lines = hist.splitlines()[1:]
        assert hist_lines and set(hist_lines) <= train_titles
        cand_lines = [ln for ln in rest.splitlines() if re.match(r"\[\d+\] ", ln)]
        assert len(cand_lines) == 5
        for t in held:
            assert t not in system and t not in hist
            hits = sum(ln.split("] ", 1)[1] == t for ln in cand_lines)
            assert hits == (1 if t == positive else 0), (t, positive)


def test_bad_template_and_config_are_one_line_errors(tmp_path):
    bad = tmp_path / "t.toml"
    bad.write_text('id = "x"\nversion = 1\nsystem = "s"\nuser = "u"\ncolour = 3\n')
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        read_rank_template(bad)
    with pytest.raises(ConfigError, match="template file not found"):
        read_rank_template(tmp_path / "none.toml")
    with pytest.raises(ConfigError, match="candidates"):
        LLMRankConfig(candidates=1)
    assert read_rank_template().ref == "llmrank@1"


def test_answers_naming_no_candidate_are_counted_and_fall_back_to_retrieval_order():
    from llmrec.bench.llmrank import Candidates, rank_user, summarize
    from llmrec.llm import Completion, Failure, Request

    titles = ["A (1990)", "B (1991)", "C (1992)", "D (1993)"]
    cands = Candidates(user=0, items=np.array([0, 1, 2, 3]), positive=2, retrieval_rank=2)
    req = Request.chat("x")
    rounds = [(np.array([3, 2, 1, 0]), req, Completion("I like films.", 10, 3, "stop", 0.1)),
              (np.array([0, 1, 2, 3]), req, Failure("timeout", "slow", 1.0))]
    rec = rank_user(cands, rounds, titles, "borda")
    assert rec["final"] == [0, 1, 2, 3] and rec["llm_rank"] == 2          # retrieval order
    assert [r["named"] for r in rec["rounds"]] == [0, 0]
    # one answer that names C first moves the positive to the top ([2] shown = candidate 2)
    rounds[0] = (np.array([3, 2, 1, 0]), req, Completion("2", 10, 1, "stop", 0.1))
    ranked = rank_user(cands, rounds, titles, "borda")
    assert ranked["final"][0] == 2 and ranked["llm_rank"] == 0
    for r in (rec, ranked):
        r.update(retrieval_rank=2, random_rank=1, seconds=1.0)
    s = summarize([rec, ranked], 4, {"model": "pop", "llm": {"model": "m"}})
    assert s["parse"]["no_candidate"] == 1 and s["parse"]["failed"] == {"timeout": 2}
    assert s["parse"]["users_all_rounds_empty"] == 1 and s["parse"]["partial"] == 1
    assert s["metrics"]["llmrank (m)"]["recall@1"] == 0.5


def test_cli_bad_input_is_one_line(capsys, tmp_path, ml100k):
    from llmrec.cli import main

    def run(*args: str) -> tuple[int, str]:
        try:
            status = main(list(args))
        except SystemExit as e:
            status = e.code
        return status, capsys.readouterr().err

    status, err = run("bench", "llmrank", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert status == 2 and err.count("\n") == 1 and "run folder not found" in err
    status, err = run("bench", "llmrank", "RUN", "--out", "o", "--candidates", "1")
    assert status == 2 and err.count("\n") == 1 and "--candidates: must be in 2..99" in err
    status, err = run("bench", "llmrank", "RUN", "--out", "o", "--bootstrap", "0")
    assert status == 2 and "--bootstrap: must be >= 1" in err
    # a data set without item titles: prompts cannot name items
    csv = tmp_path / "plain.csv"
    csv.write_text("user_id,item_id,timestamp\n" + "".join(
        f"{u},{i},{u * 100 + i}\n" for u in range(1, 8) for i in range(1, 9)))
    from llmrec.runs import load_config, train_run
    train_run(load_config(model="pop", dataset=str(csv)), tmp_path / "run", progress=False)
    capsys.readouterr()
    status, err = run("-q", "bench", "llmrank", str(tmp_path / "run"), "--out",
                      str(tmp_path / "o"), "--candidates", "3", "--threads", "1")
    assert status == 2 and err.strip().count("\n") == 0 and "no item titles" in err, err


@pytest.fixture(scope="module")
def openai_server():
    from llmrec.llm import serve_local_openai

    with serve_local_openai(threads=1, n_ctx=1024) as url:
        yield url


@pytest.mark.parametrize("constrain", ["json", "none"])
def test_openai_compatible_server_json_and_free_text(pop_run, openai_server, tmp_path,
                                                     constrain):
    """The same run through llama.cpp's OpenAI-compatible HTTP server: a JSON-schema answer
    (``response_format``) and a free-text answer, both read back by the one parser."""
    from llmrec.llm import OpenAIBackend
    from llmrec.llm.local import PACKAGED_MODEL_NAME

    cfg = LLMRankConfig(candidates=4, bootstrap=1, users=1, max_history=3, constrain=constrain)
    llm = OpenAIBackend(base_url=openai_server, model=PACKAGED_MODEL_NAME, max_retries=0)
    report = run_llmrank(pop_run, llm, cfg, tmp_path / "out", progress=False)
    rec = json.loads((tmp_path / "out" / "results.jsonl").read_text())
    [rnd] = rec["rounds"]
    assert "failure" not in rnd, rnd
    assert report["settings"]["config"]["constrain"] == constrain
    if constrain == "json":       # the server held the answer to the schema
        ranking = json.loads(rnd["text"])["ranking"]
        assert ranking and all(1 <= k <= 4 for k in ranking) and rnd["named"] >= 1
    # whatever the text said, the record is what the parser makes of the displayed titles
    run = open_run(pop_run)
    titles = TrainHistory(run.dataset, run.split).titles
    shown = [titles[run.dataset.items.index(rec["candidates"][c])] for c in rnd["order"]]
    assert rnd["named"] == len(parse_ranking(rnd["text"], shown).order)
    assert rec["final"] == aggregate_rankings(rec["rankings"], 4, list(range(4)))
