"""Chat sessions of ``llmrec serve``: ``POST /chat``, ``POST /chat/{id}``, ``DELETE /chat/{id}``.

Each session is a :class:`llmrec.chat.ChatSession` (the terminal's ``llmrec chat`` runs the same
class) with the strategy named in the serve config (``chat_strategy``: ``tree`` or ``topk``;
no LLM runs on the request path, so ``interec`` is not served). Its state lives in a SQLite
file, ``RUN_DIR/serve-state/chat.sqlite`` unless ``chat_store`` names another, not in a
worker's memory: with ``llmrec serve --workers N`` the workers share one listening socket and
any of them may get a session's next message, so every turn reads the session from the file
and writes it back inside one write transaction (SQLite WAL; ``BEGIN IMMEDIATE``), which also
puts two concurrent messages of one session one after the other. A server restarted on the
same run continues its live sessions.

Limits (serve config): ``chat_max_sessions`` live sessions (creating one more evicts the least
recently active: the service stays open to new visitors; the evicted session answers 404 like
an expired one), ``chat_max_turns`` agent turns per session (the last turn says so and ends the
conversation; a message after the end is 409), ``chat_idle_seconds`` without a message (then
404 "unknown or expired chat session"). Errors are the service's one shape
(``{"error", "field"}``); the key policy covers these routes like every data route.

With ``chat_memory = true``, a session started with a ``user_id`` reads and writes that user's
entity memory (:class:`llmrec.chat.EntityMemory`, ``memory.sqlite`` beside the session store):
it opens with the genres and decades the user asked for before and never re-offers items the
user turned down, as ``llmrec chat --memory`` does. Off by default: anyone who may call the
API could then write into any user's memory.
"""


# no `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime
import json
import logging
import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

from ..errors import ConfigError
from ._service import RequestError

log = logging.getLogger(__name__)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, created REAL NOT NULL, active REAL NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_active ON sessions (active);
"""
STATE_FOLDER = "serve-state"


class ChatStore:
    """Chat sessions as JSON rows of one SQLite file, shared by every worker process (one
    connection per process: a connection never crosses a fork)."""

    def __init__(self, path: str | Path, max_sessions: int, idle_seconds: float) -> None:
        self.path = Path(path).expanduser()
        self.max_sessions, self.idle_seconds = max_sessions, idle_seconds
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn().executescript(_SCHEMA)
        except (OSError, sqlite3.DatabaseError) as e:
            raise ConfigError(f"{self.path}: cannot keep chat sessions there ({e}); set "
                              "chat_store in the serve config") from None

    def conn(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._pid = os.getpid()
        return self._conn

    def create(self, state: dict[str, Any]) -> int:
        """Store a new session, first dropping expired ones and, at the cap, the least
        recently active; returns how many were evicted for room."""
        c, now = self.conn(), time.time()
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute("DELETE FROM sessions WHERE active < ?", (now - self.idle_seconds,))
            (live,) = c.execute("SELECT COUNT(*) FROM sessions").fetchone()
            evict = max(0, live - self.max_sessions + 1)
            if evict:
                c.execute("DELETE FROM sessions WHERE id IN (SELECT id FROM sessions "
                          "ORDER BY active LIMIT ?)", (evict,))
            c.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)",
                      (state["id"], json.dumps(state), now, now))
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise
        return evict

    def update(self, session_id: str, change) -> Any:
        """Run ``change(state) -> (new state, result)`` on a live session inside one write
        transaction and return the result; 404 when the session is unknown or expired."""
        c, now = self.conn(), time.time()
        c.execute("BEGIN IMMEDIATE")
        try:
            row = c.execute("SELECT state, active FROM sessions WHERE id = ?",
                            (session_id,)).fetchone()
            if row is None or row[1] < now - self.idle_seconds:
                c.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
                c.execute("COMMIT")
                raise RequestError(404, "session_id", "unknown or expired chat session")
            state, result = change(json.loads(row[0]))
            c.execute("UPDATE sessions SET state = ?, active = ? WHERE id = ?",
                      (json.dumps(state), time.time(), session_id))
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise
        return result

    def delete(self, session_id: str) -> bool:
        cur = self.conn().execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        return cur.rowcount > 0

    def count(self) -> int:
        return self.conn().execute("SELECT COUNT(*) FROM sessions").fetchone()[0]


class ChatService:
    """The chat routes' logic over a server's artifacts (the world is built on first use)."""

    def __init__(self, artifacts, store: ChatStore) -> None:
        cfg = artifacts.config
        self.art, self.store = artifacts, store
        self.k, self.max_turns = cfg.chat_k, cfg.chat_max_turns
        self.strategy_name = cfg.chat_strategy
        self.memory_path = store.path.parent / "memory.sqlite" if cfg.chat_memory else None
        self._world = None
        self._memory = None
        self._memory_pid = -1

    def memory(self, user: str | None):
        """The entity memory (one connection per process) for a known user's session, when
        ``chat_memory`` is on; None otherwise."""
        if self.memory_path is None or user is None:
            return None
        if self._memory is None or self._memory_pid != os.getpid():
            from ..chat import EntityMemory

            self._memory, self._memory_pid = EntityMemory(self.memory_path), os.getpid()
        return self._memory

    @property
    def world(self):
        if self._world is None:
            from ..chat import ChatWorld

            art = self.art
            world = ChatWorld.from_parts(art.dataset, art.run.split, art.model,
                                         source=str(art.run.run_dir))
            world.knowledge = art.knowledge
            self._world = world
        return self._world

    def strategy(self):
        from ..chat import STRATEGIES

        return STRATEGIES[self.strategy_name]()

    def _answer(self, session, turn) -> dict[str, Any]:
        return {"session_id": session.id, **turn.to_dict(),
                "turns_left": max(0, session.state.max_turns - session.state.turn),
                "strategy": self.strategy_name}

    def start(self, user_id: str | None) -> dict[str, Any]:
        from ..chat import ChatSession, UnknownUser

        try:
            session = ChatSession(self.world, self.strategy(), user=user_id, k=self.k,
                                  max_turns=self.max_turns, memory=self.memory(user_id))
        except UnknownUser:
            raise RequestError(404, "user_id", f"unknown user {user_id!r}") from None
        turn = session.start()
        self.store.create(session.to_dict())
        return self._answer(session, turn)

    def say(self, session_id: str, message: str) -> dict[str, Any]:
        from ..chat import ChatSession

        def change(state: dict[str, Any]):
            session = ChatSession.from_dict(self.world, self.strategy(), state,
                                            memory=self.memory(state["user"]))
            if session.done:
                raise RequestError(409, "session_id", "this conversation is over; start a "
                                   "new one with POST /chat")
            turn = session.say(message)
            return session.to_dict(), self._answer(session, turn)

        return self.store.update(session_id, change)

    def end(self, session_id: str) -> dict[str, Any]:
        if not self.store.delete(session_id):
            raise RequestError(404, "session_id", "unknown or expired chat session")
        return {"session_id": session_id, "deleted": True}


def open_store(artifacts) -> ChatStore:
    """The configured store (``chat_store``; failing: one-line ConfigError), else
    ``RUN_DIR/serve-state/chat.sqlite``; a run folder that cannot be written to (a read-only
    mount) falls back, with a warning, to a file in ``$TMPDIR`` named after this server's
    process, which its forked workers share but a restart does not find."""
    cfg = artifacts.config
    args = (cfg.chat_max_sessions, cfg.chat_idle_seconds)
    if cfg.chat_store:
        return ChatStore(cfg.chat_store, *args)
    try:
        return ChatStore(Path(artifacts.run.run_dir) / STATE_FOLDER / "chat.sqlite", *args)
    except ConfigError as e:
        fallback = Path(tempfile.gettempdir()) / f"llmrec-chat-{os.getpid()}.sqlite"
        log.warning("%s; chat sessions go to %s instead", e, fallback)
        return ChatStore(fallback, *args)


def add_chat_routes(app, artifacts) -> ChatService | None:
    """Install the chat routes on ``app`` (none when ``chat_strategy = "off"``)."""
    from fastapi import Body
    from fastapi import Path as PathParam
    from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

    cfg = artifacts.config
    if cfg.chat_strategy == "off":
        return None
    service = ChatService(artifacts, open_store(artifacts))
    Id = Annotated[StrictStr, Field(min_length=1, max_length=64)] | StrictInt
    SessionId = Annotated[str, PathParam(min_length=1, max_length=64)]

    class ChatStart(BaseModel):
        """Start a conversation: ``user_id`` (a known user: the agent knows their history
        before their held-out item) or nothing (anonymous)."""

        model_config = ConfigDict(extra="forbid")
        user_id: Id | None = None

    class ChatMessage(BaseModel):
        """One message of the person, free text ("a comedy from the 90s", "no, older")."""

        model_config = ConfigDict(extra="forbid")
        message: str = Field(min_length=1, max_length=cfg.chat_max_message)

    @app.post("/chat")
    async def chat_start(req: Annotated[ChatStart | None, Body()] = None):
        """Start a chat session: its id and the agent's first message."""
        from fastapi.responses import JSONResponse

        uid = None if req is None or req.user_id is None else str(req.user_id)
        return JSONResponse(service.start(uid), status_code=201)

    @app.post("/chat/{session_id}")
    async def chat_say(session_id: SessionId, req: ChatMessage):
        """A message to a session: the agent's reply and recommended items (cards)."""
        from fastapi.responses import JSONResponse

        if not req.message.strip():
            raise RequestError(422, "message", "message is empty")
        return JSONResponse(service.say(session_id, req.message))

    @app.delete("/chat/{session_id}")
    async def chat_end(session_id: SessionId):
        """End a chat session."""
        from fastapi.responses import JSONResponse

        return JSONResponse(service.end(session_id))

    return service
