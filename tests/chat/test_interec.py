"""The interec strategy: plan schema, executor, repair + fallback, LLM cost metrics.

LLM backends here are real: the packaged SmolLM2 through llama.cpp (a handful of turns), and a
real OpenAI-compatible HTTP server started in the test (``http.server``) whose answers are
scripted -- bad JSON, or a fixed valid plan -- so the outcome is known exactly.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmrec.chat import (InteRecAgent, PlanError, TopKPolicy, TreePolicy, evaluate,
                         parse_plan, plan_schema, run_episode, sample_users)
from llmrec.cli import main
from llmrec.llm import make_backend


def _openai(url: str):
    return make_backend("openai", base_url=url, model="scripted", max_retries=0)


def test_plan_schema_accepts_valid_plans_and_rejects_invalid_ones(world):
    cat = world.catalog
    schema = plan_schema(cat)
    ok = [
        {"action": {"type": "ask", "attribute": "genre"}, "plan": []},
        {"action": {"type": "recommend"}, "plan": [
            {"tool": "retrieve_candidates", "args": {"n": 200}},
            {"tool": "search_items", "args": {"genres": ["Drama"], "year_min": 1990}}]},
        {"action": {"type": "recommend"}, "plan": []},
        {"action": {"type": "chitchat", "text": "Hello!"}, "plan": []},
    ]
    for plan in ok:
        assert parse_plan(json.dumps(plan), schema) == plan
    bad = {
        "not json": '{"action": {"type": "ask"',
        "unknown tool": {"action": {"type": "recommend"},
                         "plan": [{"tool": "delete_everything", "args": {}}]},
        "unknown genre": {"action": {"type": "recommend"},
                          "plan": [{"tool": "search_items", "args": {"genres": ["Vaporwave"]}}]},
        "extra key": {"action": {"type": "recommend"}, "plan": [], "why": "because"},
        "steps with a question": {"action": {"type": "ask", "attribute": "genre"},
                                  "plan": [{"tool": "retrieve_candidates", "args": {}}]},
        "unknown attribute": {"action": {"type": "ask", "attribute": "mood"}, "plan": []},
        "too many steps": {"action": {"type": "recommend"},
                           "plan": [{"tool": "rank_candidates", "args": {}}] * 4},
        "count out of range": {"action": {"type": "recommend"},
                               "plan": [{"tool": "retrieve_candidates", "args": {"n": 0}}]},
        "free text argument": {"action": {"type": "recommend"}, "plan": [
            {"tool": "search_items", "args": {"title_words": "star wars"}}]},
    }
    for why, plan in bad.items():
        with pytest.raises(PlanError):
            parse_plan(plan if isinstance(plan, str) else json.dumps(plan), schema)
            pytest.fail(f"accepted: {why}")
    # the schema follows the conversation: no asking twice, only recommending at the end
    asked = plan_schema(cat, asked={"genre"})
    with pytest.raises(PlanError, match="match the schema"):
        parse_plan(json.dumps(ok[0]), asked)
    parse_plan(json.dumps({"action": {"type": "ask", "attribute": "decade"}, "plan": []}), asked)
    last = plan_schema(cat, last_turn=True)
    assert parse_plan(json.dumps(ok[1]), last) == ok[1]
    for plan in (ok[0], ok[3]):
        with pytest.raises(PlanError):
            parse_plan(json.dumps(plan), last)


def test_bad_json_from_a_real_http_server_is_repaired_then_falls_back(world, scripted):
    """Every answer is broken JSON: each turn = one call + one repair call, then the tree
    policy's action; the conversations equal the tree policy's, with no leaks."""
    server = scripted(lambda body: '{"action": {"type": "recommend"}, "plan": [')
    users = sample_users(world, 4, seed=5)
    agent = InteRecAgent(_openai(server.url))
    m = evaluate(world, agent, users, max_turns=3, k=10, progress=False)
    tree = evaluate(world, TreePolicy(), users, max_turns=3, k=10, progress=False)
    assert m["hit"] == tree["hit"] and m["average_turns"] == tree["average_turns"]
    assert m["leaks"] == 0
    turns = m["turn_seconds"]["turns"]
    assert turns == tree["turn_seconds"]["turns"] > 0
    llm = m["llm_per_dialogue"]
    assert len(server.bodies) == 2 * turns == llm["llm_calls"] * 4
    assert llm["repairs"] * 4 == turns and llm["fallbacks"] * 4 == turns
    assert llm["prompt_tokens"] * 4 == 100 * 2 * turns
    assert tree["llm_per_dialogue"]["llm_calls"] == 0
    # the request carried the plan schema; the repair request carried the error
    first, repair = server.bodies[0], server.bodies[1]
    assert first["response_format"]["json_schema"]["schema"]["anyOf"][0]["properties"][
        "action"]["properties"]["type"] == {"const": "ask"}
    assert "That plan failed: the output is not valid JSON" in repair["messages"][-1]["content"]


def test_a_valid_plan_runs_on_the_bus(world, scripted):
    """A fixed plan 'retrieve the top 50, recommend' shows the model's top 10 minus rejected
    items each turn: the same conversations as the top-k policy, one LLM call per turn."""
    plan = {"action": {"type": "recommend"},
            "plan": [{"tool": "retrieve_candidates", "args": {"n": 50}}]}
    server = scripted(lambda body: json.dumps(plan))
    users = sample_users(world, 5, seed=6)
    m = evaluate(world, InteRecAgent(_openai(server.url)), users, max_turns=3, k=10,
                 progress=False)
    topk = evaluate(world, TopKPolicy(), users, max_turns=3, k=10, progress=False)
    assert m["hit"] == topk["hit"] and m["leaks"] == 0
    assert m["llm_per_dialogue"]["llm_calls"] * 5 == len(server.bodies) \
        == m["turn_seconds"]["turns"]
    assert m["llm_per_dialogue"]["repairs"] == m["llm_per_dialogue"]["fallbacks"] == 0
    assert m["tool_calls_per_dialogue"]["retrieve_candidates"] * 5 == len(server.bodies)


def test_native_tool_calls_are_a_plan(world, scripted):
    """constrain="tools": the server answers with OpenAI tool calls (a step, then the
    recommend function); executed like the JSON plan above, so the top-k conversations."""
    def call(name: str, args: dict[str, Any]) -> dict[str, Any]:
        return {"id": name, "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)}}

    message = {"role": "assistant", "content": None, "tool_calls": [
        call("retrieve_candidates", {"n": 50}), call("recommend", {})]}
    server = scripted(lambda body: message)
    users = sample_users(world, 4, seed=10)
    m = evaluate(world, InteRecAgent(_openai(server.url), constrain="tools"), users,
                 max_turns=2, k=10, progress=False)
    topk = evaluate(world, TopKPolicy(), users, max_turns=2, k=10, progress=False)
    assert m["hit"] == topk["hit"] and m["llm_per_dialogue"]["fallbacks"] == 0
    body = server.bodies[0]
    names = [t["function"]["name"] for t in body["tools"]]
    assert names[-3:] == ["ask", "recommend", "chitchat"] and "search_items" in names
    assert body["tool_choice"] == "required" and "response_format" not in body
    # a step as the last call is not a plan: repaired, then the tree action
    message["tool_calls"] = [call("recommend", {}), call("rank_candidates", {})]
    [user] = users[:1]
    cases = {u: (h, t) for u, h, t in world.test_users()}
    ep = run_episode(world, InteRecAgent(_openai(server.url), constrain="tools"), user,
                     *cases[user], max_turns=1)
    assert ep["repairs"] == ep["fallbacks"] == 1
    assert "the last call must be ask, recommend or chitchat" in \
        ep["transcript"][0]["plans"][0]["error"]


def test_an_empty_bus_is_a_failed_plan(world, scripted):
    """Searching 'Film-Noir' then 'Children's' within it leaves nothing: repair, fallback."""
    plan = {"action": {"type": "recommend"}, "plan": [
        {"tool": "search_items", "args": {"genres": ["Film-Noir", "Children's", "Western"]}}]}
    server = scripted(lambda body: json.dumps(plan))
    [user] = sample_users(world, 1, seed=7)
    cases = {u: (h, t) for u, h, t in world.test_users()}
    ep = run_episode(world, InteRecAgent(_openai(server.url)), user, *cases[user], max_turns=1)
    assert ep["repairs"] == ep["fallbacks"] == 1 and ep["llm_calls"] == 2
    errors = [p["error"] for p in ep["transcript"][0]["plans"]]
    assert len(errors) == 2 and all("no item matches" in e for e in errors)


@pytest.fixture(scope="module")
def smol():
    backend = make_backend("local", threads=1, n_ctx=1536)
    yield backend
    backend.close()


def test_smollm2_writes_valid_plans_under_the_grammar(world, smol):
    """The real SmolLM2-135M, two turns: every output it finished matches the schema."""
    [user] = sample_users(world, 1, seed=8)
    cases = {u: (h, t) for u, h, t in world.test_users()}
    ep = run_episode(world, InteRecAgent(smol, max_steps=1), user, *cases[user], max_turns=2)
    plans = [p for t in ep["transcript"] if t["speaker"] == "agent" for p in t["plans"]]
    assert ep["llm_calls"] == len(plans) >= 2 and ep["leaks"] == 0
    assert not [p for p in plans if "match the schema" in p.get("error", "")]
    assert ep["prompt_tokens"] > 100 * ep["llm_calls"] and ep["completion_tokens"] > 0


def test_smollm2_cut_short_is_repaired_then_falls_back(world, smol):
    """max_tokens 8 cannot hold a plan: the turn repairs once, then takes the tree action."""
    [user] = sample_users(world, 1, seed=9)
    cases = {u: (h, t) for u, h, t in world.test_users()}
    agent = InteRecAgent(smol, max_tokens=8)
    ep = run_episode(world, agent, user, *cases[user], max_turns=1)
    tree = run_episode(world, TreePolicy(), user, *cases[user], max_turns=1)
    turns = len(ep["turn_seconds"])
    assert ep["llm_calls"] == 2 * turns and ep["repairs"] == ep["fallbacks"] == turns
    assert ep["completion_tokens"] <= 8 * ep["llm_calls"]
    said = [t["text"] for t in ep["transcript"]]
    assert said == [t["text"] for t in tree["transcript"]] and ep["leaks"] == 0


def test_chat_eval_interec_command(chat_run, tmp_path, scripted, capsys):
    plan = {"action": {"type": "recommend"}, "plan": []}
    server = scripted(lambda body: json.dumps(plan))
    out = tmp_path / "interec"
    assert main(["-q", "chat-eval", str(chat_run), "--strategy", "interec", "--backend",
                 "openai", "--base-url", server.url, "--model", "scripted", "--users", "3",
                 "--turns", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    assert m["strategy"] == "interec" and m["settings"]["llm"]["model"] == "scripted"
    assert m["llm_per_dialogue"]["llm_calls"] * 3 == len(server.bodies)
    assert "LLM per dialogue : " in printed and "turn latency     : median" in printed
    lines = [json.loads(x) for x in (out / "transcripts.jsonl").read_text().splitlines()]
    agent = [x for x in lines if x["speaker"] == "agent"]
    assert agent and all(x["plans"] and x["llm_calls"] == 1 for x in agent)


def test_chat_eval_llm_flags_need_interec(chat_run, tmp_path, capsys):
    assert main(["-q", "chat-eval", str(chat_run), "--strategy", "tree", "--backend", "openai",
                 "--users", "2", "--out", str(tmp_path / "x")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "go with --strategy interec" in err[0]



def test_llmrec_chat_with_interec_hears_the_typed_wishes(chat_run, world, scripted, capsys,
                                                         monkeypatch):
    """``llmrec chat --strategy interec``: the person's free text reaches the LLM's prompt as
    stated values, and the plan the LLM writes from it runs on the bus."""
    import io
    import re

    def reply(body):
        prompt = body["messages"][-1]["content"]
        hint = re.search(r"A search step for what the user said: (\{.*\})", prompt)
        if hint is None:
            return json.dumps({"action": {"type": "ask", "attribute": "genre"}, "plan": []})
        return json.dumps({"action": {"type": "recommend"}, "plan": [
            {"tool": "retrieve_candidates", "args": {"n": 500}}, json.loads(hint.group(1))]})

    server = scripted(reply)
    monkeypatch.setattr("sys.stdin", io.StringIO("I want a comedy\nfrom the 90s\n"))
    assert main(["-q", "chat", str(chat_run), "--user", "196", "--strategy", "interec",
                 "--backend", "openai", "--base-url", server.url, "--model", "scripted"]) == 0
    out = capsys.readouterr().out
    assert "Which genres are you in the mood for?" in out.splitlines()[0]   # the LLM asked
    assert len(server.bodies) == 3            # one plan per agent turn, none repaired
    assert "The user said: genre: Comedy; decade: 1990s." in \
        server.bodies[-1]["messages"][-1]["content"]
    rows = [ln.split("  ") for ln in out.splitlines() if re.match(r"^\s+\d+\s{2}\S", ln)]
    last = rows[-5:]
    assert len(rows) == 10                    # two recommendations, five items each
    cat = world.catalog
    for cells in last:
        item = [c for c in cells if c.strip()][1].strip()
        i = cat.index(item)
        assert "Comedy" in cat.values("genre", i) and 1990 <= cat.years[i] <= 1999, item
