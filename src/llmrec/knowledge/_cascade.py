"""LIBER's incremental extraction: partition summaries folded into a profile, one by one.

A user's training history (time order) is cut into partitions of ``size`` items::

    history:   i1 ... i20 | i21 ... i40 | i41 ... i47          size = 20
    summaries: s1           s2            s3                    one call each (cached by content)
    profile:   p1 = s1  ->  p2 = fold(p1, s2)  ->  p3 = fold(p2, s3)   p3 is the user's knowledge

Partition summaries do not depend on each other and are all sent at once; a fold is sent as
soon as the previous profile and its partition's summary exist (the runner's ``then`` hook),
so every user's cascade advances while other users' calls run. Appending interactions leaves
the complete partitions (and their summaries and folds) unchanged: only the grown last
partition, any new ones, and the folds from there on are new calls.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from ._facts import text_problem
from ._history import TrainHistory
from ._runner import Job
from ._store import KnowledgeStore, Record


class JobPlan(Protocol):
    """What a cascade needs from the run's plan (``knowledge._generate._Plan``): jobs built
    from a template with the run's scenario, factors and backend, and users' entity names."""

    def job(self, kind: str, template: str, entity: str, problem: str | None = None,
            **fields: Any) -> Job: ...

    def user_entity(self, u: int) -> str: ...


class Cascade:
    """The partition and fold jobs of every user, advanced as records complete."""

    def __init__(self, plan: JobPlan, history: TrainHistory, users: np.ndarray, size: int,
                 store: KnowledgeStore) -> None:
        self.plan, self.history, self.size, self.store = plan, history, size, store
        self.users = [int(u) for u in users]
        self.parts: dict[int, list[Record | None]] = {}
        self.profile: dict[int, tuple[int, Record]] = {}   # user -> (last partition folded, rec)
        self.final: dict[int, str] = {}                     # user -> key of the final profile
        self.meta: dict[str, tuple[str, int, int]] = {}     # job key -> (what, user, partition)

    def partition_jobs(self) -> list[Job]:
        jobs = []
        for u in self.users:
            n = len(self.history.items(u))
            bounds = list(range(0, n, self.size))
            self.parts[u] = [None] * len(bounds)
            for k, start in enumerate(bounds):
                r = self.history.partition_prompt(u, start, min(start + self.size, n))
                self.history.check([u], r)
                job = self.plan.job("partition", "partition",
                                    f"{self.plan.user_entity(u)}/partition:{k}",
                                    text_problem(r.text), partition=r.text)
                self.meta[job.key] = ("partition", u, k)
                jobs.append(job)
        return jobs

    def then(self, job: Job, record: Record) -> list[Job]:
        """Follow-up jobs once ``job`` is ok: the user's next fold, if its inputs exist."""
        what, u, k = self.meta[job.key]
        if what == "partition":
            self.parts[u][k] = record
        else:
            self.profile[u] = (k, record)
        return self._advance(u)

    def _advance(self, u: int) -> list[Job]:
        parts = self.parts[u]
        if u not in self.profile:
            if parts[0] is None:
                return []
            self.profile[u] = (0, parts[0])
        level, rec = self.profile[u]
        if level == len(parts) - 1:
            if self.final.get(u) != rec.key:
                self.final[u] = rec.key
                self.store.link([(self.plan.user_entity(u), rec.key)], "incremental")
            return []
        nxt = parts[level + 1]
        if nxt is None:
            return []
        job = self.plan.job("summary", "fold", f"{self.plan.user_entity(u)}/fold:{level + 1}",
                            profile=rec.text, update=nxt.text)
        self.meta[job.key] = ("fold", u, level + 1)
        return [job]

    def final_keys(self) -> dict[str, str]:
        """Raw user id -> key of the final profile, for users whose cascade is complete."""
        return {self.plan.user_entity(u).split(":", 1)[1]: key for u, key in self.final.items()}
