"""The openai backend against servers that fail: closed ports and a misbehaving HTTP stub."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from llmrec.llm import Completion, Failure, LLMError, OpenAIBackend, Request

FAST = dict(model="stub-model", backoff=0.01, max_backoff=0.05, timeout=5.0)


def backend(stub: Any, **kw: Any) -> OpenAIBackend:
    return OpenAIBackend(base_url=stub.url, **{**FAST, **kw})


def ask(*prompts: str) -> list[Request]:
    return [Request.chat(p, max_tokens=4) for p in prompts]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_down_raises_one_clear_line_fast() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    start = time.monotonic()
    with pytest.raises(LLMError) as err:
        OpenAIBackend(base_url=url, model="m").generate(ask("ok", "ok"))
    assert str(err.value) == f"cannot reach {url}: connection refused"
    assert time.monotonic() - start < 2.0


def test_preflight_waits_for_a_loading_server(make_stub: Any) -> None:
    [res] = backend(make_stub(loading=2), max_retries=3).generate(ask("ok"), progress=False)
    assert isinstance(res, Completion)
    with pytest.raises(LLMError, match=r"/v1/models answered HTTP 503: Loading model$"):
        backend(make_stub(loading=9), max_retries=1).generate(ask("ok"))


def test_500_twice_then_success_after_retries(stub: Any) -> None:
    [res] = backend(stub, max_retries=3).generate(ask("500x2"), progress=False)
    assert isinstance(res, Completion) and res.text == "echo: 500x2"
    assert res.attempts == 3 and stub.seen["500x2"] == 3


def test_bad_items_fail_in_place_and_the_rest_succeed(stub: Any) -> None:
    prompts = ("ok", "500", "garbage", "overflow", "nochoices", "badreq", "500x1")
    results = backend(stub, max_retries=2, concurrency=3).generate(ask(*prompts), progress=False)
    kinds = [r.kind if isinstance(r, Failure) else "ok" for r in results]
    assert kinds == ["ok", "server_error", "bad_response", "context_overflow", "bad_response",
                     "bad_request", "ok"]
    assert results[0].text == "echo: ok" and results[6].text == "echo: 500x1"
    assert stub.seen["500"] == stub.seen["garbage"] == stub.seen["nochoices"] == 3  # retried
    assert stub.seen["overflow"] == stub.seen["badreq"] == 1  # never retried
    assert "maximum context length is 512" in results[3].message
    assert results[1].attempts == 3 and "HTTP 500" in results[1].message


def test_slow_server_times_out_after_retries(stub: Any) -> None:
    start = time.monotonic()
    [slow, fine] = backend(stub, timeout=0.3, max_retries=1).generate(ask("slow", "ok"),
                                                                     progress=False)
    assert isinstance(slow, Failure) and slow.kind == "timeout" and slow.attempts == 2
    assert stub.seen["slow"] == 2 and isinstance(fine, Completion)
    assert time.monotonic() - start < 3.0


def test_timeout_then_success(stub: Any) -> None:
    [res] = backend(stub, timeout=0.5, max_retries=2).generate(ask("slowx1"), progress=False)
    assert isinstance(res, Completion) and res.attempts == 2


def test_429_retry_after_is_honoured(stub: Any) -> None:
    [res] = backend(stub, max_retries=2).generate(ask("429x1"), progress=False)
    assert isinstance(res, Completion) and res.attempts == 2
    (t0, _), (t1, _) = stub.hits
    assert t1 - t0 >= 0.95  # Retry-After: 1, although backoff alone would wait ~0.01 s


def test_429_forever_becomes_rate_limited(stub: Any) -> None:
    [res] = backend(stub, max_retries=1, max_retry_after=0.05).generate(ask("429x9"),
                                                                       progress=False)
    assert isinstance(res, Failure) and res.kind == "rate_limited"


def test_wrong_model_name_names_the_served_models(make_stub: Any) -> None:
    stub = make_stub(models=("llama-3-8b", "qwen2.5-7b"))
    with pytest.raises(LLMError, match=r"model 'gpt-4' is not served by .*; it serves: "
                                       r"llama-3-8b, qwen2.5-7b"):
        backend(stub, model="gpt-4").generate(ask("ok"))
    assert stub.hits == []  # no completion was attempted


def test_rejected_key_names_the_variable(make_stub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    stub = make_stub(models=("stub-model",), key="right")
    monkeypatch.setenv("LLMREC_STUB_KEY", "wrong")
    with pytest.raises(LLMError, match=r"API key in \$LLMREC_STUB_KEY was rejected .*401"):
        backend(stub, api_key_env="LLMREC_STUB_KEY").generate(ask("ok"))
    monkeypatch.setenv("LLMREC_STUB_KEY", "right")
    [res] = backend(stub, api_key_env="LLMREC_STUB_KEY").generate(ask("ok"), progress=False)
    assert isinstance(res, Completion)


def test_key_revoked_mid_batch_stops_the_batch(stub: Any) -> None:
    prompts = ["unauth"] + [f"ok{i}" for i in range(20)]
    with pytest.raises(LLMError, match="requires an API key"):
        backend(stub, concurrency=2).generate(ask(*prompts), progress=False)
    assert len(stub.hits) <= 3  # the in-flight requests at most, not the whole batch


def test_server_gone_mid_batch_aborts_the_rest(stub: Any) -> None:
    b = backend(stub, concurrency=1, max_retries=1)
    b.check()
    stub.stop()
    results = b.generate(ask("ok", "ok2", "ok3"), progress=False)
    assert [r.kind for r in results if isinstance(r, Failure)] == [
        "connection", "aborted", "aborted"]


def test_sync_generate_works_inside_a_running_event_loop(stub: Any) -> None:
    async def notebook_cell() -> list:
        return backend(stub).generate(ask("ok", "500x1"), progress=False)

    assert [r.text for r in asyncio.run(notebook_cell())] == ["echo: ok", "echo: 500x1"]
