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


def _children(pid: int) -> set[int]:
    path = f"/proc/{pid}/task/{pid}/children"
    return {int(x) for x in open(path).read().split()} if os.path.exists(path) else set()


def _metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_workers_share_the_port_replace_a_dead_worker_and_sum_metrics(serve_run, tmp_path):
    """`--workers 2`: two forked servers answer on one port; SIGKILL of one is repaired by the
    parent; /metrics counts every worker's requests, also when a worker was killed while it
    created its metric file (an empty file; it once failed the whole scrape in CI); SIGTERM
    stops everything with status 0."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "llmrec", "-q", "serve", str(serve_run), "--port", str(port),
         "--encoder", "hashing", "--workers", "2"],
        env={**os.environ, "TMPDIR": str(tmp_path)},      # where its metric files go
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while len(_children(server.pid)) < 2 or not _answers(url):
            assert server.poll() is None, server.communicate()[1]
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.2)
        first = _children(server.pid)
        assert len(first) == 2
        victim = min(first)
        os.kill(victim, 9)
        while True:
            now = _children(server.pid)
            if len(now) == 2 and victim not in now:
                break
            assert time.monotonic() < deadline, f"dead worker not replaced: {now}"
            time.sleep(0.1)
        answered: dict[int, int] = {}
        sent = 0
        while sent < 20 or len(answered) < 2:   # a new connection each time: either worker
            assert sent < 500, f"only workers {answered} answered"
            with httpx.Client(base_url=url) as http:
                r = http.post("/recommend", json={"user_id": "1", "n": 3})
                assert r.status_code == 200 and len(r.json()["items"]) == 3
                pid = http.get("/info").json()["pid"]         # same connection, same worker
            answered[pid] = answered.get(pid, 0) + 1
            sent += 1
        assert set(answered) == now
        folder, = tmp_path.glob("llmrec-metrics-*")
        (folder / "counter_1.db").touch()   # a worker killed between creating and sizing it
        reply = httpx.get(url + "/metrics")
        assert reply.status_code == 200, reply.text
        metrics = reply.text
        assert _metric(metrics, "llmrec_http_requests_total", route="/recommend",
                       status="200") == sent
        assert _metric(metrics, "llmrec_recommended_items_total") == 3 * sent
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "starting a new one" in err
    assert not any(os.path.exists(f"/proc/{p}") and
                   open(f"/proc/{p}/stat").read().split()[2] != "Z" for p in now)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_ranker_command_trains_the_ctr_ranker_serve_uses(cli, serve_run, tmp_path):
    import shutil

    from llmrec.serve import ServeConfig, Service, load_artifacts

    run = tmp_path / "run"
    shutil.copytree(serve_run, run)
    status, err = cli("ranker", str(run), "--knowledge-source", "knowledge")
    assert status == 2 and "--history ctr-profile" in err and len(err.strip().splitlines()) == 1
    assert not (run / "ctr").exists()
    status, err = cli("-q", "ranker", str(run), "--model", "deepfm", "--knowledge-source",
                      "metadata", "--encoder", "hashing", "--epochs", "1", "--threads", "1")
    assert status == 0, err
    art = load_artifacts(run, ServeConfig(encoder="hashing"))
    assert art.ranker is not None and art.ranker.model.prestored is not None
    assert Service(art).recommend(user_id="1", n=5)["ranker"] == "deepfm"
    status, _ = cli("-q", "ranker", str(run), "--model", "din", "--knowledge-source", "none",
                    "--encoder", "hashing", "--epochs", "1", "--threads", "1")
    assert status == 0
    assert sorted(p.name for p in run.iterdir() if "ctr" in p.name) == ["ctr"]   # replaced
    assert load_artifacts(run, ServeConfig(encoder="hashing")).ranker.model.name == "din"
