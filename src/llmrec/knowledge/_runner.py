"""Run knowledge jobs through an LLM backend, committing each record as it completes.

A :class:`Job` is one prompt about one entity. :meth:`Runner.run` answers a job from the store
when an ``ok`` record exists (a cache hit, no LLM call); otherwise it sends it to the backend.
``slots`` requests are kept in flight, each as its own ``backend.generate([request])`` on a
worker thread (the backends release the GIL / run their own event loop), so the engine's
parallel slots stay busy (continuous batching) and every result is committed the moment it
arrives: ``kill -9`` loses at most the requests in flight. One ``generate(batch)`` call would
return only when its whole batch is done.

Per job and run: output that does not parse is stored as ``malformed`` and retried with
sampling up to ``max_attempts`` times; other failures are stored and left for the next run.
An unreachable server (a ``connection``/``aborted`` failure) or an :class:`~llmrec.llm.LLMError`
(rejected key, unknown model) stops the run: requests in flight are finished and stored, then
an ``LLMError`` says how many records are kept.

``then(job, record)`` may return follow-up jobs once a job is ``ok`` (LIBER's cascade).

``interrupt`` (a :class:`threading.Event`, set e.g. by a SIGTERM/SIGINT handler) stops a run
cleanly: no new request is sent, the ones in flight are finished and stored, then
:class:`Interrupted` says how many of the run's calls were done. Every record is committed on
its own, so the store is consistent and the next run resumes with the missing ones.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .._io import content_hash
from ..llm import Backend, Completion, LLMError, Request, Result
from ._store import KnowledgeStore, Record
from ._templates import MalformedOutput, Template

log = logging.getLogger(__name__)

STOP_KINDS = frozenset({"connection", "aborted"})


class Interrupted(Exception):
    """A run stopped on request (``Runner.interrupt`` set): ``done`` of ``total`` LLM calls of
    the runner's jobs were made and stored; the rest are left for the next run."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__(f"interrupted after {done} of {total} calls")
        self.done, self.total = done, total


def _not_one_request(record: logging.LogRecord) -> bool:
    """Drop the backends' per-batch summary line for our one-request batches."""
    return getattr(record, "llm_requests", None) != 1


@dataclass(frozen=True)
class Job:
    """One prompt about one entity. ``problem`` marks bad input: stored, never sent."""

    kind: str
    entity: str
    template: Template
    fields: dict[str, Any]
    factors: tuple[str, ...]
    constrain: str
    identity: dict[str, Any]
    problem: str | None = None

    def request(self, attempt: int = 1) -> Request:
        return self.template.request(self.fields, list(self.factors), self.constrain, attempt)

    @cached_property
    def key(self) -> str:
        """SHA-256 of kind, entity, template id+version, model identity and the request."""
        return content_hash({"kind": self.kind, "entity": self.entity,
                             "template": self.template.ref, "model": self.identity,
                             "request": self.request().cache_key()})


@dataclass
class RunStats:
    """What a run cost, per record kind: LLM calls, tokens, cache hits, failures."""

    calls: Counter[str] = field(default_factory=Counter)
    cached: Counter[str] = field(default_factory=Counter)
    ok: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)          # by failure kind
    prompt_tokens: Counter[str] = field(default_factory=Counter)
    completion_tokens: Counter[str] = field(default_factory=Counter)
    llm_seconds: float = 0.0                                       # wall time with calls out

    def as_dict(self) -> dict[str, Any]:
        return {"calls": dict(self.calls), "cached": dict(self.cached), "ok": dict(self.ok),
                "failed": dict(self.failed), "prompt_tokens": dict(self.prompt_tokens),
                "completion_tokens": dict(self.completion_tokens),
                "llm_seconds": round(self.llm_seconds, 2)}


class Runner:
    """Feeds jobs to a backend ``slots`` at a time and stores every outcome."""

    def __init__(self, backend: Backend, store: KnowledgeStore, *, slots: int = 4,
                 max_attempts: int = 3, progress: bool = True,
                 interrupt: threading.Event | None = None) -> None:
        self.backend, self.store = backend, store
        self.slots, self.max_attempts, self.progress = max(1, slots), max(1, max_attempts), progress
        self.stats = RunStats()
        self.interrupt = interrupt or threading.Event()
        self.done = 0           # jobs answered by the LLM (ok or failed for good), all runs
        self.planned = 0        # jobs that needed the LLM (not in the store), all runs

    def run(self, jobs: list[Job], desc: str = "knowledge",
            then: Callable[[Job, Record], list[Job]] | None = None) -> dict[str, Record | None]:
        """Each job's ``ok`` record (or None if it failed), by key."""
        from tqdm import tqdm

        results: dict[str, Record | None] = {}
        queue: deque[tuple[Job, int]] = deque()
        bar = tqdm(total=0, desc=desc, unit="call", disable=not self.progress, dynamic_ncols=True)
        start = time.perf_counter()

        def admit(job: Job) -> None:
            key = job.key
            if key in results:
                return
            rec = self.store.get(key)
            if rec is not None and rec.ok:
                self.stats.cached[job.kind] += 1
                results[key] = rec
                for nxt in (then(job, rec) if then else []):
                    admit(nxt)
            elif job.problem:
                self._store_failure(job, 1, ("bad_input", job.problem), None, None)
                self.stats.failed["bad_input"] += 1
                results[key] = None
            else:
                results[key] = None  # placeholder until it completes
                queue.append((job, 1))
                bar.total += 1
                self.planned += 1

        for job in jobs:
            admit(job)
        stop: str | None = None
        inflight: dict[Future[Result], tuple[Job, int]] = {}
        llm_log = logging.getLogger("llmrec.llm")
        llm_log.addFilter(_not_one_request)
        with ThreadPoolExecutor(self.slots, thread_name_prefix="llmrec-knowledge") as pool:
            try:
                while inflight or (queue and stop is None and not self.interrupt.is_set()):
                    while (queue and stop is None and not self.interrupt.is_set()
                           and len(inflight) < self.slots):
                        job, attempt = queue.popleft()
                        fut = pool.submit(self._call, job.request(attempt))
                        inflight[fut] = (job, attempt)
                    done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                    for fut in done:
                        job, attempt = inflight.pop(fut)
                        try:
                            result = fut.result()
                        except LLMError as e:
                            stop = stop or str(e)
                            continue
                        again, followups = self._finish(job, attempt, result, results, then)
                        if again:
                            queue.append((job, attempt + 1))
                        elif isinstance(result, Completion) or result.kind not in STOP_KINDS:
                            bar.update(1)
                            self.done += 1
                        else:
                            stop = stop or f"{result.kind}: {result.message}"
                        for nxt in followups:
                            admit(nxt)
                        self._postfix(bar, start)
            finally:
                self.stats.llm_seconds += time.perf_counter() - start
                bar.close()
                llm_log.removeFilter(_not_one_request)
        if stop is None and queue and self.interrupt.is_set():
            raise Interrupted(self.done, self.planned)
        if stop is not None:
            done = sum(1 for r in results.values() if r is not None)
            raise LLMError(f"{stop} (stopped with {done} of {len(results)} records done and "
                           "stored; run again to resume)")
        return results

    def _call(self, request: Request) -> Result:
        return self.backend.generate([request], progress=False)[0]

    def _finish(self, job: Job, attempt: int, result: Result,
                results: dict[str, Record | None],
                then: Callable[[Job, Record], list[Job]] | None) -> tuple[bool, list[Job]]:
        """Store one outcome; (retry it?, follow-up jobs)."""
        kind = job.kind
        self.stats.calls[kind] += 1
        if not isinstance(result, Completion):
            self.stats.failed[result.kind] += 1
            self._store_failure(job, attempt, (result.kind, result.message), None, result)
            return False, []
        self.stats.prompt_tokens[kind] += result.prompt_tokens
        self.stats.completion_tokens[kind] += result.completion_tokens
        try:
            parsed = job.template.parse(result.text, list(job.factors))
        except MalformedOutput as e:
            self._store_failure(job, attempt, ("malformed", str(e)), result.text, result)
            if attempt < self.max_attempts:
                return True, []
            self.stats.failed["malformed"] += 1
            return False, []
        self._put(job, attempt, result.text, parsed, None, result)
        rec = self.store.get(job.key)
        results[job.key] = rec
        self.stats.ok[kind] += 1
        return False, (then(job, rec) if then and rec is not None else [])

    def _store_failure(self, job: Job, attempt: int, failure: tuple[str, str],
                       output: str | None, result: Result | None) -> None:
        self._put(job, attempt, output, None, failure, result)

    def _put(self, job: Job, attempt: int, output: str | None, parsed: dict[str, Any] | None,
             failure: tuple[str, str] | None, result: Result | None) -> None:
        request = job.request(attempt)
        body = request.body()
        prompt = body.pop("messages")
        done = result if isinstance(result, Completion) else None
        self.store.put(key=job.key, kind=job.kind, entity=job.entity, template=job.template.ref,
                       model=job.identity, decoding=body, prompt=prompt, output=output,
                       parsed=parsed, failure=failure,
                       prompt_tokens=done.prompt_tokens if done else 0,
                       completion_tokens=done.completion_tokens if done else 0,
                       seconds=result.seconds if result is not None else 0.0,
                       attempts=0 if result is None else 1)

    def _postfix(self, bar: Any, start: float) -> None:
        elapsed = max(time.perf_counter() - start, 1e-9)
        tokens = sum(self.stats.completion_tokens.values())
        post = {"tok/s": f"{tokens / elapsed:.1f}"}
        if self.stats.cached:
            post["cached"] = str(sum(self.stats.cached.values()))
        failed = sum(self.stats.failed.values())
        if failed:
            post["failed"] = str(failed)
        bar.set_postfix(post, refresh=False)
