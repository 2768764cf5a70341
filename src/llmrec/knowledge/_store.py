"""The knowledge store: one SQLite file (WAL mode) per data set, content-addressed records.

Default location: ``$LLMREC_HOME/knowledge/<dataset name>.sqlite``. Every LLM call's outcome is
one row of ``records``, keyed by the SHA-256 of (kind, entity, template id+version, model
identity, the full request: prompt, decoding parameters, output constraint). Models, templates
and split configurations live side by side in one file; nothing is overwritten but a failure.

- Each record is committed on its own as it completes (autocommit; WAL with
  ``synchronous=NORMAL`` survives ``kill -9``: only an OS crash may lose the last commits), so
  an interrupted run loses at most its in-flight requests and the next run resumes.
- ``status`` is ``ok`` or ``failed`` (``failure_kind``: a backend failure kind, ``malformed``
  or ``bad_input``). A failed record is retried by the next run; an ``ok`` one is never
  replaced. Tokens, seconds and attempts add up over all attempts (what the record cost).
- ``links`` say which record holds the knowledge of an entity (``item:1``, ``user:196``) for a
  mode (``item``, ``individual``, ``collective``, ``incremental``); the latest link whose record
  is ``ok`` wins. Collective members link to their cluster's record.
- ``runs`` keeps one summary per ``generate_knowledge`` call (calls, tokens, cache hits).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._io import llmrec_home
from ..errors import CorruptFileError, LlmrecError

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, entity TEXT NOT NULL, template TEXT NOT NULL,
    model TEXT NOT NULL, decoding TEXT NOT NULL, prompt TEXT NOT NULL,
    output TEXT, parsed TEXT, status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    failure_kind TEXT, failure_message TEXT, attempts INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, seconds REAL NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS records_entity ON records (entity, kind);
CREATE TABLE IF NOT EXISTS links (
    entity TEXT NOT NULL, mode TEXT NOT NULL, key TEXT NOT NULL, linked_at REAL NOT NULL,
    PRIMARY KEY (entity, mode, key));
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, mode TEXT NOT NULL, started_at REAL NOT NULL,
    finished_at REAL, summary TEXT);
"""
_FIELDS = ("key", "kind", "entity", "template", "model", "decoding", "prompt", "output",
           "parsed", "status", "failure_kind", "failure_message", "attempts", "prompt_tokens",
           "completion_tokens", "seconds", "created_at", "updated_at")


def default_store_path(dataset: str) -> Path:
    """``$LLMREC_HOME/knowledge/<dataset>.sqlite`` (the name made file-safe)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", dataset) or "dataset"
    return llmrec_home() / "knowledge" / f"{safe}.sqlite"


def stored_item_knowledge(dataset: str) -> dict[str, str]:
    """``{raw item id: text}`` of every stored item knowledge record of ``dataset``: the
    general store and the CTR-task stores (``<dataset>-ctr-profile<N>.sqlite``). Item prompts
    show item metadata only, so item knowledge does not depend on the split that user prompts
    were cut from; the general store wins where both hold an item. {} when there is none."""
    general = default_store_path(dataset)
    paths = sorted(general.parent.glob(f"{general.stem}-ctr-profile*.sqlite")) + [general]
    out: dict[str, str] = {}
    for path in paths:
        if path.exists():                     # opening would create an empty store
            with KnowledgeStore(path) as store:
                out.update(store.export("item"))
    return out


@dataclass(frozen=True)
class Record:
    """One row of ``records``; ``model``, ``decoding``, ``prompt`` and ``parsed`` decoded."""

    key: str
    kind: str
    entity: str
    template: str
    model: dict[str, Any]
    decoding: dict[str, Any]
    prompt: list[dict[str, str]]
    output: str | None
    parsed: dict[str, Any] | None
    status: str
    failure_kind: str | None
    failure_message: str | None
    attempts: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    created_at: float
    updated_at: float

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def text(self) -> str:
        """The knowledge as text: ``factor: value`` lines (or the factor names)."""
        if not self.parsed:
            return ""
        if list(self.parsed) == ["factors"]:
            return ", ".join(self.parsed["factors"])
        return "\n".join(f"{k}: {v}" for k, v in self.parsed.items())

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Record:
        d = dict(zip(_FIELDS, row))
        for name in ("model", "decoding", "prompt", "parsed"):
            d[name] = json.loads(d[name]) if d[name] is not None else None
        return cls(**d)


class KnowledgeStore:
    """A SQLite knowledge store (see the module docstring). Use one per thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise LlmrecError(f"{self.path}: knowledge store schema {version}, this llmrec "
                                  f"reads {SCHEMA_VERSION}; use another --store")
            check = self.db.execute("PRAGMA quick_check(1)").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(check)
            self.db.executescript(_SCHEMA)
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as e:
            self.db.close()
            raise CorruptFileError(
                f"{self.path}: not a usable knowledge store (corrupt or truncated: {e}); "
                f"delete it (and any {self.path.name}-wal beside it) and run `llmrec knowledge "
                "generate` again, or use another --store") from None

    @classmethod
    def for_dataset(cls, dataset: str) -> KnowledgeStore:
        return cls(default_store_path(dataset))

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> KnowledgeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- records --------------------------------------------------------------------------
    def get(self, key: str) -> Record | None:
        row = self.db.execute(f"SELECT {', '.join(_FIELDS)} FROM records WHERE key = ?",
                              (key,)).fetchone()
        return Record.from_row(row) if row else None

    def ok_keys(self, keys: Iterable[str]) -> set[str]:
        """The subset of ``keys`` that have an ``ok`` record."""
        keys, found = list(keys), set()
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            rows = self.db.execute(
                f"SELECT key FROM records WHERE status = 'ok' AND key IN "
                f"({', '.join('?' * len(chunk))})", chunk)
            found.update(r[0] for r in rows)
        return found

    def put(self, *, key: str, kind: str, entity: str, template: str, model: dict[str, Any],
            decoding: dict[str, Any], prompt: list[dict[str, str]], output: str | None,
            parsed: dict[str, Any] | None, failure: tuple[str, str] | None = None,
            prompt_tokens: int = 0, completion_tokens: int = 0, seconds: float = 0.0,
            attempts: int = 1) -> None:
        """Insert or update one attempt's outcome and commit it (an ``ok`` row is final)."""
        now = time.time()
        status = "failed" if failure else "ok"
        fkind, fmsg = failure or (None, None)
        self.db.execute(
            f"INSERT INTO records ({', '.join(_FIELDS)}) VALUES ({', '.join('?' * len(_FIELDS))})"
            " ON CONFLICT(key) DO UPDATE SET output = excluded.output, parsed = excluded.parsed,"
            " status = excluded.status, failure_kind = excluded.failure_kind,"
            " failure_message = excluded.failure_message, decoding = excluded.decoding,"
            " attempts = attempts + excluded.attempts,"
            " prompt_tokens = prompt_tokens + excluded.prompt_tokens,"
            " completion_tokens = completion_tokens + excluded.completion_tokens,"
            " seconds = seconds + excluded.seconds, updated_at = excluded.updated_at"
            " WHERE records.status != 'ok'",
            (key, kind, entity, template, _json(model), _json(decoding), _json(prompt), output,
             None if parsed is None else _json(parsed), status, fkind, fmsg, attempts,
             prompt_tokens, completion_tokens, seconds, now, now))

    # -- links: which record is an entity's knowledge ---------------------------------------
    def link(self, pairs: Iterable[tuple[str, str]], mode: str) -> None:
        """Record that entity ``e``'s knowledge (in ``mode``) is record ``key``, for each pair."""
        now = time.time()
        rows = [(entity, mode, key, now) for entity, key in pairs]
        self.db.execute("BEGIN")  # one transaction for the batch
        try:
            self.db.executemany(
                "INSERT INTO links (entity, mode, key, linked_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO UPDATE SET linked_at = excluded.linked_at", rows)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def linked(self, entity: str, mode: str) -> Record | None:
        """The latest ``ok`` record linked to ``entity`` in ``mode``."""
        row = self.db.execute(
            f"SELECT {', '.join('r.' + f for f in _FIELDS)} FROM links l JOIN records r"
            " ON r.key = l.key WHERE l.entity = ? AND l.mode = ? AND r.status = 'ok'"
            " ORDER BY l.linked_at DESC, l.rowid DESC LIMIT 1", (entity, mode)).fetchone()
        return Record.from_row(row) if row else None

    def get_item(self, item_id: object) -> Record | None:
        return self.linked(f"item:{item_id}", "item")

    def get_user(self, user_id: object, mode: str = "individual") -> Record | None:
        return self.linked(f"user:{user_id}", mode)

    def _latest(self, mode: str) -> dict[str, tuple[str, str]]:
        """``{raw id: (record key, parsed json)}`` of the latest ok record linked in ``mode``."""
        rows = self.db.execute(
            "SELECT l.entity, r.key, r.parsed FROM links l JOIN records r ON r.key = l.key"
            " WHERE l.mode = ? AND r.status = 'ok' ORDER BY l.linked_at, l.rowid", (mode,))
        return {entity.split(":", 1)[1]: (key, parsed)      # later links overwrite earlier
                for entity, key, parsed in rows}

    def export(self, mode: str) -> dict[str, str]:
        """``{raw id: knowledge text}`` for every entity linked in ``mode`` (latest ok record);
        ``mode="item"`` gives item knowledge, the others user knowledge."""
        return {raw: "\n".join(f"{k}: {v}" for k, v in json.loads(parsed).items())
                for raw, (_, parsed) in self._latest(mode).items()}

    def export_costs(self, *modes: str) -> dict[str, Any]:
        """What the knowledge :meth:`export` gives for ``modes`` cost: LLM calls (attempts),
        tokens and call seconds summed over the distinct records behind it, plus the latest
        factors record. Records of other template versions or modes are not counted."""
        keys = {key for mode in modes for key, _ in self._latest(mode).values()}
        factors = self.db.execute("SELECT key FROM records WHERE kind = 'factors' AND status"
                                  " = 'ok' ORDER BY updated_at DESC LIMIT 1").fetchone()
        keys |= {factors[0]} if factors else set()
        calls = tokens = 0
        seconds = 0.0
        for key in keys:
            a, p, c, s = self.db.execute(
                "SELECT attempts, prompt_tokens, completion_tokens, seconds FROM records"
                " WHERE key = ?", (key,)).fetchone()
            calls, tokens, seconds = calls + a, tokens + p + c, seconds + s
        return {"llm_calls": calls, "llm_tokens": tokens, "generation_seconds": round(seconds, 1),
                "records": len(keys)}

    # -- accounting -----------------------------------------------------------------------
    def stats(self) -> list[dict[str, Any]]:
        """Per kind: records ok/failed, LLM calls (attempts), tokens, seconds."""
        rows = self.db.execute(
            "SELECT kind, SUM(status = 'ok'), SUM(status = 'failed'), SUM(attempts),"
            " SUM(prompt_tokens), SUM(completion_tokens), SUM(seconds) FROM records"
            " GROUP BY kind ORDER BY kind").fetchall()
        names = ("kind", "ok", "failed", "calls", "prompt_tokens", "completion_tokens",
                 "seconds")
        return [dict(zip(names, r)) for r in rows]

    def failures(self) -> list[tuple[str, str, int]]:
        """(kind, failure kind, count) of the records that are failed now."""
        return self.db.execute(
            "SELECT kind, failure_kind, COUNT(*) FROM records WHERE status = 'failed'"
            " GROUP BY kind, failure_kind ORDER BY kind").fetchall()

    def start_run(self, mode: str) -> int:
        cur = self.db.execute("INSERT INTO runs (mode, started_at) VALUES (?, ?)",
                              (mode, time.time()))
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, summary: dict[str, Any]) -> None:
        self.db.execute("UPDATE runs SET finished_at = ?, summary = ? WHERE id = ?",
                        (time.time(), _json(summary), run_id))

    def runs(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT id, mode, started_at, finished_at, summary FROM runs"
                               " ORDER BY id").fetchall()
        return [{"id": i, "mode": m, "started_at": s, "finished_at": f,
                 "summary": json.loads(js) if js else None} for i, m, s, f, js in rows]

    def count(self, status: str | None = None) -> int:
        if status is None:
            return int(self.db.execute("SELECT COUNT(*) FROM records").fetchone()[0])
        return int(self.db.execute("SELECT COUNT(*) FROM records WHERE status = ?",
                                   (status,)).fetchone()[0])


def _json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
