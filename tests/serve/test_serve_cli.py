"""``llmrec serve`` as users start it: a real server process, and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from .conftest import free_port


def llmrec(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmrec", *args], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def cli(capsys):
    """``llmrec.cli.main`` in-process (no interpreter start-up), logger restored afterwards."""
    import logging

    from llmrec.cli import main

    logger = logging.getLogger("llmrec")
    saved = (logger.handlers[:], logger.level, logger.propagate)

    def run(*args: str) -> tuple[int, str]:
        status = main(list(args))
        return status, capsys.readouterr().err

    yield run
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.mark.parametrize("args, message", [
    (["serve", "/no/such/run"], "not a finished llmrec run"),
    (["serve", "{run}", "--api-key-env", "LLMREC_TEST_UNSET_KEY"], "LLMREC_TEST_UNSET_KEY"),
    (["serve", "{run}", "--weights", "sequential=lots"], "--weights"),
    (["serve", "{run}", "--weights", "nearby=1"], "unknown channel"),
    (["serve", "{run}", "--port", "70000"], "--port"),
])
def test_user_mistakes_are_one_line_errors(cli, serve_run, args, message, monkeypatch):
    monkeypatch.delenv("LLMREC_TEST_UNSET_KEY", raising=False)
    status, err = cli(*[a.replace("{run}", str(serve_run)) for a in args])
    assert status == 2
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_port_in_use_is_a_one_line_error(cli, serve_run, live_server):
    status, err = cli("serve", str(serve_run), "--port", str(live_server.port), "--encoder",
                      "hashing")
    assert status == 2 and "in use" in err and len(err.strip().splitlines()) == 1, err


def test_a_subprocess_error_has_no_traceback():
    proc = llmrec("serve", "/no/such/run")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_serve_command_answers_with_api_key(serve_run):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "llmrec", "-q", "serve", str(serve_run), "--port", str(port),
         "--encoder", "hashing", "--api-key-env", "LLMREC_TEST_KEY"],
        env={**os.environ, "LLMREC_TEST_KEY": "k3y"}, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, server.communicate()[1]
            try:
                health = httpx.get(url + "/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert health.json()["status"] == "ok"
        assert httpx.post(url + "/recommend", json={"user_id": "1"}).status_code == 401
        r = httpx.post(url + "/recommend", json={"user_id": "1", "n": 4},
                       headers={"X-API-Key": "k3y"})
        assert r.status_code == 200 and len(r.json()["items"]) == 4
    finally:
        server.terminate()
        server.wait(timeout=30)
