"""Serve tests: a small SASRec run on a slice of the real ML-100K, loaded once per session."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from llmrec.testing.slices import recbole_slice

USERS = 100          # the first 100 users of ML-100K (about 10,000 ratings)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def serve_slice(ml100k, tmp_path_factory) -> Path:
    """RecBole atomic files holding only the first USERS users of the real data set."""
    out = tmp_path_factory.mktemp("serve-slice") / "ml100k-serve"
    recbole_slice(ml100k, out, USERS, stem="serve", side=("item", "user"))
    return out


@pytest.fixture(scope="session")
def serve_run(serve_slice, tmp_path_factory) -> Path:
    """A tiny SASRec run folder (2 epochs, short sequences) made by the real training path."""
    from llmrec.runs import load_config, train_run

    cfg = load_config(model="sasrec", dataset=str(serve_slice),
                      sets=["model.epochs=2", "model.max_seq_len=50",
                            "model.embedding_size=32"])
    return train_run(cfg, tmp_path_factory.mktemp("serve-runs") / "sasrec",
                     progress=False).run_dir


@pytest.fixture(scope="session")
def artifacts(serve_run):
    """Artifacts with the hashing encoder (instant; the sentence encoder is tested in encode/)."""
    from llmrec.serve import ServeConfig, load_artifacts

    return load_artifacts(serve_run, ServeConfig(encoder="hashing"))


@pytest.fixture(scope="session")
def client(artifacts):
    from fastapi.testclient import TestClient

    from llmrec.serve import create_app

    with TestClient(create_app(artifacts)) as c:
        yield c


class LiveServer:
    """A real uvicorn server on a free 127.0.0.1 port, in a thread of the test process."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(artifacts):
    from llmrec.serve import create_app

    with LiveServer(create_app(artifacts)) as server:
        yield server
