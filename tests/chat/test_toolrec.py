"""ToolRec: rounds of retrieval tools chosen by the LLM, observations between rounds, finish
with a round's candidates; schema-constrained rounds, repair + fallback, no leaks.

The LLM is real: a real OpenAI-compatible HTTP server (conftest's ``scripted``) answering by
round, and the packaged SmolLM2-135M through llama.cpp for a few rounds under the grammar.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from llmrec.chat import TopKPolicy, ToolRec, TreePolicy, evaluate, run_episode, sample_users
from llmrec.cli import main
from llmrec.llm import make_backend


def _openai(url: str):
    return make_backend("openai", base_url=url, model="scripted", max_retries=0)


def _cases(world):
    return {u: (h, t) for u, h, t in world.test_users()}


def _round(body: dict[str, Any]) -> int:
    """Which round of the turn a request is (1 + the assistant messages before it)."""
    return 1 + sum(1 for m in body["messages"] if m["role"] == "assistant")


def _by_round(*calls: Any):
    def reply(body: dict[str, Any]) -> str:
        said = calls[min(_round(body), len(calls)) - 1]
        return said if isinstance(said, str) else json.dumps(said)
    return reply


def test_rounds_observe_the_tools_and_finish_with_a_round(world, scripted):
    """Round 1 retrieves the model's top 50, round 2 finishes with round 1's candidates: the
    same conversations as the top-k policy, two LLM calls per turn, and round 2's request
    shows round 1's result and allows finishing with round 1 only."""
    server = scripted(_by_round({"tool": "retrieve_candidates", "args": {"n": 50}},
                                {"tool": "finish", "use": 1}))
    users = sample_users(world, 4, seed=21)
    m = evaluate(world, ToolRec(_openai(server.url)), users, max_turns=3, k=10, progress=False)
    topk = evaluate(world, TopKPolicy(), users, max_turns=3, k=10, progress=False)
    assert m["hit"] == topk["hit"] and m["leaks"] == 0
    turns = m["turn_seconds"]["turns"]
    assert len(server.bodies) == 2 * turns == m["llm_per_dialogue"]["llm_calls"] * 4
    assert m["llm_per_dialogue"]["repairs"] == m["llm_per_dialogue"]["fallbacks"] == 0
    second = server.bodies[1]
    assert re.match(r"Retrieved the model's top 50\. Before: 1349 candidates, after: 50\.",
                    second["messages"][-1]["content"])
    variants = second["response_format"]["json_schema"]["schema"]["anyOf"]
    finish = [v for v in variants if v["properties"]["tool"] == {"const": "finish"}]
    assert finish and finish[0]["properties"]["use"] == {"enum": [1]}
    assert not [v for v in variants if v["properties"]["tool"] == {"const": "ask"}]
    first = server.bodies[0]["response_format"]["json_schema"]["schema"]["anyOf"]
    assert [v["properties"]["tool"]["const"] for v in first] == [
        "search_items", "retrieve_candidates", "ask"]        # no finish before a round


def test_a_search_that_matches_nothing_is_an_observation(world, scripted):
    """An empty search leaves the candidates unchanged and says so; the surrogate goes on and
    finishes with it; then an out-of-range round is repaired; then the tree acts."""
    server = scripted(_by_round(
        {"tool": "search_items", "args": {"genres": ["Film-Noir", "Children's", "Western"]}},
        {"tool": "finish", "use": 1}))
    [user] = sample_users(world, 1, seed=22)
    ep = run_episode(world, ToolRec(_openai(server.url)), user, *_cases(world)[user],
                     max_turns=1)
    assert "no item matches" in server.bodies[1]["messages"][-1]["content"]
    assert ep["repairs"] == ep["fallbacks"] == 0 and len(ep["transcript"][0]["items"]) == 10

    bad = scripted(_by_round({"tool": "retrieve_candidates", "args": {"n": 50}},
                             {"tool": "finish", "use": 5}))
    ep = run_episode(world, ToolRec(_openai(bad.url)), user, *_cases(world)[user],
                     max_turns=1)
    errors = [p["error"] for p in ep["transcript"][0]["plans"] if not p["ok"]]
    assert len(errors) == 2 and all("does not match the schema" in e for e in errors)
    # the rounds stop; round 1's candidates (the model's top 50) are presented
    topk = run_episode(world, TopKPolicy(), user, *_cases(world)[user], max_turns=1)
    assert ep["transcript"][0]["items"] == topk["transcript"][0]["items"]
    assert ep["repairs"] == ep["fallbacks"] == 1


def test_ask_only_in_a_first_round(world, scripted):
    server = scripted(_by_round({"tool": "ask", "attribute": "decade"}))
    [user] = sample_users(world, 1, seed=23)
    ep = run_episode(world, ToolRec(_openai(server.url)), user, *_cases(world)[user],
                     max_turns=2)
    assert ep["transcript"][0]["text"] == "From which decade should the movie be?"
    # turn 2 is the last: asking is not in the schema, so 'ask' fails twice -> the tree acts
    assert len(ep["transcript"][2]["items"]) == 10 and ep["fallbacks"] == 1
    last = [p for p in ep["transcript"][2]["plans"]]
    assert len(last) == 2 and all("does not match the schema" in p["error"] for p in last)


def test_malformed_output_falls_back_to_the_tree(world, scripted):
    server = scripted(lambda body: '{"tool": "search_items", "args": {"genres": [')
    users = sample_users(world, 3, seed=24)
    m = evaluate(world, ToolRec(_openai(server.url)), users, max_turns=3, k=10, progress=False)
    tree = evaluate(world, TreePolicy(), users, max_turns=3, k=10, progress=False)
    assert m["hit"] == tree["hit"] and m["average_turns"] == tree["average_turns"]
    assert m["leaks"] == 0
    llm = m["llm_per_dialogue"]
    assert llm["llm_calls"] == 2 * llm["fallbacks"] == 2 * llm["repairs"] > 0
    assert llm["fallbacks"] * 3 == m["turn_seconds"]["turns"]


@pytest.fixture(scope="module")
def smol():
    backend = make_backend("local", threads=1, n_ctx=2048)
    yield backend
    backend.close()


def test_smollm2_writes_valid_rounds_under_the_grammar(world, smol):
    [user] = sample_users(world, 1, seed=25)
    ep = run_episode(world, ToolRec(smol, max_rounds=2), user, *_cases(world)[user],
                     max_turns=1)
    plans = [p for t in ep["transcript"] if t["speaker"] == "agent" for p in t["plans"]]
    assert ep["llm_calls"] == len(plans) >= 2 and ep["leaks"] == 0
    assert not [p for p in plans if "match the schema" in p.get("error", "")]
    assert all(p["role"].startswith("round ") for p in plans)


def test_chat_eval_toolrec_command(chat_run, tmp_path, scripted):
    server = scripted(_by_round({"tool": "retrieve_candidates", "args": {"n": 30}},
                                {"tool": "finish", "use": 1}))
    out = tmp_path / "toolrec"
    db = tmp_path / "memory.sqlite"
    flags = ["-q", "chat-eval", str(chat_run), "--strategy", "toolrec", "--backend", "openai",
             "--base-url", server.url, "--model", "scripted", "--users", "2", "--turns", "2",
             "--memory", str(db)]
    assert main([*flags, "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["strategy"] == "toolrec" and m["settings"]["prompt"] == "toolrec-v1"
    assert m["llm_per_dialogue"]["llm_calls"] * 2 == len(server.bodies) and m["leaks"] == 0
    # --memory: a second session never shows what the first one had rejected
    from llmrec.chat import EntityMemory

    users = [json.loads(x)["user"] for x in (out / "episodes.jsonl").open()]
    with EntityMemory(db) as mem:
        rejected = {u: set(mem.items(u, "dislike")) for u in users}
    assert any(rejected.values())
    assert main([*flags, "--session", "s2", "--out", str(tmp_path / "toolrec-s2")]) == 0
    again = [json.loads(x) for x in (tmp_path / "toolrec-s2" / "transcripts.jsonl").open()]
    assert all(not set(x["items"]) & rejected[x["user"]] for x in again)
