"""The evaluation harness: metrics from episodes, resumable JSONL, the chat-eval command."""

from __future__ import annotations

import json

import pytest

from llmrec.chat import TopKPolicy, TreePolicy, evaluate, sample_users
from llmrec.cli import main
from llmrec.errors import LlmrecError


def test_metrics_follow_the_episodes_and_a_rerun_resumes(world, tmp_path):
    users = sample_users(world, 12, seed=3)
    assert users == sample_users(world, 12, seed=3) != sample_users(world, 12, seed=4)
    out = tmp_path / "tree"
    full = evaluate(world, TreePolicy(), users, max_turns=4, k=5, out=out, progress=False)
    eps = [json.loads(x) for x in (out / "episodes.jsonl").read_text().splitlines()]
    assert [e["user"] for e in eps] == users
    hits = [e["hit_turn"] for e in eps]
    assert full["hit"]["4"] == sum(h is not None for h in hits) / 12
    assert full["hit"]["1"] == sum(h == 1 for h in hits) / 12
    assert full["average_turns"] == sum(h or 5 for h in hits) / 12
    assert full["leaks"] == 0 and json.loads((out / "metrics.json").read_text()) == full
    # transcripts: one line per utterance, agents' recommended ids recorded
    lines = [json.loads(x) for x in (out / "transcripts.jsonl").read_text().splitlines()]
    assert len(lines) == sum(len(e["transcript"]) for e in eps)
    assert {x["speaker"] for x in lines} == {"agent", "user"}
    assert all(set(x) >= {"dialogue", "user", "turn", "speaker", "text", "tool_calls", "items"}
               for x in lines)
    # interrupt: keep 7 episodes and a torn eighth line; the rerun plays only the 5 missing
    kept = (out / "episodes.jsonl").read_text().splitlines(keepends=True)[:7]
    (out / "episodes.jsonl").write_text("".join(kept) + kept[0][:40])
    again = evaluate(world, TreePolicy(), users, max_turns=4, k=5, out=out, progress=False)
    assert again["resumed_users"] == 7
    for key in ("hit", "average_turns", "leaks", "tool_calls_per_dialogue"):
        assert again[key] == full[key], key
    assert len((out / "episodes.jsonl").read_text().splitlines()) == 12
    with pytest.raises(LlmrecError, match="other settings"):
        evaluate(world, TopKPolicy(), users, max_turns=4, k=5, out=out, progress=False)


def test_chat_eval_command(chat_run, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["-q", "chat-eval", str(chat_run), "--strategy", "topk", "--users", "6",
                 "--turns", "3", "--k", "10", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    assert m["users"] == 6 and m["strategy"] == "topk" and m["max_turns"] == 3
    assert f"leaks            : {m['leaks']}" in printed and "hit within turns" in printed


@pytest.mark.parametrize("args,message", [
    (["--strategy", "unicrs"], "invalid choice"),
    (["--users", "0"], "must be >= 1"),
    (["--users", "5000"], "only 943 test users"),
    (["--strategy", "topk", "--confidence", "0.5"], "--confidence goes with"),
])
def test_chat_eval_bad_input_is_one_line(chat_run, tmp_path, capsys, args, message):
    code = main(["chat-eval", str(chat_run), "--out", str(tmp_path / "x"), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_chat_eval_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["chat-eval", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "not a finished llmrec run" in err and len(err.strip().splitlines()) == 1


def test_the_strategy_names_of_the_parser_are_the_registry():
    from llmrec.chat import STRATEGIES
    from llmrec.cli.chat_eval import STRATEGY_NAMES

    assert set(STRATEGY_NAMES) == set(STRATEGIES)


def test_chat_eval_with_memory_second_session_repeats_no_rejected_item(chat_run, tmp_path):
    from llmrec.chat import EntityMemory

    mem = tmp_path / "memory.sqlite"
    args = ["-q", "chat-eval", str(chat_run), "--strategy", "topk", "--users", "10",
            "--turns", "2", "--memory", str(mem)]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    with EntityMemory(mem) as m:
        rejected = {(u, i) for u in {e["user"] for e in map(
            json.loads, (tmp_path / "one" / "episodes.jsonl").read_text().splitlines())}
            for i in m.items(u, "dislike")}
    assert main([*args, "--session", "s2", "--out", str(tmp_path / "two")]) == 0
    lines = [json.loads(x) for x in (tmp_path / "two" / "transcripts.jsonl").read_text()
             .splitlines()]
    second = {(x["user"], i) for x in lines for i in x["items"]}
    assert len(rejected) >= 100 and len(second) >= 50 and not rejected & second
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["memory"] == {"path": str(mem), "session": "s2"}
