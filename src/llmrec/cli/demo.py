"""``llmrec demo``: the main job on the embedded default data.

Fetches MovieLens-100K (GroupLens, else the copy in a PyPI wheel), trains Pop, GRU4Rec, SASRec and
BERT4Rec on the same leave-one-out split (two models at once, one thread each: ``--jobs``), and
prints a full-ranking results table, written also as JSON and Markdown. Then, for one user: the
best model's top 5, the local LLM's knowledge of that user and those items, and a bounded
LLM-as-recommender step (a few BIGRec LoRA steps, the generated title grounded to real items).
Finished runs are reused, so a second ``llmrec demo`` takes seconds.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from .._io import llmrec_home
from ..bench.seqrec import (compare, significance, significance_text, summarize, summary_table,
                            write_report)
from ..data import describe, fetch, load_dataset
from ..runs import open_run, recommend_user
from .._table import format_table
from ._common import non_negative_int, positive_int, seed_int

DEMO_MODELS = ("pop", "gru4rec", "sasrec", "bert4rec")
DEMO_LM_STEPS = 4               # BIGRec LoRA steps of 4 prompts each
# The demo's training budget keeps `make demo` under 10 minutes on 2 cores; the README's table
# trains to convergence (benchmarks/configs/ml-100k/*.toml).
# BERT4Rec gets no early stopping here: its validation score rises in plateaus, and patience 5
# stopped it at epoch 15, below popularity (measured 2026-11-23).
DEMO_BUDGET = {"gru4rec": ["model.epochs=30", "model.patience=5"],
               "sasrec": ["model.epochs=40", "model.patience=5"],
               "bert4rec": ["model.epochs=50", "model.patience=50"]}
# Relative training cost, to split the models into lanes that finish together (measured:
# BERT4Rec 271 s, SASRec 171 s, GRU4Rec 157 s, Pop 0 s on 2 idle cores, 2026-12-07).
DEMO_COST = {"pop": 0, "gru4rec": 16, "sasrec": 17, "bert4rec": 27}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="fetch ML-100K, train four models, print a results table")
    p.add_argument("--models", default=",".join(DEMO_MODELS),
                   help=f"comma-separated (default: {','.join(DEMO_MODELS)})")
    p.add_argument("--seed", type=seed_int, default=42)
    p.add_argument("--output", help="folder for results.json/.md (default: $LLMREC_HOME/demo)")
    p.add_argument("--user", default="196", help="user to show recommendations for")
    p.add_argument("--jobs", type=positive_int, default=min(2, os.cpu_count() or 1),
                   help="models trained at once, one thread each (default: 2, or 1 on one "
                        "core); 1 trains them one after another with progress bars")
    p.add_argument("--no-knowledge", action="store_true",
                   help="skip the LLM knowledge step (local SmolLM2 on that user and items)")
    p.add_argument("--lm-steps", type=non_negative_int, default=DEMO_LM_STEPS,
                   help=f"LoRA steps of the LLM-as-recommender step (BIGRec on SmolLM2-135M; "
                   f"default {DEMO_LM_STEPS}; 0 skips it)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    folder = fetch("ml-100k")
    info = describe(load_dataset("ml-100k"))
    print(f"MovieLens-100K: {info['interactions']:,} ratings, {info['users']} users, "
          f"{info['items']:,} items ({folder})")
    print("Protocol: 5-core, leave-one-out by time (ties: file order), full ranking over all "
          "items, items the user already rated masked; training early-stops on validation "
          f"NDCG@10. Seed {args.seed}.")
    print("Demo budget (the README's table trains longer: benchmarks/seqrec.py): "
          + ", ".join(f"{m} {' '.join(s.split('.', 1)[1] for s in DEMO_BUDGET[m])}"
                      for m in models if m in DEMO_BUDGET) + "\n")
    records = train_models(models, args.seed, args.jobs, quiet=args.quiet)
    out = Path(args.output) if args.output else llmrec_home() / "demo"
    json_path, md_path = write_report(out, records, "llmrec demo: sequential recommenders on "
                                      "MovieLens-100K", f"llmrec demo --seed {args.seed}")
    print(summary_table(summarize(records)))
    sig = significance_text(significance(records))
    if sig:
        print(f"\n{sig}")
    best = max(records, key=lambda r: r["test"]["ndcg@10"])
    run = open_run(best["run_dir"])
    recs = recommend_user(run, args.user, 5)
    print(f"\nTop 5 for user {args.user} by {best['model']}:")
    print(format_table(["rank", "title", "score"],
                       [[r["rank"], r["title"], r["score"]] for r in recs]))
    if not args.no_knowledge:
        knowledge_step(run, args.user, [r["item_id"] for r in recs], progress=not args.quiet)
    if args.lm_steps:
        lm_step(run, args.user, args.lm_steps, args.seed, progress=not args.quiet)
    print(f"\nresults: {json_path}  {md_path}")
    print(f"run folders: {Path(best['run_dir']).parent}   total {time.perf_counter() - t0:.0f} s")
    return 0


def lanes(models: list[str], jobs: int) -> list[list[str]]:
    """Split ``models`` into at most ``jobs`` lanes of about equal cost (longest first, each to
    the cheapest lane so far); a lane trains its models one after another."""
    out: list[list[str]] = [[] for _ in range(min(jobs, len(models)) or 1)]
    cost = [0] * len(out)
    for m in sorted(models, key=lambda m: -DEMO_COST.get(m, 20)):
        i = cost.index(min(cost))
        out[i].append(m)
        cost[i] += DEMO_COST.get(m, 20)
    return [lane for lane in out if lane]


def train_models(models: list[str], seed: int, jobs: int, quiet: bool = False,
                 dataset: str = "ml-100k", budget: dict[str, list[str]] | None = None
                 ) -> list[dict]:
    """One record per model, in the order given. With ``jobs`` > 1 the models train in that
    many processes at once with one torch thread each (small models gain little from a second
    thread, so two lanes nearly halve the wall time); progress is then one log line per epoch,
    prefixed by the model, instead of progress bars that would overwrite each other."""
    budget = DEMO_BUDGET if budget is None else budget
    if jobs == 1 or len(models) == 1:
        return [r for m in models for r in compare([m], dataset, [seed],
                                                   sets=budget.get(m, []), progress=not quiet)]
    groups = lanes(models, jobs)
    n = len(groups)
    with ProcessPoolExecutor(n, mp_context=get_context("spawn")) as pool:
        done = list(pool.map(_train_lane, groups, [seed] * n, [quiet] * n, [dataset] * n,
                             [budget] * n))
    by_model = {r["model"]: r for lane in done for r in lane}
    return [by_model[m] for m in models]


def _train_lane(models: list[str], seed: int, quiet: bool, dataset: str,
                budget: dict[str, list[str]]) -> list[dict]:
    """In a worker process: train ``models`` in turn on one thread, logging epochs. The
    thread count is not part of a run's configuration, so these runs are the ones a
    one-lane demo (or ``llmrec train`` with the same settings) would find and reuse."""
    import torch

    torch.set_num_threads(1)
    logger = logging.getLogger("llmrec")
    handler = logging.StreamHandler()
    handler.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    records = []
    for m in models:
        epochs = next((s.split("=")[1] for s in budget.get(m, []) if "epochs=" in s), "?")
        handler.setFormatter(logging.Formatter(f"[{m}, max {epochs} epochs] %(message)s"))
        records += compare([m], dataset, [seed], sets=budget.get(m, []), progress=False)
    return records


def knowledge_step(run, user: str, items: list[str], progress: bool = True) -> None:
    """The knowledge path on a bounded subset: the local LLM's knowledge of ``user`` (from
    their training history only) and of ``items`` -- factors first, then one call per entity,
    stored and reused like any ``llmrec knowledge generate`` run."""
    from ..knowledge import KnowledgeConfig, KnowledgeStore, generate_knowledge
    from ..llm import LLMError, make_backend

    print(f"\nLLM knowledge (KAR factorization prompting) for user {user} and the {len(items)} "
          "items above only -- a bounded subset; `llmrec knowledge generate` does every item "
          "and user:")
    cfg = KnowledgeConfig(item_ids=tuple(items), user_ids=(user,), slots=2)
    try:
        with make_backend("local", parallel=2) as llm:
            s = generate_knowledge(run.dataset, run.split, llm, cfg, progress=progress)
    except LLMError as e:
        print(f"  skipped: {e}")
        return
    titles = dict(zip(run.dataset.items.ids, run.dataset.item_titles()))
    with KnowledgeStore(s.store) as store:
        rows = [[f"user {user}", _one_line(store.get(s.user_keys.get(user, "")))]]
        rows += [[titles[i], _one_line(store.get(s.item_keys[i]))] for i in items]
    print(format_table(["about", f"knowledge ({', '.join(s.factors)})"], rows))
    print(f"  {s.model.get('model')}, {s.calls} LLM calls, {s.seconds:.0f} s; store {s.store}")


def lm_step(run, user: str, steps: int, seed: int, progress: bool = True) -> None:
    """The LLM as the recommender on a bounded budget: BIGRec fine-tunes the packaged
    SmolLM2-135M (LoRA) for ``steps`` steps to write the next title from a user's last
    training titles, then writes one for ``user`` and grounds it to real items. The run
    folder (``$LLMREC_HOME/demo/bigrec-...``) resumes and is reused by a second demo."""
    import torch

    from ..errors import LlmrecError
    from ..models import BIGRec

    print(f"\nLLM as the recommender (BIGRec): {steps} LoRA steps of the packaged "
          "SmolLM2-135M on training histories -> the next title, grounded to real items by "
          "MiniLM distance -- a demonstration budget, far from trained (docs/bigrec.md):")
    t0 = time.perf_counter()
    model = BIGRec(max_steps=steps, batch_size=4, micro_batch_size=4, max_items=5,
                   max_new_tokens=24, seed=seed)
    folder = llmrec_home() / "demo" / f"bigrec-{steps}-seed{seed}"
    try:
        model.prepare(run.dataset, run.split)
        model.fit(run.split.train, None, run_dir=folder, progress=progress)
    except LlmrecError as e:
        print(f"  skipped: {e}")
        return
    history = run.dataset.history(user)
    text = model.generate([history])[0]
    with torch.no_grad():
        scores = model.ground([text])[0].numpy().copy()
    scores[history] = -np.inf                              # seen items are not recommended
    top = np.argsort(-scores, kind="stable")[:5]
    titles = run.dataset.item_titles()
    print(f"  user {user}'s last titles: "
          + "; ".join(titles[i] for i in history[-3:]))
    print(f"  the LLM wrote: {text!r}; nearest real items:")
    print(format_table(["rank", "title", "score"],
                       [[r + 1, titles[i], float(scores[i])] for r, i in enumerate(top)]))
    info = model.fit_info
    print(f"  {info.get('finetune_steps', 0)} steps, loss {info.get('finetune_loss', 0):.3f}, "
          f"{time.perf_counter() - t0:.0f} s; run folder {folder}")


def _one_line(record, limit: int = 110) -> str:
    if record is None or not record.ok:
        return "(no knowledge: the LLM output was malformed; a re-run retries it)"
    text = "; ".join(line.strip() for line in record.text.splitlines() if line.strip())
    return text if len(text) <= limit else text[:limit - 1] + "…"
