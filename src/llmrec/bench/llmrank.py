"""LLMRank: an LLM as a zero-shot ranker of a retrieval model's candidates, evaluated offline.

Hou et al., "Large Language Models are Zero-Shot Rankers for Recommender Systems", ECIR 2024
(arXiv:2305.08845). The LLM reads a user's recent history (titles, in time order) and a list
of candidate items and writes a ranking; the paper's *bootstrapping* ranks the same candidates
B times in different random orders and sums the scores, against the LLM's position bias.

Why a benchmark over a run folder and not ``llmrec train --model llmrank``: a zero-shot ranker
has nothing to train, and it cannot score the full catalogue (one prompt holds ~20 candidates),
so it does not fit the :class:`~llmrec.models.Recommender` contract (``score`` over every item)
without pretending. What it is, honestly, is a *re-ranking evaluation* of a trained retrieval
run: ``llmrec bench llmrank RUN_DIR`` (:func:`run_llmrank`) reads the run's data, split and
model and writes a report beside a resumable per-user log.

Protocol (each test user of the run's split, or a seeded subset of them):

- **history**: the user's TRAINING events only (the leakage rule; through
  :class:`~llmrec.knowledge.TrainHistory`, whose check runs on every prompt), the most recent
  ``max_history`` titles, oldest first. The validation item is not shown, although the run's
  own full-ranking test metric lets SASRec see it.
- **candidates**: the test item plus the ``n - 1`` items the retrieval model scores highest
  from the same training history, excluding the user's training items and held-out
  (valid/test) items. The retrieval model's own order of these ``n`` candidates (the test item
  placed by its score) is the baseline; a seeded random order is the control.
- **prompt**: the paper's sequential prompt (``templates/llmrank.toml``, versioned), candidates
  as ``[k] Title (year)`` in an order shuffled per (seed, user, round).
- **answer**: the top ``answer_length`` (template, default 10) of the ``n`` candidates, best
  first; with the local backend llama.cpp is held to a GBNF grammar of that many candidate
  numbers separated by commas; ``constrain="json"`` asks for ``{"ranking": [ints]}``
  (``response_format``); ``"none"`` (default for OpenAI-compatible servers) is free text.
  Every answer goes through one parser (:mod:`._rankparse`): numbers, ``[k]`` or titles.
- **aggregation**: Borda points (rank r of n earns n - r; ``"rr"``: 1 / (r + 1)) summed over
  the B rounds; candidates no round named keep the retrieval order after the named ones, and a
  user none of whose rounds named a candidate falls back to the retrieval order (counted).
- **metrics**: candidate-based NDCG@10, Recall@1/5/10 and MRR over 1 positive + n - 1 retrieved
  negatives -- *not* full-ranking numbers and not comparable with the run's metrics.json.

Deviations from the paper: a small default history (10, for a 135M model's speed and context);
the answer lists candidate numbers rather than titles (parseable from a small model), and only
the top 10 of 20 (the metrics look at the top 10; on a CPU every answer token costs ~0.1 s); Borda
aggregation over partial lists with the retrieval order breaking ties; the paper's candidates
mix retrieval models, here one run's model gives all negatives.
"""

from __future__ import annotations

import json
import logging
import os
import time
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_write_text, content_hash, corrupt_file, read_json_file, write_json
from ..errors import ConfigError, DataError
from ..knowledge import Rendered, TrainHistory
from ..llm import Backend, Request
from ._rankparse import (Parsed, aggregate_rankings, expected_random, mean_metrics,
                         normalise_title, parse_ranking, rank_metrics)

log = logging.getLogger(__name__)
CONSTRAINTS = ("grammar", "json", "none")
AGGREGATIONS = ("borda", "rr")
LABEL = "candidate-based: 1 positive + {k} retrieved negatives per user (not full ranking)"


@dataclass
class LLMRankConfig:
    """Settings of one LLMRank evaluation (what goes into the results' identity)."""

    candidates: int = 20
    bootstrap: int = 3
    users: int | None = None         # None: every test user; N: a seeded subset of N
    seed: int = 42
    aggregation: str = "borda"
    constrain: str | None = None     # None: grammar for the local backend, none otherwise
    max_history: int | None = None   # None: the template's [params] max_history
    batch_users: int = 4             # users per LLM batch (results are saved after each)

    def __post_init__(self) -> None:
        if not 2 <= self.candidates <= 99:
            raise ConfigError(f"candidates must be in 2..99, not {self.candidates}")
        if self.bootstrap < 1 or self.batch_users < 1:
            raise ConfigError(f"bootstrap and batch_users must be >= 1, not "
                              f"{self.bootstrap}, {self.batch_users}")
        if self.users is not None and self.users < 1:
            raise ConfigError(f"users must be >= 1, not {self.users}")
        if self.max_history is not None and self.max_history < 1:
            raise ConfigError(f"max_history must be >= 1, not {self.max_history}")
        if self.aggregation not in AGGREGATIONS:
            raise ConfigError(f"aggregation must be one of {AGGREGATIONS}, not "
                              f"{self.aggregation!r}")
        if self.constrain is not None and self.constrain not in CONSTRAINTS:
            raise ConfigError(f"constrain must be one of {CONSTRAINTS}, not {self.constrain!r}")


# -- the prompt template ---------------------------------------------------------------------
@dataclass(frozen=True)
class RankTemplate:
    """The versioned prompt file (``templates/llmrank.toml``; see its comments)."""

    id: str
    version: int
    system: str
    user: str
    max_tokens: int = 96
    temperature: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    local_sampling: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    def request(self, fields: dict[str, Any], n: int, constrain: str, local: bool) -> Request:
        try:
            system, user = self.system.format_map(fields), self.user.format_map(fields)
        except KeyError as e:
            raise ConfigError(f"{self.source}: unknown placeholder {e}; available: "
                              f"{', '.join(sorted(fields))}") from None
        extra: dict[str, Any] = dict(self.local_sampling) if local else {}
        schema = None
        k = fields["k"]
        if constrain == "grammar":
            extra["grammar"] = number_grammar(n, k)
        elif constrain == "json":
            schema = {"type": "object", "required": ["ranking"], "additionalProperties": False,
                      "properties": {"ranking": {"type": "array", "minItems": 1, "maxItems": k,
                                                 "items": {"type": "integer", "minimum": 1,
                                                           "maximum": n}}}}
        return Request.chat(user, system=system, max_tokens=self.max_tokens,
                            temperature=self.temperature, json_schema=schema, extra=extra)


def number_grammar(n: int, k: int | None = None) -> str:
    """GBNF: exactly ``k`` (default ``n``) candidate numbers (1..n) separated by ", " (repeats
    are possible; the parser keeps each number's first place)."""
    k = n if k is None else k
    nums = " | ".join(f'"{i}"' for i in range(n, 0, -1))    # longest first: "12" before "1"
    return f'root ::= num (", " num){{{k - 1}}}\nnum ::= {nums}\n'


def read_rank_template(path: str | Path | None = None) -> RankTemplate:
    """The packaged template, or a TOML file with the same keys; one-line errors."""
    if path is None:
        source = "llmrec/bench/templates/llmrank.toml"
        text = (resources.files("llmrec.bench") / "templates" / "llmrank.toml").read_text("utf-8")
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{source}: template file not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{source}: cannot read template ({e})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: invalid TOML ({e})") from None
    known = set(RankTemplate.__dataclass_fields__) - {"source"}
    if unknown := sorted(set(raw) - known):
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}")
    if missing := sorted({"id", "version", "system", "user"} - set(raw)):
        raise ConfigError(f"{source}: missing key {missing[0]!r}")
    try:
        return RankTemplate(**raw, source=source)
    except TypeError as e:
        raise ConfigError(f"{source}: {e}") from None


# -- candidates ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidates:
    """One user's candidates in the retrieval model's order (best first); ``positive`` is the
    test item, at 0-based ``retrieval_rank`` of ``items``."""

    user: int
    items: np.ndarray            # (n,) item indices
    positive: int
    retrieval_rank: int


def retrieve_candidates(model: Any, history: TrainHistory, users: Sequence[int],
                        positives: Sequence[int], n: int) -> list[Candidates]:
    """The positive plus the model's top ``n - 1`` from each user's training history, with the
    user's training and held-out items excluded from the negatives."""
    hs = [history.items(u) for u in users]
    scores = model.score(hs, np.asarray(users, dtype=np.int64)).float()      # (B, n_items)
    out = []
    for row, u, pos, h in zip(scores, users, positives, hs):
        masked = row.clone()
        banned = np.concatenate([h, history.held_out(u), [pos]]).astype(np.int64)
        masked[torch.as_tensor(banned)] = float("-inf")
        neg = torch.sort(masked, descending=True, stable=True).indices[:n - 1].numpy()
        if len(neg) < n - 1 or not torch.isfinite(masked[torch.as_tensor(neg)]).all():
            raise DataError(f"user index {u}: fewer than {n - 1} unseen items to retrieve")
        rank = int((row[torch.as_tensor(neg)] > row[pos]).sum())   # ties: the positive first
        items = np.insert(neg, rank, pos)
        out.append(Candidates(int(u), items.astype(np.int64), int(pos), rank))
    return out


# -- prompts ---------------------------------------------------------------------------------
def history_block(history: TrainHistory, user: int, last: int) -> Rendered:
    """The user's last ``last`` training titles, oldest first, one per line."""
    items = history.items(user)[-last:]
    rendered = Rendered("\n".join(history.titles[i] for i in items.tolist()),
                        tuple(int(i) for i in items))
    history.check([user], rendered)      # LeakError if a held-out item slipped in
    return rendered


def presented_order(seed: int, user: int, rnd: int, n: int) -> np.ndarray:
    """The candidate order shown in round ``rnd`` (a permutation of 0..n-1, seeded)."""
    return np.random.default_rng([seed, user, rnd]).permutation(n)


def user_requests(template: RankTemplate, history: TrainHistory, cands: Candidates,
                  cfg: LLMRankConfig, constrain: str, local: bool, scenario: str
                  ) -> list[tuple[np.ndarray, Request]]:
    """The B (presented order, request) pairs of one user; the history prefix is shared."""
    last = cfg.max_history or int(template.params.get("max_history", 10))
    hist = history_block(history, cands.user, last)
    n = len(cands.items)
    k = min(int(template.params.get("answer_length", n)), n)
    out = []
    for rnd in range(cfg.bootstrap):
        order = presented_order(cfg.seed, cands.user, rnd, n)
        lines = [f"[{k + 1}] {history.titles[cands.items[c]]}" for k, c in enumerate(order)]
        fields = {"scenario": scenario, "n": n, "k": k, "history": hist.text,
                  "candidates": "\n".join(lines)}
        out.append((order, template.request(fields, n, constrain, local)))
    return out


def rank_user(cands: Candidates, rounds: list[tuple[np.ndarray, Request, Any]],
              titles: Sequence[str], method: str) -> dict[str, Any]:
    """Parse the B answers of one user and aggregate them into the final order. Each round's
    record keeps the prompt (for the leakage test over every prompt) and the answer."""
    n = len(cands.items)
    rankings, info = [], []
    for order, request, result in rounds:
        shown = [titles[cands.items[c]] for c in order]
        prompt = [m["content"] for m in request.messages]
        if not result.ok:
            rankings.append([])
            info.append({"prompt": prompt, "failure": result.kind, "message": result.message,
                         "named": 0, "invalid": 0, "seconds": result.seconds})
            continue
        parsed = parse_ranking(result.text, shown)
        rankings.append([int(order[p]) for p in parsed.order])     # candidate indices
        info.append({"prompt": prompt, "text": result.text, "named": len(parsed.order),
                     "order": [int(o) for o in order], "invalid": parsed.invalid,
                     "prompt_tokens": result.prompt_tokens,
                     "completion_tokens": result.completion_tokens, "seconds": result.seconds})
    final = aggregate_rankings(rankings, n, list(range(n)), method)
    return {"llm_rank": final.index(cands.retrieval_rank), "rounds": info,
            "rankings": rankings, "final": final}


# -- the run ---------------------------------------------------------------------------------
def run_llmrank(run_dir: str | Path, llm: Backend, cfg: LLMRankConfig,
                output: str | Path, *, template: str | Path | None = None,
                progress: bool = True, command: str = "") -> dict[str, Any]:
    """Rank the candidates of the run's test users with ``llm``; resumable; returns the report
    (also written to ``output/report.json`` and ``report.md``)."""
    from tqdm import tqdm

    from ..runs import open_run

    tpl = read_rank_template(template)
    run = open_run(run_dir)
    ds = run.dataset
    if "title" not in ds.item_features.columns:
        raise DataError(f"{ds.name} has no item titles (item columns: "
                        f"{', '.join(ds.item_features.columns) or 'none'}); LLMRank prompts "
                        "name items by title")
    history = TrainHistory(ds, run.split, scenario="movie" if ds.name.startswith("ml-")
                           else "item")
    local = getattr(llm, "name", "") == "local"
    constrain = cfg.constrain or ("grammar" if local else "none")
    users, positives = evaluation_users(run.split, history, cfg)
    out = Path(output).expanduser()
    answer_length = min(int(tpl.params.get("answer_length", cfg.candidates)), cfg.candidates)
    settings = {"config": asdict(cfg) | {"constrain": constrain},
                "answer_length": answer_length, "template": tpl.ref,
                "template_hash": content_hash([tpl.system, tpl.user, tpl.params,
                                              tpl.local_sampling, tpl.max_tokens]),
                "llm": llm.identity(), "run": str(Path(run_dir).expanduser().resolve()),
                "run_config_hash": run.config.hash(), "model": run.config.model}
    done = _open_results(out, settings)
    ids = [ds.users.id(u) for u in users]
    todo = [(u, p) for u, p in zip(users, positives) if ds.users.id(u) not in done]
    log.info("llmrank: %d users (%d done before), %d candidates, %d rounds each, %s",
             len(users), len(users) - len(todo), cfg.candidates, cfg.bootstrap, tpl.ref)
    bar = tqdm(total=len(users), initial=len(users) - len(todo), unit="user",
               desc="llmrank", disable=not progress, dynamic_ncols=True)
    try:
        for start in range(0, len(todo), cfg.batch_users):
            batch = todo[start:start + cfg.batch_users]
            t0 = time.perf_counter()
            cands = retrieve_candidates(run.model, history, [u for u, _ in batch],
                                        [p for _, p in batch], cfg.candidates)
            plans = [user_requests(tpl, history, c, cfg, constrain, local, history.scenario)
                     for c in cands]
            results = iter(llm.generate([r for plan in plans for _, r in plan], progress=False))
            wall = (time.perf_counter() - t0) / len(batch)
            for c, plan in zip(cands, plans):
                rounds = [(order, req, next(results)) for order, req in plan]
                rec = rank_user(c, rounds, history.titles, cfg.aggregation)
                rng = np.random.default_rng([cfg.seed, c.user, 10_000])
                rec.update({"user": ds.users.id(c.user), "positive": ds.items.id(c.positive),
                            "candidates": [ds.items.id(i) for i in c.items],
                            "retrieval_rank": c.retrieval_rank,
                            "random_rank": int(np.flatnonzero(
                                rng.permutation(cfg.candidates) == c.retrieval_rank)[0]),
                            "seconds": wall})
                _append(out / "results.jsonl", rec)
                done[rec["user"]] = rec
                bar.update(1)
            # the report so far (a stopped run still leaves one over its finished users)
            report = _write_report(out, [done[i] for i in ids if i in done], cfg, settings,
                                   command)
    finally:
        bar.close()
    report = _write_report(out, [done[i] for i in ids], cfg, settings, command)
    report["paths"] = [str(out / "report.md"), str(out / "report.json"),
                       str(out / "results.jsonl")]
    return report


def _write_report(out: Path, records: list[dict[str, Any]], cfg: LLMRankConfig,
                  settings: dict[str, Any], command: str) -> dict[str, Any]:
    report = summarize(records, cfg.candidates, settings, command=command)
    write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", report_markdown(report))
    return report


def report_from_folder(output: str | Path, command: str = "") -> dict[str, Any]:
    """Rewrite the report of an output folder over the users it has finished (no LLM): for a
    run that was stopped, or is still going."""
    out = Path(output).expanduser()
    fix = f"rerun llmrec bench llmrank into {out}, or delete it"
    if not (out / "settings.json").exists():
        raise ConfigError(f"{out}: no LLMRank results here (settings.json missing)")
    settings = read_json_file(out / "settings.json", fix)
    done = _open_results(out, settings, repair=False)     # a running job may be appending
    if not done:
        raise ConfigError(f"{out}: no finished user yet")
    if not command and (out / "report.json").exists():
        command = read_json_file(out / "report.json", fix).get("command", "")
    cfg = LLMRankConfig(**settings["config"])
    report = _write_report(out, list(done.values()), cfg, settings, command)
    report["paths"] = [str(out / "report.md"), str(out / "report.json"),
                       str(out / "results.jsonl")]
    return report


def evaluation_users(split: Any, history: TrainHistory, cfg: LLMRankConfig
               ) -> tuple[list[int], list[int]]:
    """Test users with a training history, each with their (first) test item; a seeded subset
    of ``cfg.users`` of them (in user order) when asked."""
    cases = split.test_cases()
    lengths = history.train.lengths()
    users, positives = [], []
    for k in range(len(cases)):
        u, targets = int(cases.users[k]), cases.targets(k)
        if len(targets) and lengths[u] > 0:
            users.append(u)
            positives.append(int(targets[0]))
    if not users:
        raise DataError("the run's split has no test user with a training history")
    if cfg.users is not None and cfg.users < len(users):
        keep = np.sort(np.random.default_rng(cfg.seed).choice(len(users), cfg.users,
                                                              replace=False))
        users, positives = [users[i] for i in keep], [positives[i] for i in keep]
    return users, positives


def _open_results(out: Path, settings: dict[str, Any], repair: bool = True
                  ) -> dict[str, dict[str, Any]]:
    """Finished users of an earlier run with the same settings (a cut last line is dropped,
    and with ``repair`` removed from the file)."""
    out.mkdir(parents=True, exist_ok=True)
    fix = f"delete {out} to start over"
    path, saved = out / "results.jsonl", out / "settings.json"
    if saved.exists():
        old = read_json_file(saved, fix)
        if old != json.loads(json.dumps(settings, default=str)):
            diff = sorted(k for k in settings if old.get(k) != json.loads(
                json.dumps(settings[k], default=str)))
            raise ConfigError(f"{out}: holds results of other settings ({', '.join(diff)}); "
                              "choose another --out or delete it")
    elif path.exists():
        raise ConfigError(f"{path}: results without settings.json; {fix}")
    else:
        write_json(saved, settings)
    done: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return done
    text = path.read_text(encoding="utf-8")
    lines, cut = text.split("\n"), not text.endswith("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as e:
            if i == len(lines) - 1 and cut:
                if not repair:
                    break
                log.warning("%s: dropping a cut last line (interrupted write)", path)
                atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                                  for r in done.values()))
                break
            raise corrupt_file(path, f"line {i + 1}: {e}", fix) from None
        done[rec["user"]] = rec
    return done


def _append(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


# -- the report ------------------------------------------------------------------------------
def summarize(records: list[dict[str, Any]], n: int, settings: dict[str, Any],
              command: str = "") -> dict[str, Any]:
    """Metrics of LLMRank, the retrieval order and random orders; parse and cost statistics."""
    rounds = [r for rec in records for r in rec["rounds"]]
    ok = [r for r in rounds if "failure" not in r]
    named = [r["named"] for r in ok]
    k = settings.get("answer_length", n)          # how many candidates an answer should rank
    model = settings["model"]
    first = [aggregate_rankings(rec["rankings"][:1], n, list(range(n))).index(
        rec["retrieval_rank"]) for rec in records]
    # position bias: where the top pick of each answer was shown (1-based; 10.5 = no bias)
    top_shown = [r["order"].index(ranking[0]) + 1 for rec in records
                 for r, ranking in zip(rec["rounds"], rec["rankings"]) if ranking]
    llm_name = settings["llm"].get("model", "?")
    rows = {f"llmrank ({llm_name})": mean_metrics([r["llm_rank"] for r in records]),
            f"llmrank, first order only ({llm_name}, B=1)": mean_metrics(first),
            f"retrieval order ({model})": mean_metrics([r["retrieval_rank"] for r in records]),
            "random order (seeded)": mean_metrics([r["random_rank"] for r in records]),
            "random order (expected)": expected_random(n)}
    seconds = sum(r.get("seconds", 0.0) for r in rounds)
    wall = sum(rec.get("seconds", 0.0) for rec in records)
    return {
        "title": f"LLMRank over {model} candidates, {len(records)} users",
        "label": LABEL.format(k=n - 1), "command": command, "settings": settings,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "users": len(records), "metrics": rows,
        # the retrieval model ranks the positive last among its own top n-1 unless it is in
        # them: its candidate-based score is its full-ranking hit rate within the top n-1
        "positive_above_a_negative": sum(1 for rec in records if rec["retrieval_rank"] < n - 1),
        "parse": {
            "rounds": len(rounds), "failed": dict(Counter(r["failure"] for r in rounds
                                                          if "failure" in r)),
            "no_candidate": sum(1 for r in ok if r["named"] == 0),
            "partial": sum(1 for r in ok if 0 < r["named"] < k),
            "complete": sum(1 for r in ok if r["named"] >= k),
            "mean_named": float(np.mean(named)) if named else 0.0,
            "invalid_numbers": sum(r["invalid"] for r in ok),
            "users_all_rounds_empty": sum(1 for rec in records
                                          if all(r["named"] == 0 for r in rec["rounds"])),
            "top_pick_shown_at_mean": float(np.mean(top_shown)) if top_shown else None,
            "top_pick_shown_first": sum(1 for t in top_shown if t == 1),
            "llm_equals_retrieval_order": sum(1 for rec in records
                                              if rec["final"] == list(range(n))),
        },
        "cost": {"calls": len(rounds),
                 "prompt_tokens": sum(r.get("prompt_tokens", 0) for r in ok),
                 "completion_tokens": sum(r.get("completion_tokens", 0) for r in ok),
                 "llm_seconds": seconds, "wall_seconds": wall,
                 "seconds_per_user": wall / max(len(records), 1)},
    }


def report_markdown(report: dict[str, Any]) -> str:
    cols = ["ndcg@10", "recall@1", "recall@5", "recall@10", "mrr"]
    lines = [f"# {report['title']}", "", f"Metrics are {report['label']}.", "",
             "| ranking | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in report["metrics"].items():
        lines.append(f"| {name} | " + " | ".join(f"{m.get(c, float('nan')):.4f}" for c in cols)
                     + " |")
    p, c = report["parse"], report["cost"]
    lines += ["", f"The retrieval model put the positive above at least one of its own "
              f"negatives for {report['positive_above_a_negative']} of {report['users']} users "
              "(for the rest its order puts the positive last).",
              "", f"Answers: {p['rounds']} calls, {sum(p['failed'].values())} failed "
              f"{p['failed'] or ''}, {p['no_candidate']} named no candidate, {p['partial']} "
              f"partial, {p['complete']} complete; {p['mean_named']:.1f} candidates named per "
              f"answer; {p['invalid_numbers']} numbers named no candidate; "
              f"{p['users_all_rounds_empty']} users fell back to the retrieval order; "
              f"{p['llm_equals_retrieval_order']} final lists equal the retrieval order. "
              f"Position bias: the top pick was shown at position "
              f"{p['top_pick_shown_at_mean'] or float('nan'):.1f} on average "
              f"({(report['settings']['config']['candidates'] + 1) / 2:.1f} = none), "
              f"first in {p['top_pick_shown_first']} of {p['rounds']} answers.",
              "", f"Cost: {c['calls']} LLM calls, {c['prompt_tokens']} prompt + "
              f"{c['completion_tokens']} completion tokens, {c['llm_seconds']:.0f} s in the LLM, "
              f"{c['seconds_per_user']:.2f} s per user (wall).", "",
              f"Command: `{report['command']}`", ""]
    return "\n".join(lines)
