"""Simulated-user evaluation of a strategy: episodes, resumable JSONL, metrics.

One episode per test user of the run's leave-one-out split: a :class:`SimulatedUser` holds the
user's real test item as its hidden target; the agent gets the user's known history (training +
validation events, the history the project's test protocol ranks from) and the user's words.
A hit is judged by item id (the target among the recommended ids), never by matching text.

``out/episodes.jsonl`` gets one line per finished episode, appended and flushed at once, so an
interrupted evaluation resumes where it stopped; ``out/config.json`` pins the settings (a rerun
with other settings is refused); ``metrics.json`` and ``transcripts.jsonl`` (one line per
utterance) are rewritten atomically at the end. Metrics (InteRecAgent's): Hit@t = share of
users whose target was recommended within t turns; AT = average turns with a miss counted as
``max_turns + 1``; leaks flagged by the :class:`LeakChecker` (must be 0); tool calls; time.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._io import atomic_write_text, write_json
from ..data import Dataset, Split
from ..errors import LlmrecError
from ._bus import CandidateBus
from ._catalog import Catalog
from ._memory import EntityMemory
from ._messages import Recommend, UserReply, parse_reply, render
from ._policy import ChatState, Strategy
from ._simulator import CheckedUser, LeakChecker, SimulatedUser
from ._tools import ChatContext, Retriever

if TYPE_CHECKING:
    from ..models import Recommender

log = logging.getLogger(__name__)


@dataclass
class ChatWorld:
    """A trained run's catalogue, retrieval model and split: what episodes are played over."""

    dataset: Dataset
    split: Split
    catalog: Catalog
    retriever: Retriever
    source: str = ""
    knowledge: dict[str, str] = field(default_factory=dict)   # raw item id -> stored LLM text
    _histories: dict[str, list[int]] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_run(cls, run_dir: str | Path, *, kg: bool = False) -> ChatWorld:
        from ..runs import open_run

        from ..knowledge import stored_item_knowledge

        run = open_run(run_dir)
        world = cls.from_parts(run.dataset, run.split, run.model, kg=kg, source=str(run_dir))
        world.knowledge = stored_item_knowledge(run.dataset.name)   # {} when none was made
        return world

    @classmethod
    def from_parts(cls, dataset: Dataset, split: Split, model: Recommender, *,
                   kg: bool = False, source: str = "") -> ChatWorld:
        return cls(dataset, split, Catalog.from_dataset(dataset, kg=kg), Retriever(model),
                   source)

    def known_history(self, user: str) -> list[int] | None:
        """The known history of test user ``user`` (as in :meth:`test_users`), None for a user
        who is not one; the table is built on first use."""
        if self._histories is None:
            self._histories = {u: h for u, h, _ in self.test_users()}
        h = self._histories.get(user)
        return None if h is None else list(h)

    def test_users(self) -> list[tuple[str, list[int], int]]:
        """``(raw user id, known history, target)`` per test case, in user order."""
        cases = self.split.test_cases()
        return [(self.dataset.users.id(int(u)), cases.history(c).tolist(),
                 int(cases.targets(c)[0])) for c, u in enumerate(cases.users)]


def sample_users(world: ChatWorld, n: int, seed: int = 0) -> list[str]:
    """A fixed sample of ``n`` test users (raw ids, sorted), drawn with ``seed``."""
    ids = [u for u, _, _ in world.test_users()]
    if n > len(ids):
        raise LlmrecError(f"--users {n}: the split has only {len(ids)} test users")
    pick = np.random.default_rng(seed).choice(len(ids), size=n, replace=False)
    return [ids[i] for i in sorted(pick)]


def run_episode(world: ChatWorld, strategy: Strategy, user: str, history: list[int],
                target: int, *, max_turns: int = 5, k: int = 10, seed: int = 0,
                df: Counter[str] | None = None, memory: EntityMemory | None = None,
                session: str = "s1", max_values: int | None = None) -> dict[str, Any]:
    """Play one conversation; returns its JSON record (see the module docstring). With
    ``memory``, the conversation starts from what the user said in earlier sessions (items
    rejected stay excluded, stated attribute values are known) and what it says is stored."""
    cat = world.catalog
    start = time.perf_counter()
    checker = LeakChecker.for_item(cat, target, df)
    sim = SimulatedUser(cat, target, history, max_turns=max_turns, seed=seed,
                        max_values=max_values, avoid=set(checker.words))
    checked = CheckedUser(sim, checker)
    ctx = ChatContext(cat, world.retriever, CandidateBus.all_items(cat.n_items), list(history),
                      knowledge=world.knowledge.get if world.knowledge else None)
    state = ChatState(ctx, k=k, max_turns=max_turns)
    if memory is not None:
        recall(memory, user, state)
    transcript: list[dict[str, Any]] = []
    turn_seconds: list[float] = []
    hit_turn = None
    while state.turn < max_turns and not checked.done:
        n_calls, n_llm, n_plans = len(ctx.calls), len(state.llm_calls), len(state.plans)
        repairs, fallbacks = state.repairs, state.fallbacks
        t0 = time.perf_counter()
        action = strategy.act(state)
        turn_seconds.append(time.perf_counter() - t0)
        text = render(action, cat)
        items = list(action.items) if isinstance(action, Recommend) else []
        turn = state.turn + 1
        llm = state.llm_calls[n_llm:]
        transcript.append({"turn": turn, "speaker": "agent", "text": text,
                           "tool_calls": [{"tool": t, "before": b, "after": a, "ok": ok}
                                          for t, b, a, ok in ctx.calls[n_calls:]],
                           "items": items, "seconds": round(turn_seconds[-1], 4),
                           "llm_calls": len(llm),
                           "tokens": sum(c["prompt_tokens"] + c["completion_tokens"]
                                         for c in llm),
                           "plans": state.plans[n_plans:],
                           "repaired": state.repairs > repairs,
                           "fallback": state.fallbacks > fallbacks})
        if hit_turn is None and cat.item_ids[target] in items:
            hit_turn = turn
        said = checked.reply(text)
        transcript.append({"turn": turn, "speaker": "user", "text": said, "tool_calls": [],
                           "items": []})
        reply = parse_reply(said)
        state.observe(action, reply)
        if memory is not None:
            memory.record(user, session, turn, memory_entries(action, reply))
    calls = Counter(t for t, _, _, _ in ctx.calls)
    return {"user": user, "target": cat.item_ids[target], "hit": hit_turn is not None,
            "hit_turn": hit_turn, "turns": hit_turn or max_turns + 1,
            "leaks": len(checked.leaks), "leak_texts": [t for _, t, _ in checked.leaks],
            "tool_calls": dict(sorted(calls.items())),
            "failed_tool_calls": sum(1 for c in ctx.calls if not c[3]),
            "llm_calls": len(state.llm_calls),
            "failed_llm_calls": sum(1 for c in state.llm_calls if not c["ok"]),
            "prompt_tokens": sum(c["prompt_tokens"] for c in state.llm_calls),
            "completion_tokens": sum(c["completion_tokens"] for c in state.llm_calls),
            "repairs": state.repairs, "fallbacks": state.fallbacks,
            "turn_seconds": [round(x, 4) for x in turn_seconds],
            "seconds": round(time.perf_counter() - start, 4), "transcript": transcript}


def recall(memory: EntityMemory, user: str, state: ChatState) -> None:
    """Start a conversation from memory: rejected items excluded, liked values known."""
    cat = state.ctx.catalog
    state.ctx.rejected |= {cat.index(i) for i in memory.items(user, "dislike")
                           if i in cat.item_ids}
    for attr, values in memory.attributes(user).items():
        liked = tuple(sorted(v for v, s in values.items() if s == "like"))
        if liked and attr in cat.attrs:
            state.known[attr] = liked
            state.asked.add(attr)


def memory_entries(action: Any, reply: UserReply) -> list[tuple[str, str, str, str]]:
    """What one turn teaches the entity memory: rejected items (dislike), stated attribute
    values (like)."""
    out: list[tuple[str, str, str, str]] = []
    if isinstance(action, Recommend) and reply.kind == "reject":
        out += [("item", "-", i, "dislike") for i in action.items]
    for attribute, values in reply.stated():
        out += [("attribute", attribute, v, "like") for v in values]
    return out


def _settings(strategy: Strategy) -> dict[str, Any]:
    if callable(getattr(strategy, "settings", None)):
        return strategy.settings()  # type: ignore[attr-defined]
    return asdict(strategy) if is_dataclass(strategy) else {"name": strategy.name}


def summarize(episodes: Sequence[dict[str, Any]], max_turns: int) -> dict[str, Any]:
    """Hit@t for t = 1..max_turns, average turns, leaks, tool calls, time."""
    n = len(episodes)
    if not n:
        return {"users": 0}
    hits = [e["hit_turn"] for e in episodes]
    calls: Counter[str] = Counter()
    for e in episodes:
        calls.update(e["tool_calls"])
    return {
        "users": n,
        "hit": {str(t): sum(1 for h in hits if h is not None and h <= t) / n
                for t in range(1, max_turns + 1)},
        "average_turns": float(np.mean([e["turns"] for e in episodes])),
        "leaks": sum(e["leaks"] for e in episodes),
        "tool_calls_per_dialogue": {t: c / n for t, c in sorted(calls.items())},
        "failed_tool_calls": sum(e["failed_tool_calls"] for e in episodes),
        **_cost(episodes),
        "episode_seconds": float(sum(e["seconds"] for e in episodes)),
    }


def _cost(episodes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """LLM calls, tokens, repairs and fallbacks per dialogue; turn latency median and p90
    (episodes written before these fields existed count as zero LLM use)."""
    n = len(episodes)
    per = {key: sum(e.get(key, 0) for e in episodes) / n
           for key in ("llm_calls", "prompt_tokens", "completion_tokens", "repairs", "fallbacks")}
    turns = np.array([s for e in episodes for s in e.get("turn_seconds", [])], dtype=float)
    return {"llm_per_dialogue": per,
            "failed_llm_calls": sum(e.get("failed_llm_calls", 0) for e in episodes),
            "turn_seconds": {"median": float(np.median(turns)) if len(turns) else None,
                             "p90": float(np.percentile(turns, 90)) if len(turns) else None,
                             "turns": int(len(turns))}}


def _read_done(path: Path) -> list[dict[str, Any]]:
    """Episodes already written; a torn last line (a crash mid-write) is dropped."""
    if not path.exists():
        return []
    done, good = [], 0
    raw = path.read_bytes()
    for line in raw.splitlines(keepends=True):
        try:
            if not line.endswith(b"\n"):
                raise ValueError("torn line")
            done.append(json.loads(line))
            good += len(line)
        except ValueError:
            log.warning("%s: dropping an unfinished last line", path)
            break
    if good != len(raw):
        with open(path, "r+b") as f:
            f.truncate(good)
    return done


def evaluate(world: ChatWorld, strategy: Strategy, users: int | Sequence[str] = 200, *,
             max_turns: int = 5, k: int = 10, out: str | Path | None = None, seed: int = 0,
             max_values: int | None = None, memory: EntityMemory | None = None,
             session: str = "s1", progress: bool = True) -> dict[str, Any]:
    """Play one episode per user (a count draws a fixed sample with ``seed``); with ``out``,
    append episodes to ``out/episodes.jsonl`` and skip users already there. ``max_values``:
    the simulated user names at most that many genres (all by default). With ``memory``, each
    conversation starts from the user's earlier sessions and is stored as ``session`` (a user
    replayed after an interruption first forgets that session). Returns metrics."""
    if max_turns < 1 or k < 1:
        raise LlmrecError(f"max_turns and k must be at least 1 (got {max_turns}, {k})")
    chosen = sample_users(world, users, seed) if isinstance(users, int) else list(users)
    cases = {u: (h, t) for u, h, t in world.test_users()}
    unknown = [u for u in chosen if u not in cases]
    if unknown:
        raise LlmrecError(f"user {unknown[0]!r} has no test case in {world.dataset.name}")
    config = {"strategy": strategy.name, "settings": _settings(strategy), "users": chosen,
              "max_turns": max_turns, "k": k, "seed": seed, "max_values": max_values,
              "memory": None if memory is None else {"path": str(memory.path),
                                                     "session": session},
              "source": world.source,
              "catalog_attributes": list(world.catalog.attributes)}
    done: list[dict[str, Any]] = []
    path = None
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        cfg_path = out / "config.json"
        if cfg_path.exists():
            old = json.loads(cfg_path.read_text())
            if old != json.loads(json.dumps(config)):
                diff = sorted(k_ for k_ in config if old.get(k_) != json.loads(
                    json.dumps(config))[k_])
                raise LlmrecError(f"{out}: holds an evaluation with other settings "
                                  f"({', '.join(diff)} differ); use another --out")
        else:
            write_json(cfg_path, config)
        path = out / "episodes.jsonl"
        done = [e for e in _read_done(path) if e["user"] in set(chosen)]
    finished = {e["user"] for e in done}
    todo = [u for u in chosen if u not in finished]
    if finished:
        log.info("resuming: %d of %d users done", len(finished), len(chosen))
    df = world.catalog.title_df()
    start = time.perf_counter()
    from tqdm import tqdm

    fh = open(path, "a") if path is not None else None
    try:
        for u in tqdm(todo, desc=f"chat-eval {strategy.name}", disable=not progress or None):
            h, t = cases[u]
            if memory is not None:
                memory.forget(u, session)
            ep = run_episode(world, strategy, u, h, t, max_turns=max_turns, k=k, seed=seed,
                             df=df, max_values=max_values, memory=memory, session=session)
            done.append(ep)
            if fh is not None:
                fh.write(json.dumps(ep) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
    finally:
        if fh is not None:
            fh.close()
    order = {u: i for i, u in enumerate(chosen)}
    done.sort(key=lambda e: order[e["user"]])
    metrics = {**summarize(done, max_turns), "strategy": strategy.name,
               "settings": _settings(strategy), "max_turns": max_turns, "k": k, "seed": seed,
               "max_values": max_values, "memory": config["memory"],
               "wall_seconds_this_run": round(time.perf_counter() - start, 2),
               "resumed_users": len(finished)}
    if out is not None:
        write_json(out / "metrics.json", metrics)
        lines = [json.dumps({"dialogue": f"{e['user']}-{strategy.name}-{seed}",
                             "user": e["user"], **u_})
                 for e in done for u_ in e["transcript"]]
        atomic_write_text(out / "transcripts.jsonl", "".join(x + "\n" for x in lines))
    return metrics
