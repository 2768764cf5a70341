"""Fixtures for the LLM backend tests: the real llama.cpp server and a misbehaving stub.

``llama_server`` is xllamacpp's real OpenAI-compatible HTTP server serving the packaged
SmolLM2-135M-Instruct (one per test session, with an API key so a wrong key gets a real 401).
Tests use ``threads=1``: on a 2-core machine shared with other jobs llama.cpp with 2 threads
can be 10x slower (each op waits for its slowest thread).

``stub`` is a real HTTP server (``http.server``) speaking the OpenAI chat-completions protocol
that misbehaves on cue, like a third-party server we cannot otherwise reproduce. The last user
message names the behaviour, so it is deterministic under concurrency:

    ok           a valid completion echoing the prompt
    500x2        HTTP 500 the first 2 times this prompt is seen, then ok (also 429x1, slowx1)
    500          HTTP 500 always           429x1   429 + Retry-After: 1, then ok
    garbage      200 with a non-JSON body  nochoices  200 with JSON lacking "choices"
    slow         sleep 1 s, then ok        overflow   400 with a context-length error
    badreq       400 other error           unauth     401
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from llmrec.llm import serve_local_openai

KEY_ENV = "LLMREC_TEST_LLM_KEY"
KEY = "test-key-123"


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """Base URL of the real llama.cpp OpenAI-compatible server (2 slots, key ``KEY``)."""
    with serve_local_openai(threads=1, parallel=2, n_ctx=512, api_key=KEY) as url:
        yield url


@pytest.fixture
def llama_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """The name of an environment variable holding the server's key."""
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY_ENV


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out and hung up is expected here; anything else is not."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class StubServer:
    """An OpenAI-compatible HTTP server on 127.0.0.1 that misbehaves on cue."""

    def __init__(self, models: tuple[str, ...] = ("stub-model",), key: str | None = None,
                 loading: int = 0):
        self.models, self.key, self.loading = models, key, loading  # loading: 503s on /models
        self.seen: Counter[str] = Counter()
        self.hits: list[tuple[float, str]] = []  # (monotonic time, directive) per chat POST
        self.lock = threading.Lock()
        self.httpd = _QuietServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def send(self, status: int, body: bytes | dict[str, Any],
                     headers: dict[str, str] | None = None) -> None:
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def authorized(self) -> bool:
                if stub.key and self.headers.get("Authorization") != f"Bearer {stub.key}":
                    self.send(401, {"error": {"message": "Incorrect API key provided",
                                              "type": "invalid_request_error"}})
                    return False
                return True

            def do_GET(self) -> None:  # noqa: N802
                if not self.authorized():
                    return
                if self.path == "/v1/models" and stub.loading > 0:
                    stub.loading -= 1
                    self.send(503, {"error": {"message": "Loading model", "code": 503}})
                elif self.path == "/v1/models":
                    self.send(200, {"object": "list", "data": [
                        {"id": m, "object": "model", "owned_by": "stub"} for m in stub.models]})
                else:
                    self.send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if not self.authorized():
                    return
                prompt = body["messages"][-1]["content"]
                with stub.lock:
                    stub.seen[prompt] += 1
                    n = stub.seen[prompt]
                    stub.hits.append((time.monotonic(), prompt))
                m = re.fullmatch(r"(\w+?)x(\d+)", prompt)
                act = m.group(1) if m and n <= int(m.group(2)) else ("ok" if m else prompt)
                if act == "500":
                    self.send(500, {"error": {"message": "internal error", "code": 500}})
                elif act == "429":
                    self.send(429, {"error": {"message": "slow down"}}, {"Retry-After": "1"})
                elif act == "garbage":
                    self.send(200, b"<html>502 Bad Gateway</html>")
                elif act == "nochoices":
                    self.send(200, {"id": "x", "object": "chat.completion"})
                elif act == "overflow":
                    self.send(400, {"error": {
                        "message": "This model's maximum context length is 512 tokens. However, "
                                   "you requested 900 tokens.",
                        "type": "BadRequestError", "code": 400}})
                elif act == "badreq":
                    self.send(400, {"error": {"message": "temperature: bad value"}})
                elif act == "unauth":
                    self.send(401, {"error": {"message": "key revoked"}})
                else:
                    if act == "slow":
                        time.sleep(1.0)
                    self.send(200, {
                        "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                        "choices": [{"index": 0, "finish_reason": "stop", "message": {
                            "role": "assistant", "content": f"echo: {prompt}"}}],
                        "usage": {"prompt_tokens": len(prompt.split()) + 5,
                                  "completion_tokens": 3, "total_tokens": 0}})

        return Handler


@pytest.fixture
def make_stub() -> Iterator[Any]:
    """A factory for stub servers, ``make_stub(models=..., key=...)``; all stopped afterwards."""
    servers: list[StubServer] = []

    def make(**kw: Any) -> StubServer:
        servers.append(StubServer(**kw))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def stub(make_stub: Any) -> StubServer:
    return make_stub()
