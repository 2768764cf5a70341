"""Per-user entity memory in SQLite (MemoCRS, Xi et al. 2024, "MemoCRS: Memory-enhanced
Sequential Conversational Recommender Systems with Large Language Models").

Each row is one thing a user said about an entity in a conversation::

    user   session  turn  kind       name      value    sentiment  at
    "196"  "s1"     2     attribute  genre     Drama    like       1733570000.1
    "196"  "s1"     3     item       -         "50"     dislike    1733570001.4

The current view of an entity is its latest row: a new "like" replaces an earlier "dislike" of
the same item or value and vice versa (as InteRecAgent's like/unwanted sets do). Rows are
written in one transaction each (SQLite WAL), so a crash never leaves half a turn, and another
process or connection reads them as soon as they are committed. MemoCRS's general
(collaborative) memory is :class:`~llmrec.chat.GeneralMemory`. Deviation: MemoCRS lets the LLM
decide what to retrieve; this memory is read in full.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from ..errors import LlmrecError

Sentiment = Literal["like", "dislike"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS memory (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL, session TEXT NOT NULL, turn INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('item', 'attribute')),
    name TEXT NOT NULL, value TEXT NOT NULL,
    sentiment TEXT NOT NULL CHECK (sentiment IN ('like', 'dislike')),
    at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS memory_user ON memory (user, kind, name, value, id);
"""


class EntityMemory:
    """The SQLite entity memory of many users (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(self.path, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise LlmrecError(f"{self.path}: not a usable memory database ({e})") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> EntityMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(self, user: str, session: str, turn: int,
               entries: Iterable[tuple[str, str, str, Sentiment]]) -> int:
        """Store ``(kind, name, value, sentiment)`` entries of one turn in one transaction
        (kind ``item`` with name ``-`` and the raw item id as value, or ``attribute``)."""
        now = time.time()
        rows = [(str(user), session, int(turn), k, n, str(v), s, now) for k, n, v, s in entries]
        for r in rows:
            if r[3] not in ("item", "attribute") or r[6] not in ("like", "dislike"):
                raise ValueError(f"bad memory entry {r[3:7]}")
        with self.conn:
            self.conn.executemany("INSERT INTO memory (user, session, turn, kind, name, value, "
                                  "sentiment, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def current(self, user: str, kind: str) -> dict[tuple[str, str], Sentiment]:
        """``{(name, value): latest sentiment}`` of one user's entities of ``kind``."""
        rows = self.conn.execute(
            "SELECT name, value, sentiment FROM memory WHERE user = ? AND kind = ? "
            "ORDER BY id", (str(user), kind)).fetchall()
        return {(n, v): s for n, v, s in rows}

    def items(self, user: str, sentiment: Sentiment) -> list[str]:
        """Raw item ids whose latest sentiment is ``sentiment``, sorted."""
        return sorted(v for (_, v), s in self.current(user, "item").items() if s == sentiment)

    def attributes(self, user: str) -> dict[str, dict[str, Sentiment]]:
        """``{attribute: {value: latest sentiment}}``."""
        out: dict[str, dict[str, Sentiment]] = {}
        for (name, value), s in self.current(user, "attribute").items():
            out.setdefault(name, {})[value] = s
        return out

    def forget(self, user: str, session: str) -> int:
        """Delete one session of one user (an interrupted episode about to be replayed)."""
        with self.conn:
            return self.conn.execute("DELETE FROM memory WHERE user = ? AND session = ?",
                                     (str(user), session)).rowcount

    def sessions(self, user: str) -> list[str]:
        rows = self.conn.execute("SELECT session, MIN(id) FROM memory WHERE user = ? "
                                 "GROUP BY session ORDER BY 2", (str(user),)).fetchall()
        return [r[0] for r in rows]
