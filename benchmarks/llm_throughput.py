"""Throughput of the local LLM (SmolLM2-135M-Instruct on llama.cpp) on this machine.

Prints two tables:

1. single stream: llama.cpp's own decode and prompt speed for one request (tokens/s);
2. aggregate: a batch of short prompts with 1, 2, 4, 8 parallel slots, through the in-process
   ``local`` backend and through the OpenAI-compatible HTTP server + ``openai`` backend
   (completion tokens / wall seconds, prompt processing included).

The load average is printed next to each row: other jobs on the machine make numbers noisy,
and llama.cpp with as many threads as cores suffers most (each op waits for its slowest thread).

    python benchmarks/llm_throughput.py                       # all cores, 16 prompts, 48 tokens
    python benchmarks/llm_throughput.py --threads 1,2 --slots 1,4 --paths local
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from typing import Any

from llmrec._table import format_table
from llmrec.llm import Completion, LocalBackend, OpenAIBackend, Request, serve_local_openai
from llmrec.llm.local import PACKAGED_MODEL_NAME, LocalConfig, start_server, usable_cores

MOVIES = ["Toy Story (1995)", "Heat (1995)", "Fargo (1996)", "Babe (1995)", "Casino (1995)",
          "Clueless (1995)", "Se7en (1995)", "Apollo 13 (1995)", "Braveheart (1995)",
          "Jumanji (1995)", "Twister (1996)", "Scream (1996)", "Titanic (1997)",
          "Contact (1997)", "Alien (1979)", "Vertigo (1958)"]


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def requests(n: int, max_tokens: int) -> list[Request]:
    return [Request.chat(f"Describe the movie {MOVIES[i % len(MOVIES)]} for a recommender "
                         f"system: genre, mood, audience.", max_tokens=max_tokens)
            for i in range(n)]


def single_stream(threads: int, max_tokens: int) -> list[Any]:
    """llama.cpp's timings for one request (after one warm-up request)."""
    server = start_server(LocalConfig(threads=threads, parallel=1, n_ctx=512))
    body = requests(2, max_tokens)[1].body() | {"ignore_eos": True}
    server.handle_chat_completions(requests(1, 8)[0].body())  # warm-up
    t = server.handle_chat_completions(body)["timings"]
    del server
    return ["single stream", threads, 1, t["predicted_n"], t["predicted_per_second"],
            t["prompt_n"], t["prompt_per_second"], os.getloadavg()[0]]


def batch(path: str, threads: int, slots: int, reqs: list[Request]) -> list[Any]:
    """Aggregate completion tokens/s for ``reqs`` through one path with ``slots`` slots."""
    cfg = dict(threads=threads, parallel=slots, n_ctx=512)
    warm = requests(1, 4)
    if path == "local":
        with LocalBackend(**cfg) as llm:
            llm.generate(warm, progress=False)
            start = time.perf_counter()
            results = llm.generate(reqs, progress=False)
            seconds = time.perf_counter() - start
    else:
        with serve_local_openai(**cfg) as url:
            llm = OpenAIBackend(base_url=url, model=PACKAGED_MODEL_NAME, concurrency=slots)
            llm.generate(warm, progress=False)
            start = time.perf_counter()
            results = llm.generate(reqs, progress=False)
            seconds = time.perf_counter() - start
    done = [r for r in results if isinstance(r, Completion)]
    tokens = sum(r.completion_tokens for r in done)
    return [path, threads, slots, len(reqs) - len(done), tokens, seconds, tokens / seconds,
            len(done) / seconds, os.getloadavg()[0]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=ints, default=[usable_cores()],
                    help="comma-separated thread counts (default: all usable cores)")
    ap.add_argument("--slots", type=ints, default=[1, 2, 4, 8])
    ap.add_argument("--paths", default="local,http", help="local, http or both")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=48)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    single = [single_stream(t, args.max_tokens) for t in args.threads]
    print(format_table(["run", "threads", "slots", "gen tokens", "gen tok/s", "prompt tokens",
                        "prompt tok/s", "load1"], single, digits=1))
    print()
    reqs = requests(args.prompts, args.max_tokens)
    rows = [batch(path, t, s, reqs) for t in args.threads for path in args.paths.split(",")
            for s in args.slots]
    print(format_table(["path", "threads", "slots", "failed", "completion tokens", "seconds",
                        "tok/s", "req/s", "load1"], rows, digits=1))
    print(f"\n{args.prompts} prompts, max_tokens={args.max_tokens}, {usable_cores()} usable cores, "
          f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
