"""Backend for any OpenAI-compatible chat-completions server.

vLLM, SGLang, Ollama, the llama.cpp server and hosted APIs all speak ``POST {base_url}/chat/
completions``. The API key is read from an environment variable whose *name* is configured
(``api_key_env="OPENAI_API_KEY"``), so configs and cache keys never hold the key itself.

Behaviour, in the order a batch meets it:

1. Once per backend, ``GET {base_url}/models``: an unreachable server, a rejected key or a model
   the server does not serve raise :class:`LLMError` with one line before any request is sent.
2. Requests run concurrently (at most ``concurrency`` in flight, async httpx under a sync API),
   each with its own total ``timeout``.
3. 408/409/429/5xx, timeouts, connection resets and garbage bodies are retried with exponential
   backoff and jitter (``Retry-After`` honoured, up to ``max_retry_after`` seconds); when
   retries run out the item becomes a :class:`Failure`. Context overflow and other 4xx are
   per-item failures, never retried.
4. A 401/403/404 mid-batch stops the batch (items not yet sent become ``aborted``) and raises
   :class:`LLMError`; a server that stays unreachable mid-batch marks the rest ``aborted``.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ConfigError
from ._base import (Backend, Failure, FailureKind, LLMError, Progress, Request, Result,
                    error_message, is_context_overflow, parse_completion)

log = logging.getLogger("llmrec.llm.openai")

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})


@dataclass(frozen=True)
class OpenAIConfig:
    """Where the server is and how hard to push it.

    ``base_url`` includes the API prefix, e.g. ``http://localhost:8000/v1``. ``timeout`` is
    the total seconds one attempt may take; ``max_retries`` counts retries after the first try.
    """

    base_url: str
    model: str
    api_key_env: str | None = None
    concurrency: int = 8
    timeout: float = 120.0
    max_retries: int = 4
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 120.0
    check_model: bool = True

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must start with http:// or https://, "
                              f"got {self.base_url!r}")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if not self.model:
            raise ConfigError("model must name the served model")
        if self.concurrency < 1 or self.max_retries < 0 or self.timeout <= 0 or self.backoff < 0:
            raise ConfigError(f"need concurrency >= 1, max_retries >= 0, timeout > 0, backoff >= 0;"
                              f" got {self.concurrency}, {self.max_retries}, {self.timeout}, "
                              f"{self.backoff}")


class _Fatal(Exception):
    """An environment error seen mid-batch: stop and raise it as LLMError."""


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with equal jitter: in [d/2, d] for d = min(cap, base * 2**attempt)."""
    d = min(cap, base * (2 ** attempt))
    return d / 2 + rng.uniform(0, d / 2)


def _describe_connect_error(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    low = text.lower()
    if "refused" in low:
        return "connection refused"
    if "name or service not known" in low or "nodename nor servname" in low \
            or "name resolution" in low:
        return "host name not found"
    return text


class OpenAIBackend(Backend):
    """Chat completions from an OpenAI-compatible HTTP server."""

    name = "openai"

    def __init__(self, **config: Any) -> None:
        try:
            self.config = OpenAIConfig(**config)
        except TypeError as e:
            raise ConfigError(f"openai backend: {e}") from None
        self._checked = False
        self._rng = random.Random()
        env = self.config.api_key_env
        self._key: str | None = None
        if env:
            self._key = os.environ.get(env)
            if not self._key:
                raise LLMError(f"environment variable ${env} (api_key_env) is not set")

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.config.model,
                "base_url": self.config.base_url}

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key}"} if self._key else {}

    def _auth_error(self, status: int, detail: str) -> str:
        url = self.config.base_url
        if self._key:
            return f"API key in ${self.config.api_key_env} was rejected by {url} (HTTP {status})"
        return (f"{url} requires an API key (HTTP {status}: {detail}); set api_key_env to the "
                "name of the environment variable that holds it")

    # -- preflight --------------------------------------------------------------------------
    def check(self) -> list[str]:
        """Check once that the server answers, accepts the key and serves the model.

        Returns the served model ids (empty if the server has no ``/models`` endpoint).
        """
        import httpx

        cfg, url = self.config, f"{self.config.base_url}/models"
        wait = min(cfg.timeout, 30.0)
        for attempt in range(cfg.max_retries + 1):
            if attempt:  # 429/5xx/timeout: the server may still be loading its model
                time.sleep(backoff_delay(attempt - 1, cfg.backoff, cfg.max_backoff, self._rng))
            try:
                resp = httpx.get(url, headers=self._headers(), timeout=wait)
            except httpx.TimeoutException:
                problem = f"cannot reach {cfg.base_url}: no answer in {wait:g}s"
                continue
            except httpx.TransportError as e:  # refused, unknown host: no point retrying
                raise LLMError(f"cannot reach {cfg.base_url}: {_describe_connect_error(e)}") \
                    from None
            detail = error_message(_json_or_none(resp), resp.text[:200])
            problem = f"{url} answered HTTP {resp.status_code}: {detail}"
            if resp.status_code not in RETRY_STATUS and resp.status_code < 500:
                break
        else:
            raise LLMError(problem)
        if resp.status_code in (401, 403):
            raise LLMError(self._auth_error(resp.status_code, detail))
        if resp.status_code in (404, 405, 501):
            log.warning("%s has no /models endpoint (HTTP %d); not checking the model name",
                        cfg.base_url, resp.status_code)
            self._checked = True
            return []
        if resp.status_code != 200:
            raise LLMError(problem)
        try:
            served = [str(m["id"]) for m in resp.json()["data"]]
        except (ValueError, KeyError, TypeError):
            raise LLMError(f"{url} did not return an OpenAI model list: "
                           f"{resp.text[:200]!r}") from None
        if cfg.check_model and cfg.model not in served:
            raise LLMError(f"model {cfg.model!r} is not served by {cfg.base_url}; it serves: "
                           f"{', '.join(served) or '(nothing)'}")
        self._checked = True
        return served

    # -- generation -------------------------------------------------------------------------
    def generate(self, requests: Sequence[Request], progress: bool = True) -> list[Result]:
        """Run a batch concurrently; one result per request, in order."""
        if not requests:
            return []
        if not self._checked:
            self.check()
        coro = self.agenerate(requests, progress)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coro)
        # Called from inside an event loop (a notebook): run ours on a thread.
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["out"] = asyncio.run(coro)
            except BaseException as e:  # re-raised below on the caller's thread
                box["err"] = e
        t = threading.Thread(target=target, name="llmrec-openai")
        t.start()
        t.join()
        if "err" in box:
            raise box["err"]
        return box["out"]

    async def agenerate(self, requests: Sequence[Request], progress: bool = True) -> list[Result]:
        """The async form of :meth:`generate` (no preflight check)."""
        import httpx

        cfg = self.config
        results: list[Result | None] = [None] * len(requests)
        sem = asyncio.Semaphore(cfg.concurrency)
        state: dict[str, str] = {}  # "fatal" -> raise; "down" -> abort the rest
        bar = Progress(len(requests), f"llm {cfg.model}", progress)
        limits = httpx.Limits(max_connections=cfg.concurrency,
                              max_keepalive_connections=cfg.concurrency)
        async with httpx.AsyncClient(headers=self._headers(), limits=limits,
                                     timeout=httpx.Timeout(cfg.timeout)) as client:
            async def run(i: int, req: Request) -> None:
                async with sem:
                    stop = state.get("fatal") or state.get("down")
                    if stop:
                        res: Result = Failure("aborted", f"not sent: {stop}")
                    else:
                        try:
                            res = await self._one(client, req)
                        except _Fatal as e:
                            state.setdefault("fatal", str(e))
                            res = Failure("aborted", f"not completed: {e}")
                        if isinstance(res, Failure) and res.kind == "connection":
                            state.setdefault("down", f"{cfg.base_url} unreachable ({res.message})")
                results[i] = res
                bar.update(res)

            try:
                await asyncio.gather(*(run(i, r) for i, r in enumerate(requests)))
            finally:
                bar.close()
        if "fatal" in state:
            raise LLMError(state["fatal"])
        return [r for r in results if r is not None]

    async def _one(self, client: Any, req: Request) -> Result:
        """One request with retries; returns its result or raises :class:`_Fatal`."""
        import httpx

        cfg, url = self.config, f"{self.config.base_url}/chat/completions"
        body = req.body(cfg.model)
        start = time.perf_counter()
        kind: FailureKind = "timeout"
        message, hint = "", None
        for attempt in range(1, cfg.max_retries + 2):
            if attempt > 1:
                wait = backoff_delay(attempt - 2, cfg.backoff, cfg.max_backoff, self._rng)
                if hint is not None:
                    wait = min(hint, cfg.max_retry_after)
                log.debug("retry %d/%d in %.2fs after %s: %s", attempt - 1, cfg.max_retries,
                          wait, kind, message)
                await asyncio.sleep(wait)
            hint = None
            try:
                async with asyncio.timeout(cfg.timeout):
                    resp = await client.post(url, json=body)
            except (TimeoutError, httpx.TimeoutException):
                kind, message = "timeout", f"no answer in {cfg.timeout:g}s"
                continue
            except httpx.TransportError as e:
                kind, message = "connection", _describe_connect_error(e)
                continue
            status, data = resp.status_code, _json_or_none(resp)
            seconds = time.perf_counter() - start
            if status == 200:
                done = parse_completion(data, seconds, attempt)
                if done is not None:
                    return done
                kind, message = "bad_response", f"not a chat completion: {resp.text[:200]!r}"
                continue
            detail = error_message(data, resp.text[:200])
            if status in (401, 403):
                raise _Fatal(self._auth_error(status, detail))
            if status == 404:
                raise _Fatal(f"{url} answered HTTP 404 for model {cfg.model!r}: {detail}")
            if status == 413 or (400 <= status < 500 and is_context_overflow(data or resp.text)):
                return Failure("context_overflow", detail, seconds, attempt)
            if status in RETRY_STATUS or status >= 500:
                kind = "rate_limited" if status == 429 else "server_error"
                message = f"HTTP {status}: {detail}"
                hint = retry_after_seconds(resp.headers.get("retry-after"))
                continue
            return Failure("bad_request", f"HTTP {status}: {detail}", seconds, attempt)
        return Failure(kind, message, time.perf_counter() - start, cfg.max_retries + 1)

    def __repr__(self) -> str:
        return f"OpenAIBackend({asdict(self.config)!r})"


def _json_or_none(resp: Any) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None
