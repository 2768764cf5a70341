"""The request/result types, the registry and the retry arithmetic (no server needed)."""

from __future__ import annotations

import email.utils
import random
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmrec.errors import ConfigError, LlmrecError
from llmrec.llm import BACKENDS, LLMError, LocalBackend, OpenAIBackend, Request, make_backend
from llmrec.llm._base import is_context_overflow, parse_completion
from llmrec.llm.openai_compat import backoff_delay, retry_after_seconds


def test_request_body_carries_every_decoding_parameter() -> None:
    schema = {"type": "object", "properties": {"liked": {"type": "boolean"}}}
    req = Request.chat("Describe Heat (1995).", system="Be brief.", max_tokens=32,
                       temperature=0.7, top_p=0.9, stop="\n", seed=7, json_schema=schema,
                       extra={"grammar": "root ::= \"x\""})
    body = req.body("m")
    assert body["model"] == "m"
    assert body["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "Describe Heat (1995)."}]
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["seed"]) == (
        32, 0.7, 0.9, 7)
    assert body["stop"] == ["\n"]
    assert body["response_format"]["json_schema"]["schema"] == schema
    assert body["grammar"] == "root ::= \"x\""
    assert "model" not in req.cache_key()  # the model is in backend.identity()


def test_requests_with_equal_content_have_equal_cache_keys() -> None:
    a = Request([{"role": "user", "content": "hi"}], stop=["a"])
    b = Request.chat("hi", stop=("a",))
    assert a == b and a.cache_key() == b.cache_key() and len({a, b}) == 1
    assert a.cache_key() != Request.chat("hi", stop=("a",), seed=1).cache_key()


@pytest.mark.parametrize("bad", [
    dict(messages=()),
    dict(messages=({"role": "robot", "content": "x"},)),
    dict(messages=({"role": "user"},)),
    dict(messages=({"role": "user", "content": "x"},), max_tokens=0),
    dict(messages=({"role": "user", "content": "x"},), temperature=-1.0),
    dict(messages=({"role": "user", "content": "x"},), top_p=0.0),
])
def test_invalid_requests_raise_config_error(bad: dict) -> None:
    with pytest.raises(ConfigError):
        Request(**bad)


def test_registry_and_unknown_names() -> None:
    assert BACKENDS == {"openai": OpenAIBackend, "local": LocalBackend}
    with pytest.raises(ConfigError, match="unknown LLM backend 'gpt'.*local, openai"):
        make_backend("gpt")
    with pytest.raises(ConfigError, match="temprature"):
        make_backend("openai", base_url="http://x/v1", model="m", temprature=0.1)
    with pytest.raises(ConfigError, match="base_url"):
        make_backend("openai", base_url="localhost:8000", model="m")
    assert issubclass(LLMError, LlmrecError)


def test_missing_key_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMREC_NO_SUCH_KEY", raising=False)
    with pytest.raises(LLMError, match=r"\$LLMREC_NO_SUCH_KEY"):
        make_backend("openai", base_url="http://x/v1", model="m", api_key_env="LLMREC_NO_SUCH_KEY")


def test_identity_names_server_and_model_but_never_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_K", "sk-secret")
    b = make_backend("openai", base_url="http://h:1/v1/", model="m", api_key_env="LLMREC_K",
                     concurrency=3)
    c = make_backend("openai", base_url="http://h:1/v1", model="m", concurrency=9)
    assert b.identity() == c.identity() == {"backend": "openai", "model": "m",
                                            "base_url": "http://h:1/v1"}
    assert "sk-secret" not in repr(b) + str(b.identity())


def test_retry_after_forms() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= retry_after_seconds(date, now=now) <= 31  # type: ignore[operator]
    assert retry_after_seconds(email.utils.formatdate(now - 30, usegmt=True)) == 0.0


@given(attempt=st.integers(0, 40), base=st.floats(0.0, 5.0), cap=st.floats(0.0, 60.0),
       seed=st.integers(0, 2**32))
def test_backoff_is_bounded_and_exponential(attempt: int, base: float, cap: float,
                                           seed: int) -> None:
    d = min(cap, base * 2 ** attempt)
    delay = backoff_delay(attempt, base, cap, random.Random(seed))
    assert d / 2 - 1e-9 <= delay <= d + 1e-9


@pytest.mark.parametrize("body", [
    {"error": {"message": "request (2031 tokens) exceeds the available context size (512 "
                          "tokens), try increasing it", "type": "exceed_context_size_error"}},
    {"error": {"message": "This model's maximum context length is 4096 tokens. However, you "
                          "requested 5000 tokens", "code": "context_length_exceeded"}},
    "prompt is too long: 300000 tokens > 200000 maximum",
])
def test_context_overflow_messages_of_known_servers(body: object) -> None:
    assert is_context_overflow(body)
    assert not is_context_overflow({"error": {"message": "temperature must be <= 2"}})


def test_parse_completion_rejects_bodies_without_a_message() -> None:
    ok = {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 4, "completion_tokens": 1}}
    c = parse_completion(ok, 0.5, 2)
    assert c is not None and (c.text, c.prompt_tokens, c.completion_tokens, c.attempts) == (
        "hi", 4, 1, 2)
    for bad in (None, "x", {}, {"choices": []}, {"choices": [{"text": "hi"}]},
                {"choices": [{"message": {"content": 3}}]}):
        assert parse_completion(bad, 0.0, 1) is None
