"""The small interface every LLM backend speaks: requests in, results (or failures) out.

A :class:`Request` is chat messages plus decoding parameters. ``backend.generate(requests)``
returns one :class:`Result` per request, in order: a :class:`Completion` or a :class:`Failure`.
A batch never raises for one bad item — the failure is returned in its place so the caller can
store it and retry later. Problems with the environment (server unreachable, key rejected, model
not served, package missing) are raised once as :class:`LLMError` before a batch is spent.

``backend.identity()`` names what determined the text (backend, model, server or model-file
hash) and goes into the cache key together with ``request.cache_key()``.
"""

from __future__ import annotations

import abc
import json
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

from .._io import canonical_json
from ..errors import ConfigError, LlmrecError

log = logging.getLogger("llmrec.llm")

FailureKind = Literal[
    "timeout",            # no answer within the per-request timeout (after retries)
    "server_error",       # HTTP 5xx / the engine reported an internal error (after retries)
    "rate_limited",       # HTTP 429 (after retries)
    "connection",         # connection refused/reset mid-batch (after retries)
    "bad_response",       # not JSON, or no choices/message (after retries)
    "context_overflow",   # prompt + max_tokens do not fit the model's context; never retried
    "bad_request",        # the server refused this request (HTTP 400/422); never retried
    "aborted",            # not attempted: the batch stopped on an environment error
]
FAILURE_KINDS: tuple[str, ...] = get_args(FailureKind)
ROLES = frozenset({"system", "user", "assistant"})


class LLMError(LlmrecError):
    """The LLM environment is unusable (unreachable server, rejected key, missing model)."""


@dataclass(frozen=True)
class Request:
    """One chat completion to make.

    ``json_schema`` asks for output matching a JSON schema (OpenAI ``response_format``; served
    by llama.cpp, vLLM, SGLang, Ollama, OpenAI). ``extra`` is merged into the request body for
    server-specific fields, e.g. ``{"grammar": 'root ::= "yes" | "no"'}`` for llama.cpp.
    """

    messages: tuple[Mapping[str, str], ...]
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    json_schema: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        msgs = tuple(dict(m) for m in self.messages)
        if not msgs:
            raise ConfigError("a request needs at least one message")
        for m in msgs:
            if set(m) != {"role", "content"} or m["role"] not in ROLES \
                    or not isinstance(m["content"], str):
                raise ConfigError(f"bad chat message {m!r}: need {{'role': one of "
                                  f"{sorted(ROLES)}, 'content': str}}")
        object.__setattr__(self, "messages", msgs)
        object.__setattr__(self, "stop", (self.stop,) if isinstance(self.stop, str)
                           else tuple(self.stop))
        if self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigError(f"temperature must be in [0, 2], got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")

    @classmethod
    def chat(cls, prompt: str, system: str | None = None, **decoding: Any) -> Request:
        """A request from one user prompt and an optional system prompt."""
        msgs = ([{"role": "system", "content": system}] if system else [])
        return cls(tuple(msgs + [{"role": "user", "content": prompt}]), **decoding)

    def body(self, model: str | None = None) -> dict[str, Any]:
        """The OpenAI chat-completions request body (``model`` left out when None)."""
        out: dict[str, Any] = {"messages": [dict(m) for m in self.messages],
                               "max_tokens": self.max_tokens, "temperature": self.temperature,
                               "top_p": self.top_p}
        if model is not None:
            out["model"] = model
        if self.stop:
            out["stop"] = list(self.stop)
        if self.seed is not None:
            out["seed"] = self.seed
        if self.json_schema is not None:
            out["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "output", "schema": dict(self.json_schema), "strict": True}}
        out.update(self.extra)
        return out

    def cache_key(self) -> dict[str, Any]:
        """Everything in the request that determines the output (for content hashes)."""
        return self.body()

    def __hash__(self) -> int:
        return hash(canonical_json(self.cache_key()))


@dataclass(frozen=True)
class Completion:
    """A generated answer. ``seconds`` is wall time for this request, retries included."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    seconds: float
    attempts: int = 1
    # native tool calls of the answer (OpenAI ``message.tool_calls``): ({"name", "arguments"},
    # ...) with ``arguments`` the JSON text the server sent; empty when there were none
    tool_calls: tuple[dict[str, str], ...] = ()
    ok: ClassVar[bool] = True


@dataclass(frozen=True)
class Failure:
    """A request that produced no answer; store it and retry it later."""

    kind: FailureKind
    message: str
    seconds: float = 0.0
    attempts: int = 1
    ok: ClassVar[bool] = False


Result = Completion | Failure


class Backend(abc.ABC):
    """An LLM that turns :class:`Request` batches into :class:`Result` lists."""

    name: ClassVar[str]

    @abc.abstractmethod
    def generate(self, requests: Sequence[Request], progress: bool = True) -> list[Result]:
        """One result per request, in order; never raises for a single bad item."""

    @abc.abstractmethod
    def identity(self) -> dict[str, Any]:
        """What determined the outputs (backend, model, server or model-file hash)."""

    def close(self) -> None:
        """Release the backend's resources (connections, a loaded model)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Progress:
    """A tqdm bar over a batch (requests/s and ETA) with generated tokens/s and failures.

    Also logs one structured summary line when the batch ends.
    """

    def __init__(self, total: int, desc: str, enabled: bool = True) -> None:
        from tqdm import tqdm

        self.total, self.desc = total, desc
        self.start = time.perf_counter()
        self.tokens = 0
        self.failures: Counter[str] = Counter()
        self.bar = tqdm(total=total, desc=desc, unit="req", disable=not enabled or total == 0,
                        dynamic_ncols=True)

    def update(self, result: Result) -> None:
        if isinstance(result, Completion):
            self.tokens += result.completion_tokens
        else:
            self.failures[result.kind] += 1
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        post = {"tok/s": f"{self.tokens / elapsed:.1f}"}
        if self.failures:
            post["failed"] = str(sum(self.failures.values()))
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
        elapsed = time.perf_counter() - self.start
        log.info("%s: %d requests, %d failed %s, %d completion tokens in %.1fs (%.1f tok/s)",
                 self.desc, self.total, sum(self.failures.values()), dict(self.failures),
                 self.tokens, elapsed, self.tokens / max(elapsed, 1e-9),
                 extra={"llm_requests": self.total, "llm_failures": dict(self.failures),
                        "llm_completion_tokens": self.tokens, "llm_seconds": elapsed})


def parse_completion(data: Any, seconds: float, attempts: int) -> Completion | None:
    """A :class:`Completion` from an OpenAI chat-completions response body, or None if the
    body is not one (no ``choices[0].message``)."""
    try:
        choice = data["choices"][0]
        message = choice["message"]
        text = message.get("content") or ""
        if not isinstance(text, str):
            return None
        usage = data.get("usage") or {}
        calls = tuple({"name": str(c["function"]["name"]),
                       "arguments": c["function"].get("arguments") or "{}"}
                      for c in message.get("tool_calls") or ())
        for c in calls:
            if not isinstance(c["arguments"], str):
                c["arguments"] = json.dumps(c["arguments"])
        return Completion(text=text, prompt_tokens=int(usage.get("prompt_tokens") or 0),
                          completion_tokens=int(usage.get("completion_tokens") or 0),
                          finish_reason=str(choice.get("finish_reason") or "unknown"),
                          seconds=seconds, attempts=attempts, tool_calls=calls)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        return None


_OVERFLOW_MARKERS = ("exceed_context_size", "context_length_exceeded", "maximum context length",
                     "context size", "context window", "too many tokens", "prompt is too long")


def is_context_overflow(error: Any) -> bool:
    """Whether an error body (dict or text) says the prompt does not fit the context."""
    text = str(error).lower()
    return any(marker in text for marker in _OVERFLOW_MARKERS)


def error_message(data: Any, fallback: str) -> str:
    """The human part of an OpenAI-style error body ``{"error": {"message": ...}}``."""
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
    return fallback
