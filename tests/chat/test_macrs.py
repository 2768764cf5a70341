"""MACRS: responders + a planner constrained to the candidates, reflection after a rejection,
repair + fallback on malformed output, no leaks.

The LLM is real: a real OpenAI-compatible HTTP server (conftest's ``scripted``) whose answers
follow the agent named in the prompt, so outcomes are known exactly, and the packaged
SmolLM2-135M through llama.cpp for a couple of turns under the grammar.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from llmrec.chat import MACRS, TreePolicy, evaluate, run_episode, sample_users
from llmrec.cli import main
from llmrec.llm import make_backend


def _openai(url: str):
    return make_backend("openai", base_url=url, model="scripted", max_retries=0)


def _role(body: dict[str, Any]) -> str:
    text = body["messages"][1]["content"]
    for role in ("asking", "recommending", "chit-chat", "planner"):
        if f"You are the {role}" in text:
            return role
    return "information" if "Update what the user likes" in text else "strategy"


def _cases(world):
    return {u: (h, t) for u, h, t in world.test_users()}


def _script(**answers: Any):
    """A reply function: ``answers[role]`` (a value or a function of the request body)."""
    base = {"asking": {"attribute": "genre"},
            "recommending": {"plan": [{"tool": "retrieve_candidates", "args": {"n": 50}}]},
            "chit-chat": {"text": "Tell me about a film you loved."},
            "planner": {"choice": 1},
            "information": {"likes": ["Comedy"], "dislikes": ["Horror"]},
            "strategy": {"instruction": "Ask about the genre before recommending again."}}
    base.update({k.replace("_", "-"): v for k, v in answers.items()})

    def reply(body: dict[str, Any]) -> str:
        said = base[_role(body)]
        said = said(body) if callable(said) else said
        return said if isinstance(said, str) else json.dumps(said)
    return reply


def _rejected_users(world, n: int, seed: int, turns: int = 1) -> list[str]:
    """Users whose target is not in the retrieval model's top 10 of the first ``turns``
    turns (those turns of a recommend-only strategy are rejected)."""
    from llmrec.chat import TopKPolicy

    users = sample_users(world, 40, seed=seed)
    m = [run_episode(world, TopKPolicy(), u, *_cases(world)[u], max_turns=turns)
         for u in users]
    return [e["user"] for e in m if not e["hit"]][:n]


def test_the_planner_is_constrained_to_the_candidates(world, scripted):
    """Three responders -> the planner's schema is the enum [0, 1, 2]; choice 1 (the
    recommending agent) is taken; an index out of range is repaired, then the tree acts."""
    server = scripted(_script())
    [user] = _rejected_users(world, 1, seed=11)
    ep = run_episode(world, MACRS(_openai(server.url)), user, *_cases(world)[user], max_turns=2)
    planner = [b for b in server.bodies if _role(b) == "planner"]
    assert len(planner) == 1
    schema = planner[0]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["choice"] == {"enum": [0, 1, 2]}
    listed = planner[0]["messages"][1]["content"]
    assert "0: the asking agent would ask about the genre" in listed
    assert re.search(r"1: the recommending agent would recommend .* \(\d+ candidates", listed)
    assert "2: the chit-chat agent would say 'Tell me about a film you loved.'" in listed
    agent = ep["transcript"][0]
    assert agent["text"].startswith("How about these?") and len(agent["items"]) == 10
    # turn 1: 3 responders + the planner; turn 2 (the last): 2 reflections + recommending
    assert ep["repairs"] == ep["fallbacks"] == 0 and ep["llm_calls"] == 4 + 3
    assert [_role(b) for b in server.bodies] == ["asking", "recommending", "chit-chat",
                                                 "planner", "information", "strategy",
                                                 "recommending"]

    bad = scripted(_script(planner={"choice": 7}))
    ep = run_episode(world, MACRS(_openai(bad.url)), user, *_cases(world)[user], max_turns=2)
    tree = run_episode(world, TreePolicy(), user, *_cases(world)[user], max_turns=2)
    errors = [p["error"] for t in ep["transcript"] if t["speaker"] == "agent"
              for p in t["plans"] if p["role"] == "planner"]
    assert errors and all("does not match the schema at choice" in e for e in errors)
    # turn 1's planner fell back to the tree's action; turn 2, the last, has no planner
    assert ep["transcript"][0]["text"] == tree["transcript"][0]["text"]
    assert len(errors) == 2 and ep["fallbacks"] == 1 and ep["leaks"] == 0


def test_reflection_after_a_rejection_changes_the_strategy_notes(world, scripted):
    """The planner always recommends the model's top 10, so turns are rejected: from turn 2
    the planner sees the reflected preferences and the strategy notes, the latest two only."""
    def note(body: dict[str, Any]) -> dict[str, str]:
        turn = re.search(r"recommendation at turn (\d+)", body["messages"][1]["content"])[1]
        return {"instruction": f"Lesson from turn {turn}: ask first."}

    server = scripted(_script(strategy=note))
    [user] = _rejected_users(world, 1, seed=12, turns=4)
    ep = run_episode(world, MACRS(_openai(server.url)), user, *_cases(world)[user], max_turns=5)
    assert ep["leaks"] == 0 and ep["hit_turn"] != 4
    planner = [b["messages"][1]["content"] for b in server.bodies if _role(b) == "planner"]
    first = planner[0]
    assert "Notes from earlier rejections" not in first and "Reflected preferences" not in first
    reflected = [b for b in server.bodies if _role(b) in ("information", "strategy")]
    assert reflected, "no reflection after a rejected recommendation"
    later = planner[1]
    assert "Notes from earlier rejections: Lesson from turn 1: ask first." in later
    assert "Reflected preferences: likes Comedy; dislikes Horror." in later
    # bounded: after three rejections the planner sees the notes of turns 3 and 2, not 1
    fourth = planner[3]
    assert "Lesson from turn 3: ask first. Lesson from turn 2: ask first." in fourth
    assert "turn 1" not in fourth.split("Notes from earlier rejections:")[1]
    # the model's note is held to its length bound by the schema
    schema = [b for b in server.bodies if _role(b) == "strategy"][0]["response_format"]
    assert schema["json_schema"]["schema"]["properties"]["instruction"]["maxLength"] == 120


def test_a_failed_reflection_writes_a_rule_note(world, scripted):
    server = scripted(_script(strategy="{not json", information='{"likes": ["Vaporwave"]}'))
    [user] = _rejected_users(world, 1, seed=13)
    run_episode(world, MACRS(_openai(server.url)), user, *_cases(world)[user], max_turns=3)
    planner = [b["messages"][1]["content"] for b in server.bodies if _role(b) == "planner"]
    assert re.search(r"Notes from earlier rejections: Turn 1 was rejected: the user said the "
                     r"\w+ is .+; ask about an attribute", planner[1])
    assert "Reflected preferences" not in planner[1]        # the bad update changed nothing


def test_malformed_output_everywhere_falls_back_to_the_tree(world, scripted):
    """Every answer is broken JSON: each agent repairs once and falls back; the planner's
    fallback is the tree's action, so the conversations equal the tree policy's."""
    server = scripted(lambda body: '{"choice": ')
    users = sample_users(world, 2, seed=14)
    m = evaluate(world, MACRS(_openai(server.url)), users, max_turns=3, k=10, progress=False)
    tree = evaluate(world, TreePolicy(), users, max_turns=3, k=10, progress=False)
    assert m["hit"] == tree["hit"] and m["average_turns"] == tree["average_turns"]
    assert m["leaks"] == 0
    llm = m["llm_per_dialogue"]
    assert llm["llm_calls"] == 2 * llm["fallbacks"] == 2 * llm["repairs"] > 0
    assert len(server.bodies) == 2 * llm["llm_calls"]


@pytest.fixture(scope="module")
def smol():
    backend = make_backend("local", threads=1, n_ctx=2048)
    yield backend
    backend.close()


def test_smollm2_planner_picks_a_valid_candidate(world, smol):
    """The real SmolLM2-135M under the grammar: the planner's output is an index of the
    turn's candidates (one call, on a conversation state after an answered question)."""
    from llmrec.chat import (Ask, CandidateBus, ChatContext, ChatState, ChitChat, Recommend,
                             UserReply)

    [user] = sample_users(world, 1, seed=15)
    history, _ = _cases(world)[user]
    cat = world.catalog
    ctx = ChatContext(cat, world.retriever, CandidateBus.all_items(cat.n_items), history)
    state = ChatState(ctx, k=10, max_turns=5)
    agent = MACRS(smol)
    agent.memory(state)["actions"].append(Ask("genre"))
    state.observe(Ask("genre"), UserReply("answer", "genre", ("Comedy",)))
    rec = Recommend(tuple(cat.ids(range(10))))
    options = [("asking", Ask("decade"), "ask about the decade"),
               ("recommending", rec, "recommend 10 comedies (120 candidates matched)"),
               ("chit-chat", ChitChat("Any actor you like?"), "say 'Any actor you like?'")]
    picked = agent.plan(state, options)
    planner = [p for p in state.plans if p["role"] == "planner"]
    assert planner[0]["ok"] and planner[0]["plan"]["choice"] in (0, 1, 2)
    assert picked is options[planner[0]["plan"]["choice"]][1]
    assert state.fallbacks == 0 and state.llm_calls[-1]["completion_tokens"] > 0


def test_chat_eval_macrs_command(chat_run, tmp_path, scripted, capsys):
    server = scripted(_script())
    out = tmp_path / "macrs"
    assert main(["-q", "chat-eval", str(chat_run), "--strategy", "macrs", "--backend", "openai",
                 "--base-url", server.url, "--model", "scripted", "--users", "2", "--turns",
                 "2", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["strategy"] == "macrs" and m["settings"]["prompt"] == "macrs-v1"
    assert m["llm_per_dialogue"]["llm_calls"] * 2 == len(server.bodies) and m["leaks"] == 0
    assert "LLM per dialogue : " in capsys.readouterr().out
    assert main(["-q", "chat-eval", str(chat_run), "--strategy", "macrs", "--constrain",
                 "tools", "--users", "2", "--out", str(tmp_path / "x")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--constrain tools goes with --strategy interec" in err[0]
