"""Knowledge generation (KAR/REKI factorization prompting; LIBER incremental updates).

1. Factors: the scenario's key factors, derived with the LLM once (or given).
2. Items: one call per item, from the facts the data knows (:mod:`._facts`).
3. Users, by ``mode``, always from the training part of the split (:mod:`._history`):

   - ``individual``: one call per user (last rated items + genre/era shares);
   - ``collective``: users clustered by training behaviour, one call per cluster, every
     member inherits the cluster's knowledge (:mod:`._collective`);
   - ``incremental`` (LIBER): the training history cut into partitions of ``partition_size``
     items; one summary per partition, then a cascading summary folds them into the profile
     one by one. Everything is cached by content, so appending interactions adds calls only
     for the new (or the grown last) partition and the folds after it.

Every call goes through :class:`~._runner.Runner` into a :class:`~._store.KnowledgeStore`;
re-running is a cache hit, an interrupted run resumes.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..config import SEED_MAX
from ..data import Dataset, Split
from ..errors import ConfigError, LlmrecError
from ..llm import Backend
from ._cascade import Cascade
from ._collective import cluster_users
from ._facts import ItemFacts, require_item_text, text_problem
from ._history import TrainHistory
from ._runner import Job, Runner
from ._store import KnowledgeStore
from ._templates import CONSTRAINTS, Template, clean_factors, load_templates

log = logging.getLogger(__name__)

MODES = ("individual", "collective", "incremental")


@dataclass(frozen=True)
class KnowledgeConfig:
    """What to generate and how (see the module docstring).

    ``limit`` keeps the first N items and the first N users (quick runs); ``item_ids`` /
    ``user_ids`` (raw ids) keep only those entities. ``slots`` is how many requests are kept
    in flight (None: the backend's ``parallel``/``concurrency``).
    """

    mode: Literal["individual", "collective", "incremental"] = "individual"
    scenario: str = "movie"
    factors: tuple[str, ...] = ()
    constrain: Literal["grammar", "json", "none"] = "grammar"
    items: bool = True
    users: bool = True
    limit: int | None = None
    item_ids: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()
    kg: bool = False
    n_clusters: int = 32
    partition_size: int = 20
    max_attempts: int = 3
    slots: int | None = None
    seed: int = 0
    templates: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.constrain not in CONSTRAINTS:
            raise ConfigError(f"constrain must be one of {', '.join(CONSTRAINTS)}, "
                              f"not {self.constrain!r}")
        if not (self.items or self.users):
            raise ConfigError("nothing to generate: items and users are both off")
        for name in ("n_clusters", "partition_size", "max_attempts"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, not {getattr(self, name)}")
        if not 0 <= self.seed <= SEED_MAX:
            raise ConfigError(f"seed must be in 0..{SEED_MAX}, not {self.seed}")
        if self.slots is not None and self.slots < 1:
            raise ConfigError(f"slots must be >= 1, not {self.slots}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be >= 1, not {self.limit}")
        object.__setattr__(self, "factors", tuple(clean_factors(list(self.factors))))


@dataclass
class KnowledgeSummary:
    """What a generation run did. ``item_keys`` / ``user_keys``: raw id -> record key of the
    entity's knowledge (``store.get(key)``); a user of an incremental run is missing until
    their cascade is complete."""

    dataset: str
    mode: str
    store: str
    factors: list[str]
    model: dict[str, Any]
    items: int
    users: int
    items_ok: int
    users_ok: int
    seconds: float
    stats: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    item_keys: dict[str, str] = field(default_factory=dict, repr=False)
    user_keys: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def calls(self) -> int:
        return sum(self.stats["calls"].values())

    @property
    def failed(self) -> int:
        return (self.items - self.items_ok) + (self.users - self.users_ok)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("item_keys"), d.pop("user_keys")
        return d


class _Plan:
    """Builds the jobs of one run from its config, templates, factors and backend identity."""

    def __init__(self, dataset: Dataset, cfg: KnowledgeConfig, templates: dict[str, Template],
                 identity: dict[str, Any]) -> None:
        self.dataset, self.cfg, self.templates, self.identity = dataset, cfg, templates, identity
        self.factors: tuple[str, ...] = cfg.factors

    def job(self, kind: str, template: str, entity: str, problem: str | None = None,
            **fields: Any) -> Job:
        if problem:  # keep the key computable and the row storable: escape bad characters
            fields = {k: str(v).encode("utf-8", "backslashreplace").decode("utf-8")
                      for k, v in fields.items()}
        return Job(kind, entity, self.templates[template],
                   {"scenario": self.cfg.scenario, **fields}, self.factors, self.cfg.constrain,
                   self.identity, problem)

    def factor_job(self) -> Job:
        t = self.templates["factors"]
        return self.job("factors", "factors", f"factors:{self.cfg.scenario}",
                        n_factors=t.param("n_factors"))

    def item_jobs(self) -> list[Job]:
        t = self.templates["item"]
        facts = ItemFacts(self.dataset, self.cfg.scenario, kg=self.cfg.kg,
                          related_per_relation=int(t.param("related_per_relation")),
                          max_description_chars=int(t.param("max_description_chars")))
        if self.cfg.item_ids:
            items = self.dataset.items.lookup(self.cfg.item_ids).tolist()
        else:
            items = range(min(self.dataset.n_items, self.cfg.limit or self.dataset.n_items))
        return [self.job("item", "item", f"item:{self.dataset.items.id(i)}",
                         facts.problem(i), facts=facts.text(i)) for i in items]

    def user_entity(self, u: int) -> str:
        return f"user:{self.dataset.users.id(u)}"

    def individual_jobs(self, history: TrainHistory, users: np.ndarray) -> list[Job]:
        t = self.templates["user"]
        jobs = []
        for u in users.tolist():
            r = history.user_prompt(u, int(t.param("history_items")), int(t.param("top_genres")),
                                    int(t.param("top_eras")))
            history.check([u], r)
            jobs.append(self.job("user", "user", self.user_entity(u), text_problem(r.text),
                                 history=r.text))
        return jobs

    def cluster_jobs(self, history: TrainHistory,
                     users: np.ndarray) -> tuple[list[Job], list[np.ndarray]]:
        t = self.templates["cluster"]
        groups = cluster_users(history, self.cfg.n_clusters, self.cfg.seed, users=users)
        jobs = []
        for c, members in enumerate(groups):
            r = history.cluster_prompt(members, int(t.param("top_titles")),
                                       int(t.param("min_raters")), int(t.param("top_genres")),
                                       int(t.param("top_eras")))
            history.check(members.tolist(), r)
            jobs.append(self.job("cluster", "cluster", f"cluster:{len(groups)}/{c}",
                                 text_problem(r.text), summary=r.text))
        return jobs, groups


def derive_factors(plan: _Plan, runner: Runner) -> tuple[str, ...]:
    """The scenario's factors from the LLM (one cached call), or a clear error."""
    job = plan.factor_job()
    rec = runner.run([job], desc="factors")[job.key]
    if rec is None:
        got = runner.store.get(job.key)
        why = f"{got.failure_kind}: {got.failure_message}" if got else "no answer"
        raise LlmrecError(f"the LLM could not name the {plan.cfg.scenario} factors ({why}); "
                          "give them instead, e.g. --factors genre,people,era,mood,audience")
    return tuple(rec.parsed["factors"])


def _slots(backend: Backend, cfg: KnowledgeConfig) -> int:
    if cfg.slots:
        return cfg.slots
    conf = getattr(backend, "config", None)
    return int(getattr(conf, "parallel", 0) or getattr(conf, "concurrency", 0) or 4)


def generate_knowledge(dataset: Dataset, split: Split, backend: Backend,
                       config: KnowledgeConfig | None = None, *,
                       store: KnowledgeStore | str | Path | None = None,
                       progress: bool = True,
                       interrupt: threading.Event | None = None) -> KnowledgeSummary:
    """Generate (or fetch from the store) item and user knowledge; see the module docstring.

    User prompts are built from ``split``'s training part only. Raises
    :class:`~llmrec.llm.LLMError` when the LLM is unusable, and
    :class:`~._runner.Interrupted` once ``interrupt`` is set (the calls in flight are finished
    and stored first); work done so far is kept either way.
    """
    cfg = config or KnowledgeConfig()
    require_item_text(dataset)
    for kind, vocab, ids in (("item", dataset.items, cfg.item_ids),
                             ("user", dataset.users, cfg.user_ids)):
        unknown = [x for x in ids if x not in vocab]
        if unknown:
            raise ConfigError(f"unknown {kind} id {unknown[0]!r} in {dataset.name}")
    own = not isinstance(store, KnowledgeStore)
    db = (KnowledgeStore.for_dataset(dataset.name) if store is None
          else store if isinstance(store, KnowledgeStore) else KnowledgeStore(store))
    start = time.perf_counter()
    run_id = db.start_run(cfg.mode)
    runner = Runner(backend, db, slots=_slots(backend, cfg), max_attempts=cfg.max_attempts,
                    progress=progress, interrupt=interrupt)
    plan = _Plan(dataset, cfg, load_templates(cfg.templates), backend.identity())
    summary = KnowledgeSummary(dataset.name, cfg.mode, str(db.path), [], plan.identity, 0, 0,
                               0, 0, 0.0, {})
    try:
        plan.factors = cfg.factors or derive_factors(plan, runner)
        summary.factors = list(plan.factors)
        _run_entities(plan, runner, dataset, split, cfg, db, summary)
    finally:
        summary.seconds = round(time.perf_counter() - start, 2)
        summary.stats = runner.stats.as_dict()
        db.finish_run(run_id, {**summary.to_dict(), "config": asdict(cfg)})
        if own:
            db.close()
    log.info("knowledge %s: items %d/%d, users %d/%d, %d LLM calls in %.1fs", cfg.mode,
             summary.items_ok, summary.items, summary.users_ok, summary.users, summary.calls,
             summary.seconds, extra={"knowledge": summary.to_dict()})
    return summary


def _run_entities(plan: _Plan, runner: Runner, dataset: Dataset, split: Split,
                  cfg: KnowledgeConfig, db: KnowledgeStore, summary: KnowledgeSummary) -> None:
    jobs: list[Job] = []
    item_jobs = plan.item_jobs() if cfg.items else []
    summary.items = len(item_jobs)
    summary.item_keys = {j.entity.split(":", 1)[1]: j.key for j in item_jobs}
    db.link(((j.entity, j.key) for j in item_jobs), "item")
    jobs += item_jobs
    cascade = None
    if cfg.users:
        history = TrainHistory(dataset, split, cfg.scenario)
        users = history.users_with_history()
        if cfg.user_ids:
            users = users[np.isin(users, dataset.users.lookup(cfg.user_ids))]
        users = users[:cfg.limit]
        summary.users = len(users)
        pairs: list[tuple[str, str]] = []
        if cfg.mode == "individual":
            user_jobs = plan.individual_jobs(history, users)
            pairs = [(j.entity, j.key) for j in user_jobs]
        elif cfg.mode == "collective":
            user_jobs, groups = plan.cluster_jobs(history, users)
            pairs = [(plan.user_entity(u), j.key) for j, g in zip(user_jobs, groups)
                     for u in g.tolist()]
        else:
            cascade = Cascade(plan, history, users, cfg.partition_size, db)
            user_jobs = cascade.partition_jobs()
        summary.user_keys = {e.split(":", 1)[1]: k for e, k in pairs}
        db.link(pairs, cfg.mode)
        jobs += user_jobs
    try:
        results = runner.run(jobs, desc=f"knowledge {cfg.mode}",
                             then=cascade.then if cascade else None)
    finally:
        if cascade is not None:
            summary.user_keys = cascade.final_keys()
        summary.problems = [f"{r.entity}: {r.failure_message}" for r in
                            (db.get(j.key) for j in jobs if j.problem) if r is not None]
    summary.items_ok = sum(results.get(k) is not None for k in summary.item_keys.values())
    ok_users = db.ok_keys(summary.user_keys.values())
    summary.users_ok = sum(k in ok_users for k in summary.user_keys.values())
