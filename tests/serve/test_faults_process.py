"""Process faults of ``llmrec serve``, with real processes and sockets on 127.0.0.1: a killed
worker is replaced, a SIGKILLed parent takes its workers with it (and the next start cleans
the metrics folder it left and gets the port), corrupt artifacts stop the start-up with one
line naming the file."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from .conftest import free_port


def _children(pid: int) -> set[int]:
    path = f"/proc/{pid}/task/{pid}/children"
    return {int(x) for x in open(path).read().split()} if os.path.exists(path) else set()


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for a reaper that may never come)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _start(run: Path, port: int, tmp: Path, workers: int = 2) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "llmrec", "-q", "serve", str(run), "--port", str(port),
         "--encoder", "hashing", "--workers", str(workers)],
        env={**os.environ, "TMPDIR": str(tmp)}, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_ready(server: subprocess.Popen, url: str, workers: int) -> set[int]:
    deadline = time.monotonic() + 120
    while len(_children(server.pid)) < workers or not _answers(url):
        assert server.poll() is None, server.communicate()[1]
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.2)
    return _children(server.pid)


def _wait_gone(pids: set[int], seconds: float = 20) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_running(p) for p in pids):
        time.sleep(0.1)
    return {p for p in pids if _running(p)}


def test_killed_parent_takes_its_workers_and_the_next_start_cleans_up(serve_run, tmp_path):
    """SIGKILL of a replaced worker is repaired; SIGKILL of the parent ends every worker
    (parent-death signal / liveness pipe); the metrics folder it left is removed by the next
    start, which gets the same port and answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    first = _start(serve_run, port, tmp_path)
    try:
        workers = _wait_ready(first, url, 2)
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:                                   # the parent forks a replacement
            now = _children(first.pid)
            if len(now) == 2 and victim not in now:
                break
            assert time.monotonic() < deadline, f"dead worker not replaced: {now}"
            time.sleep(0.1)
        assert httpx.post(url + "/recommend", json={"user_id": "1", "n": 3}).status_code == 200
        left = tmp_path / f"llmrec-metrics-{first.pid}"
        assert left.is_dir()
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        assert _wait_gone(now) == set(), "workers outlived their parent"
        assert not _answers(url)
        assert left.is_dir()                         # a SIGKILLed parent cannot clean up
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        for pid in _children(first.pid) | locals().get("now", set()):
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
    second = _start(serve_run, port, tmp_path)
    try:
        _wait_ready(second, url, 2)
        assert not left.exists()
        assert (tmp_path / f"llmrec-metrics-{second.pid}").is_dir()
        r = httpx.post(url + "/recommend", json={"user_id": "1", "n": 3})
        assert r.status_code == 200 and len(r.json()["items"]) == 3
    finally:
        second.terminate()
        _, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert not (tmp_path / f"llmrec-metrics-{second.pid}").exists()


def _listening(port: int) -> int:
    """How many TCP sockets listen on 127.0.0.1:``port`` (Linux /proc/net/tcp)."""
    local = f"0100007F:{port:04X}"
    rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    return sum(1 for r in rows if r[1] == local and r[3] == "0A")         # 0A = LISTEN


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT spreading is "
                    "Linux's")
def test_connections_opened_together_spread_over_the_workers(serve_run, tmp_path):
    """64 keep-alive connections opened at once (a load balancer's pool, ``wrk -c 64``) are
    served by both workers evenly: each worker listens on its own SO_REUSEPORT socket and the kernel
    spreads connections over them by a hash (with one shared socket the first worker to wake
    took 15 of 16 and 44 of 64). A second server still cannot take the port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = _start(serve_run, port, tmp_path)
    try:
        workers = _wait_ready(server, url, 2)

        async def pids() -> list[int]:
            clients = [httpx.AsyncClient(base_url=url, timeout=30) for _ in range(64)]
            try:
                answers = await asyncio.gather(*(c.get("/info") for c in clients))
            finally:
                await asyncio.gather(*(c.aclose() for c in clients))
            return [r.json()["pid"] for r in answers]

        counts = Counter(asyncio.run(pids()))
        assert set(counts) == workers, counts
        assert min(counts.values()) >= 8, counts     # fewer by chance: p < 1e-8
        assert _listening(port) == 2                 # a socket per worker (one: 44 vs 20)
        second = _start(serve_run, port, tmp_path)
        _, err = second.communicate(timeout=120)
        assert second.returncode != 0 and "in use" in err, err
    finally:
        server.terminate()
        server.communicate(timeout=60)


@pytest.fixture
def run_copy(serve_run, tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(serve_run, run)
    return run


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _garble(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(b"\xff\x00garbage" + data[10:])


@pytest.mark.parametrize("name, damage", [
    ("model/model.safetensors", _truncate),
    ("model/model.safetensors", _garble),
    ("model/model.json", _truncate),
    ("config.toml", _garble),
    ("run.json", _truncate),
])
def test_corrupt_run_artifact_stops_the_start_with_one_line(run_copy, name, damage):
    damage(run_copy / name)
    port = free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "llmrec", "serve", str(run_copy), "--port", str(port),
         "--encoder", "hashing", "--workers", "2"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and str(run_copy / name) in lines[0], proc.stderr
    assert "--force" in lines[0]
    assert not _answers(f"http://127.0.0.1:{port}")


@pytest.fixture(scope="module")
def ranked_run(serve_run, tmp_path_factory) -> Path:
    """A copy of the serve run with a CTR ranker (RUN_DIR/ctr) trained by `llmrec ranker`."""
    run = tmp_path_factory.mktemp("faults-ranked") / "run"
    shutil.copytree(serve_run, run)
    proc = subprocess.run(
        [sys.executable, "-m", "llmrec", "-q", "ranker", str(run), "--model", "din",
         "--knowledge-source", "none", "--encoder", "hashing", "--epochs", "1",
         "--threads", "1"], capture_output=True, text=True, timeout=600,
        stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    return run


def _serve_once(run: Path, env: dict | None = None, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "llmrec", "-q", "serve", str(run), "--port", str(free_port()),
         "--encoder", "hashing", *extra], capture_output=True, text=True, timeout=180,
        stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("name, damage", [
    ("ctr/item_table.npy", _truncate),
    ("ctr/user_ids.npy", _garble),
    ("ctr/serving.json", _garble),
    ("ctr/model.safetensors", _truncate),
    ("ctr/model.json", _truncate),
])
def test_corrupt_ranker_artifact_stops_the_start_with_one_line(ranked_run, tmp_path, name,
                                                              damage):
    run = tmp_path / "run"
    shutil.copytree(ranked_run, run)
    damage(run / name)
    proc = _serve_once(run, None, "--ranker", "ctr")      # "auto" loads only a tuned ranker
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and str(run / name) in lines[0], proc.stderr
    assert f"llmrec ranker {run}" in lines[0] and f"delete {run / 'ctr'}" in lines[0]


def test_corrupt_knowledge_store_stops_the_start_with_one_line(serve_run, tmp_path,
                                                              monkeypatch):
    """Serving reads the data set's knowledge store for explanations and item vectors."""
    import json

    from llmrec.knowledge import default_store_path

    monkeypatch.setenv("LLMREC_HOME", str(tmp_path / "home"))
    store = default_store_path(json.loads((serve_run / "run.json").read_text())["dataset"])
    store.parent.mkdir(parents=True)
    store.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)
    proc = _serve_once(serve_run)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and str(store) in lines[0] and "delete" in lines[0], proc.stderr
