"""Latency of chat turns over real HTTP: ``llmrec serve``'s chat routes on a trained run.

Starts the app in-process on a free 127.0.0.1 port (uvicorn, one worker, as ``llmrec serve``
runs it), then plays ``--sessions`` scripted conversations of known users (start, "I want a
comedy", "from the 90s", "no, something else") with a keep-alive client, one request at a
time, and prints the median / p90 / max seconds of each step and the requests per second.
Every turn reads and writes the session's row in the SQLite store (a temporary file here).

    python benchmarks/chat_turns.py RUN_DIR
    python benchmarks/chat_turns.py RUN_DIR --sessions 100 --strategy topk
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import threading
import time

import numpy as np
import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--sessions", type=int, default=50)
    p.add_argument("--strategy", default="tree", choices=("tree", "topk"))
    args = p.parse_args()
    torch.set_num_threads(1)
    import httpx
    import uvicorn

    from llmrec.serve import ServeConfig, create_app, http_protocol, load_artifacts

    with tempfile.TemporaryDirectory() as tmp:
        cfg = ServeConfig(encoder="hashing", chat_strategy=args.strategy,
                          chat_store=os.path.join(tmp, "chat.sqlite"))
        art = load_artifacts(args.run_dir, cfg)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(art), host="127.0.0.1", port=port,
                                               log_level="warning", access_log=False,
                                               http=http_protocol()))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        users = art.dataset.users.ids[:args.sessions].tolist()
        steps = ["start", "I want a comedy", "from the 90s", "no, something else"]
        seconds: dict[str, list[float]] = {s: [] for s in steps}
        t_all = time.perf_counter()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for u in users:
                t0 = time.perf_counter()
                sid = http.post("/chat", json={"user_id": u}).json()["session_id"]
                seconds["start"].append(time.perf_counter() - t0)
                for text in steps[1:]:
                    t0 = time.perf_counter()
                    r = http.post(f"/chat/{sid}", json={"message": text})
                    r.raise_for_status()
                    seconds[text].append(time.perf_counter() - t0)
        wall = time.perf_counter() - t_all
        server.should_exit = True
    print(f"{args.strategy} on {art.dataset.name}, {len(users)} sessions x {len(steps)} "
          f"requests, load average {os.getloadavg()[0]:.2f}")
    print(f"{'step':22s} {'median ms':>10s} {'p90 ms':>8s} {'max ms':>8s}")
    for step, xs in seconds.items():
        a = np.array(xs) * 1000
        print(f"{step:22s} {np.median(a):10.1f} {np.percentile(a, 90):8.1f} {a.max():8.1f}")
    print(f"{len(users) * len(steps) / wall:.1f} requests/s one at a time")


if __name__ == "__main__":
    main()
