"""Knowledge generation speed on ML-100K with the local model (SmolLM2-135M on llama.cpp).

Prints, each row with the load average (other jobs on the machine make numbers noisy):

1. raw speed: llama.cpp's own single-stream generation and prompt tokens/s for this model
   with the same thread count (the yardstick for everything below);
2. prefix caching: how many prompt tokens of a second item prompt come from the KV cache;
3. knobs: items-only runs of ``--grid-items`` items for each (threads, slots) pair;
   plus the length knobs: 2 words per item factor, 3 per user factor, 5 history items;
4. individual extraction on ``--items`` items and ``--users`` users (or all: 0), extrapolated
   to all 1,682 items and 943 users when a subset is measured;
5. collective extraction for all users (clustering included), items already in the store;
6. incremental (LIBER) extraction on ``--incremental-users`` users.

Every run writes to a fresh store, so nothing is a cache hit unless said so.

    nice -n 15 python benchmarks/knowledge_generation.py --threads 1 --slots 4 \\
        --items 60 --users 30 --grid 1x1,1x4,2x4
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from llmrec._table import format_table
from llmrec.data import Preprocessing, leave_one_out, load_dataset
from llmrec.knowledge import KnowledgeConfig, generate_knowledge, load_templates
from llmrec.llm import LocalBackend
from llmrec.llm.local import LocalConfig, start_server

FULL_ITEMS, FULL_USERS = 1682, 943


def raw_speed(threads: int, tokens: int = 64) -> dict[str, float]:
    """llama.cpp's single-stream decode and prompt speed (after a warm-up request)."""
    server = start_server(LocalConfig(threads=threads, parallel=1, n_ctx=1024))
    body = {"messages": [{"role": "user", "content": "Describe the movie Heat (1995) for a "
                          "recommender system: genre, mood, audience, era and people."}],
            "max_tokens": tokens, "temperature": 0.0, "ignore_eos": True}
    server.handle_chat_completions({**body, "max_tokens": 4})
    t = server.handle_chat_completions({**body, "messages": [
        {"role": "user", "content": body["messages"][0]["content"] + " Be brief."}]})["timings"]
    del server
    return {"gen_tok_s": t["predicted_per_second"], "prompt_tok_s": t["prompt_per_second"],
            "load1": os.getloadavg()[0]}


def prefix_cache(threads: int, factors: tuple[str, ...]) -> tuple[int, int]:
    """(cached, total) prompt tokens of the second of two item prompts on one slot."""
    server = start_server(LocalConfig(threads=threads, parallel=1, n_ctx=1024))
    t = load_templates()["item"]
    out = []
    for facts in ("Movie: Heat (1995)\nGenres: Action, Crime, Thriller",
                  "Movie: Fargo (1996)\nGenres: Crime, Drama, Thriller"):
        body = t.request({"scenario": "movie", "facts": facts}, list(factors), "grammar").body()
        out.append(server.handle_chat_completions(body | {"max_tokens": 4})["timings"])
    del server
    return out[1]["cache_n"], out[1]["cache_n"] + out[1]["prompt_n"]


def short_templates() -> str:
    """A template folder with shorter outputs and user prompts (the length knobs)."""
    import tomllib
    from importlib import resources

    import tomli_w

    folder = Path(tempfile.mkdtemp(prefix="knowledge-short-"))
    packaged = resources.files("llmrec.knowledge") / "templates"
    for name, change in SHORT.items():
        change = dict(change)
        raw = tomllib.loads((packaged / f"{name}.toml").read_text(encoding="utf-8"))
        raw["params"] = {**raw.get("params", {}), **change.pop("params", {})}
        (folder / f"{name}.toml").write_text(tomli_w.dumps({**raw, **change}))
    return str(folder)


SHORT = {"item": {"words_per_factor": 2, "max_tokens": 64},
         "user": {"words_per_factor": 3, "max_tokens": 80, "params": {"history_items": 5}}}


def measure(ds: Any, split: Any, threads: int, slots: int, **config: Any) -> dict[str, Any]:
    """One generation run into a fresh store; wall seconds include model load and planning."""
    store = Path(tempfile.mkdtemp(prefix="knowledge-bench-")) / "k.sqlite"
    start = time.perf_counter()
    with LocalBackend(threads=threads, parallel=slots, n_ctx=1024) as llm:
        s = generate_knowledge(ds, split, llm, KnowledgeConfig(slots=slots, **config),
                               store=store, progress=False)
    wall = time.perf_counter() - start
    st = s.stats
    return {"calls": s.calls, "entities": s.items + s.users, "ok": s.items_ok + s.users_ok,
            "prompt": sum(st["prompt_tokens"].values()),
            "completion": sum(st["completion_tokens"].values()), "wall": wall,
            "llm": st["llm_seconds"], "factors": s.factors, "load1": os.getloadavg()[0],
            "stats": st}


def row(name: str, threads: int, slots: int, m: dict[str, Any], raw: float) -> list[Any]:
    tok_s = m["completion"] / m["llm"]
    return [name, threads, slots, m["entities"], m["ok"], m["calls"],
            m["prompt"] / max(m["calls"], 1), m["completion"] / max(m["calls"], 1), m["wall"],
            m["calls"] / m["llm"], tok_s, tok_s / raw, m["load1"]]


HEAD = ["run", "threads", "slots", "entities", "ok", "calls", "prompt tok/call",
        "compl tok/call", "wall s", "calls/s", "compl tok/s", "x raw", "load1"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--slots", type=int, default=4)
    ap.add_argument("--items", type=int, default=60, help="items measured (0: all)")
    ap.add_argument("--users", type=int, default=30, help="users measured (0: all)")
    ap.add_argument("--grid", default="1x1,1x4,2x4", help="THREADSxSLOTS pairs for the knobs")
    ap.add_argument("--grid-items", type=int, default=16)
    ap.add_argument("--clusters", type=int, default=32)
    ap.add_argument("--incremental-users", type=int, default=3)
    ap.add_argument("--partition-size", type=int, default=20)
    ap.add_argument("--factors", default="genre,people,era,mood,audience",
                    help="fixed factors (empty: derived by the LLM in each run)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    factors = tuple(f for f in args.factors.split(",") if f)

    # every item (no item 5-core) and every user, leave-one-out on the 5-core users
    ds = load_dataset("ml-100k", preprocessing=Preprocessing(user_core=5, item_core=0))
    split = leave_one_out(ds.interactions)
    print(f"ML-100K: {ds.n_items} items, {ds.n_users} users; {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}\n")

    raw = raw_speed(args.threads)
    cached, total = prefix_cache(args.threads, factors or ("genre", "mood"))
    print(format_table(["threads", "raw gen tok/s", "raw prompt tok/s", "load1"],
                       [[args.threads, raw["gen_tok_s"], raw["prompt_tok_s"], raw["load1"]]],
                       digits=1))
    print(f"prefix cache: {cached} of {total} prompt tokens of an item prompt reused\n")
    base = raw["gen_tok_s"]

    rows = []
    for pair in [p for p in args.grid.split(",") if p]:
        t, s = (int(x) for x in pair.split("x"))
        m = measure(ds, split, t, s, factors=factors, users=False, limit=args.grid_items)
        rows.append(row(f"items x{args.grid_items}", t, s, m, base))
        print(format_table(HEAD, rows[-1:], digits=2).splitlines()[-1], flush=True)

    t, s = args.threads, args.slots
    short = short_templates()
    m = measure(ds, split, t, s, factors=factors, users=False, limit=args.grid_items,
                templates=short)
    rows.append(row(f"items x{args.grid_items} short", t, s, m, base))
    m = measure(ds, split, t, s, factors=factors, items=False, limit=args.grid_items // 2,
                templates=short)
    rows.append(row(f"users x{args.grid_items // 2} short", t, s, m, base))
    print("\n".join(format_table(HEAD, rows[-2:], digits=2).splitlines()[-2:]), flush=True)
    items = measure(ds, split, t, s, factors=factors, users=False, limit=args.items or None)
    rows.append(row("individual items", t, s, items, base))
    users = measure(ds, split, t, s, factors=factors, items=False, limit=args.users or None)
    rows.append(row("individual users", t, s, users, base))
    coll = measure(ds, split, t, s, factors=factors, items=False, mode="collective",
                   n_clusters=args.clusters)
    rows.append(row("collective users", t, s, coll, base))
    inc = measure(ds, split, t, s, factors=factors, items=False, mode="incremental",
                  limit=args.incremental_users, partition_size=args.partition_size)
    rows.append(row("incremental users", t, s, inc, base))
    print()
    print(format_table(HEAD, rows, digits=2))

    per_item = items["llm"] / items["entities"]
    per_user = users["llm"] / users["entities"]
    full = FULL_ITEMS * per_item + FULL_USERS * per_user
    print(f"\nindividual, all {FULL_ITEMS} items + {FULL_USERS} users: "
          f"{'measured' if not (args.items or args.users) else 'extrapolated'} "
          f"{full / 60:.1f} min ({per_item:.2f} s/item, {per_user:.2f} s/user)")
    print(f"collective, {coll['entities']} users in {coll['calls']} calls: "
          f"{coll['wall'] / 60:.1f} min end to end (items are shared with individual)")
    print(f"incremental: {inc['calls'] / max(inc['entities'], 1):.1f} calls per user "
          f"(partitions of {args.partition_size} + folds)")


if __name__ == "__main__":
    main()
