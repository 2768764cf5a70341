"""Load test of ``llmrec serve``: throughput and latency of POST /recommend on 127.0.0.1.

Starts ``llmrec serve RUN_DIR`` as a subprocess on a free loopback port, waits for /info,
then for each concurrency (default 1, 8, 32) runs a bounded closed-loop load for ``--seconds``
(after a short warm-up) with wrk (Debian package ``wrk``; one thread, a Lua script drawing the
request bodies) or, where wrk is missing, an async httpx client: each of the C connections
sends its next request as soon as its previous one answered. Requests draw random known users
(their sequential scores were prestored when the server started; the ANN channel, fusion,
filters, MMR and explanations run on every request) or, with ``--mode history``, an explicit
20-item history of an anonymous user (the model's forward pass then runs on the request).
Prints a table: requests/s, p50/p95/p99 in ms, errors, CPU time per request of the server
(all its worker processes) and of the client, and the server's resident memory (RSS, summed
over its processes) before and after each level.

    .venv/bin/python benchmarks/serve_load.py RUN_DIR [--workers 2] [--client wrk|httpx]

The client runs on the same machine as the server (2 shared cores here): its CPU time is
taken from the server's, so these are lower bounds for the server alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tree(pid: int) -> list[int]:
    """``pid`` and its worker processes (``llmrec serve --workers N`` forks them)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [pid] + [int(x) for x in path.read_text().split()] if path.exists() else [pid]


def tree_cpu(pid: int) -> float:
    return sum(cpu_seconds(p) for p in tree(pid))


def tree_rss(pid: int) -> float:
    """Summed RSS of the server and its workers (pages shared after the fork count twice)."""
    return sum(rss_mb(p) for p in tree(pid))


WRK_SCRIPT = """
local bodies = {}
init = function(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  math.randomseed(tonumber(args[2]))
end
request = function()
  return wrk.format("POST", "/recommend", {["Content-Type"] = "application/json"},
                    bodies[math.random(#bodies)])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %d %d %d %f %f %f\\n", summary.requests,
           e.connect + e.read + e.write + e.status + e.timeout, summary.duration,
           latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def wrk_level(url: str, bodies: list[dict], concurrency: int, seconds: float,
              warmup: float) -> dict:
    """The same closed-loop load from wrk (C, one thread): far less client CPU than httpx."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        script, data = Path(tmp) / "load.lua", Path(tmp) / "bodies.jsonl"
        script.write_text(WRK_SCRIPT)
        data.write_text("\n".join(json.dumps(b) for b in bodies) + "\n")

        def run(secs: float) -> list[str]:
            out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{secs:g}s",
                                  "--timeout", "10s", "-s", str(script), url, "--",
                                  str(data), "0"], capture_output=True, text=True, check=True)
            return next(ln for ln in out.stdout.splitlines() if ln.startswith("WRK ")).split()

        warm = int(run(warmup)[1]) if warmup > 0 else 0
        _, n, errors, micros, p50, p95, p99 = run(seconds)
    n = int(n)
    return {"requests": n, "rps": n / (float(micros) / 1e6), "p50": float(p50) / 1000,
            "p95": float(p95) / 1000, "p99": float(p99) / 1000, "errors": int(errors),
            "warmup_requests": warm}


async def level(url: str, bodies: list[dict], concurrency: int, seconds: float,
                warmup: float) -> dict:
    latencies: list[float] = []
    errors = warm = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as http:
        async def worker(stop: float, record: bool) -> None:
            nonlocal errors, warm
            rng = random.Random()
            while time.perf_counter() < stop:
                body = bodies[rng.randrange(len(bodies))]
                t0 = time.perf_counter()
                try:
                    r = await http.post("/recommend", json=body)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if record:
                    latencies.append(time.perf_counter() - t0)
                    errors += not ok
                else:
                    warm += 1

        await asyncio.gather(*(worker(time.perf_counter() + warmup, False)
                               for _ in range(concurrency)))
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(t0 + seconds, True) for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    lat = np.asarray(latencies) * 1000
    return {"requests": len(lat), "rps": len(lat) / wall, "p50": np.percentile(lat, 50),
            "p95": np.percentile(lat, 95), "p99": np.percentile(lat, 99), "errors": errors,
            "warmup_requests": warm}


def _children_cpu() -> float:
    """CPU seconds of finished child processes (the wrk runs)."""
    t = os.times()
    return t.children_user + t.children_system


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--mode", choices=("user", "history"), default="user")
    ap.add_argument("--weights", default="sequential=1,ann=0.5,popularity=0.1")
    ap.add_argument("--encoder", default="minilm")
    ap.add_argument("--workers", type=int, default=1, help="llmrec serve --workers")
    ap.add_argument("--client", choices=("auto", "wrk", "httpx"), default="auto",
                    help="load generator (auto: wrk when installed, else httpx)")
    args = ap.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "llmrec", "-q", "serve", args.run_dir, "--port", str(port),
           "--weights", args.weights, "--encoder", args.encoder, "--workers", str(args.workers)]
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "httpx"
    if client == "wrk" and not shutil.which("wrk"):
        raise SystemExit("--client wrk: wrk is not installed (Debian: apt-get install wrk)")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    server = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while True:
            if server.poll() is not None:
                print(f"server exited with status {server.returncode}", file=sys.stderr)
                return 1
            try:
                info = httpx.get(url + "/info", timeout=1).json()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit("server did not start in 300 s") from None
                time.sleep(0.5)
        users = httpx.get(url + "/users", params={"limit": 1000}).json()["users"]
        rng = random.Random(0)
        if args.mode == "user":
            bodies = [{"user_id": u["user_id"], "n": args.n} for u in users]
        else:
            # explicit 20-item histories (other users' latest items): the model runs per request
            bodies = []
            for u in rng.sample(users, min(200, len(users))):
                h = httpx.get(f"{url}/users/{u['user_id']}", params={"limit": 20}).json()
                bodies.append({"user_id": f"anon-{u['user_id']}", "n": args.n,
                               "history": [it["item_id"] for it in h["history"][::-1]]})
        load = os.getloadavg()
        print(f"# {info['model']} on {info['dataset']}: {info['items']} items, ANN over "
              f"{info['item_vectors']} ({info['index']}), ranker: {info['ranker']}")
        print(f"# server: {args.workers} worker process(es); client: {client}, on the same "
              "machine")
        print(f"# weights {info['weights']}; mode {args.mode}; n={args.n}; "
              f"{args.seconds:g} s per level; load average before: "
              f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
        rows = []
        for c in (int(x) for x in args.concurrency.split(",")):
            before = tree_rss(server.pid)
            cpu0 = tree_cpu(server.pid)
            own0 = time.process_time() + _children_cpu()
            if client == "wrk":
                r = wrk_level(url, bodies, c, args.seconds, args.warmup)
            else:
                r = asyncio.run(level(url, bodies, c, args.seconds, args.warmup))
            total = r["requests"] + r["warmup_requests"]
            r["server_cpu_ms"] = 1000 * (tree_cpu(server.pid) - cpu0) / max(total, 1)
            r["client_cpu_ms"] = (1000 * (time.process_time() + _children_cpu() - own0)
                                  / max(total, 1))
            rows.append((c, r, before, tree_rss(server.pid)))
        head = ("conc", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors",
                "server CPU ms/req", "client CPU ms/req", "RSS before MB", "RSS after MB")
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join("---:" for _ in head) + "|")
        for c, r, before, after in rows:
            print(f"| {c} | {r['requests']} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p95']:.2f} "
                  f"| {r['p99']:.2f} | {r['errors']} | {r['server_cpu_ms']:.2f} | "
                  f"{r['client_cpu_ms']:.2f} | {before:.0f} | {after:.0f} |")
        load = os.getloadavg()
        print(f"# load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        return 0
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    raise SystemExit(main())
