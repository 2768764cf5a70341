"""Chat tests: a small SASRec run on the real ML-100K (5-core, leave-one-out), loaded once, and
a real OpenAI-compatible HTTP server (``http.server`` on 127.0.0.1) whose answers a test
scripts, for the LLM strategies."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def chat_run(ml100k, tmp_path_factory) -> Path:
    """A quick SASRec run folder (1 epoch, short sequences) made by the real training path."""
    from llmrec.runs import load_config, train_run

    cfg = load_config(model="sasrec", dataset="ml-100k",
                      sets=["data.user_core=5", "data.item_core=5", "model.epochs=1",
                            "model.max_seq_len=30", "model.embedding_size=32",
                            "model.threads=1"])
    return train_run(cfg, tmp_path_factory.mktemp("chat-runs") / "sasrec",
                     progress=False).run_dir


@pytest.fixture(scope="session")
def world(chat_run):
    from llmrec.chat import ChatWorld

    return ChatWorld.from_run(chat_run)


@pytest.fixture(scope="session")
def kg_world(chat_run):
    from llmrec.chat import ChatWorld

    return ChatWorld.from_run(chat_run, kg=True)


class ScriptedServer:
    """An OpenAI-compatible server on 127.0.0.1 answering every chat request with
    ``reply(request_body)`` as the message content (or the whole message, given a dict);
    ``bodies`` keeps the requests."""

    def __init__(self, reply: Callable[[dict[str, Any]], Any]) -> None:
        self.bodies: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def send(self, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:  # noqa: N802
                self.send({"object": "list", "data": [{"id": "scripted", "object": "model"}]})

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.bodies.append(body)
                said = reply(body)
                message = said if isinstance(said, dict) else {"role": "assistant",
                                                                "content": said}
                self.send({"id": "c", "object": "chat.completion", "choices": [{
                    "index": 0, "finish_reason": "stop", "message": message}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 7,
                              "total_tokens": 107}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted() -> Iterator[Callable[[Callable[[dict[str, Any]], str]], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(reply: Callable[[dict[str, Any]], str]) -> ScriptedServer:
        servers.append(ScriptedServer(reply))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()
