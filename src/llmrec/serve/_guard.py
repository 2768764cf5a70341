"""The service's front door: one pure-ASGI middleware in front of the FastAPI app.

It checks the API key, reads the request body itself -- counting the bytes that actually
arrive, whatever the framing (``Content-Length`` or ``Transfer-Encoding: chunked``), under one
deadline for the whole body -- checks the content type, answers HEAD like GET, adds the
security headers, and records the request metrics. The framework never sees an oversized,
stalled or non-JSON body. (Starlette's ``BaseHTTPMiddleware`` would cost more per request, and
FastAPI's own ``max_body_size`` has no deadline; the deadline is kept by one sweeper task per
event loop, see :class:`Deadlines`.)

Requests without a body (no ``Content-Length`` above 0, no ``Transfer-Encoding``) -- every GET
of the API -- pass with a header scan and no other work.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

# where no key is asked for: the web page, the docs and their assets, the schema, health
PUBLIC = frozenset(("/", "/healthz", "/docs", "/redoc", "/openapi.json", "/favicon.ico"))
PUBLIC_PREFIX = "/static/"
JSON_HEADERS = [(b"content-type", b"application/json")]
NOSNIFF = (b"x-content-type-options", b"nosniff")
# HTML pages: scripts only from this origin (no inline script), never in a frame
PAGE_CSP = (b"content-security-policy",
            b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HTML_HEADERS = ((b"x-frame-options", b"DENY"),)
BODY_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))
METHODS = BODY_METHODS | {"GET", "HEAD", "OPTIONS", "TRACE", "CONNECT"}
GONE = ("gone",)                     # the client disconnected while sending its body


def error_body(status: int, message: str, field: str | None,
               headers: list[tuple[bytes, bytes]] | None = None):
    """ASGI messages of an error response in the service's one shape."""
    body = json.dumps({"error": message, "field": field}).encode()
    start = {"type": "http.response.start", "status": status,
             "headers": [*JSON_HEADERS, (b"content-length", str(len(body)).encode()),
                         *(headers or [])]}
    return start, {"type": "http.response.body", "body": body, "more_body": False}


def _is_json(content_type: bytes | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/")
                                            and media.endswith(b"+json"))


class Guard:
    """Pure ASGI middleware: API key, body size and deadline, content type, HEAD, security
    headers, request metrics."""

    def __init__(self, app, *, api_key: str | None, max_body: int, body_timeout: float,
                 requests, latency):
        self.app, self.max_body, self.body_timeout = app, max_body, body_timeout
        self.api_key = api_key.encode() if api_key else None
        self.requests, self.latency = requests, latency
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[str, Any] = {}
        self.deadlines = Deadlines(tick=min(1.0, max(0.05, body_timeout / 10)))

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = [500]

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = [*message.get("headers", ()), NOSNIFF]
                for name, value in headers:
                    if name == b"content-type":
                        if value.startswith(b"text/html"):
                            headers.extend(HTML_HEADERS)
                            if not any(n == b"content-security-policy" for n, _ in headers):
                                headers.append(PAGE_CSP)
                        break
                message["headers"] = headers
            await send(message)

        length = content_type = key = None
        chunked = False
        for name, value in scope["headers"]:             # one pass over the request head
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                content_type = value
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"x-api-key":
                key = value
        has_body = chunked or (length is not None and length != b"0")
        refusal = self._check(scope, length, content_type, key, has_body)
        if refusal is None and has_body:
            refusal, receive = await self._read_body(receive)
        inner = scope
        if scope["method"] == "HEAD":        # GET's answer; uvicorn drops the body for HEAD
            inner = {**scope, "method": "GET"}
        if refusal is None:
            await self.app(inner, receive, send_wrapper)
        elif refusal is not GONE:
            start, body = refusal
            await send_wrapper(start)
            await send_wrapper(body)
        route = inner.get("route")
        path = getattr(route, "path", None) or "unmatched"
        # prometheus_client's labels() validates and locks on every call: keep the children
        # (a bounded set: known methods, route templates, status codes)
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        counter = self._counters.get((method, path, status[0]))
        if counter is None:
            counter = self._counters[method, path, status[0]] = \
                self.requests.labels(method, path, str(status[0]))
        counter.inc()
        histogram = self._histograms.get(path)
        if histogram is None:
            histogram = self._histograms[path] = self.latency.labels(path)
        histogram.observe(time.perf_counter() - t0)

    def _check(self, scope, length, content_type, key, has_body):
        """An error response for what the request head alone refuses, else None."""
        close = [(b"connection", b"close")] if has_body else []
        if self.api_key is not None:
            path = scope["path"]
            if (path not in PUBLIC and not path.startswith(PUBLIC_PREFIX)
                    and not secrets.compare_digest(key or b"", self.api_key)):
                return error_body(401, "missing or wrong API key", "x-api-key", close)
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return error_body(413, f"request body over {self.max_body} bytes", "body", close)
        if has_body and scope["method"] in BODY_METHODS and not _is_json(content_type):
            shown = (content_type or b"none").decode("latin-1")[:80]
            return error_body(415, f"content type {shown!r} is not supported: send "
                              "Content-Type: application/json", "content-type", close)
        return None

    async def _read_body(self, receive):
        """Read the whole body (at most ``max_body`` bytes, within ``body_timeout`` seconds):
        ``(None, replaying receive)``, ``(error response, receive)`` or ``(GONE, receive)``
        when the client disconnected."""
        chunks: list[bytes] = []
        size = 0
        task = self.deadlines.watch(self.body_timeout)
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":           # the client went away
                    return GONE, receive
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    return error_body(413, f"request body over {self.max_body} bytes",
                                      "body", [(b"connection", b"close")]), receive
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        except asyncio.CancelledError:
            if not self.deadlines.expired(task):
                raise
            return error_body(408, f"request body not received within {self.body_timeout:g} "
                              "seconds", "body", [(b"connection", b"close")]), receive
        finally:
            self.deadlines.forget(task)
        return None, _replay(b"".join(chunks), receive)


class Deadlines:
    """Cancels the body reads that outlive their deadline: one sweep every ``tick`` seconds
    per event loop, instead of a timer per request (``asyncio.timeout`` costs tens of
    microseconds a request; this costs a dict entry). A read is cancelled between its
    deadline and one tick later."""

    def __init__(self, tick: float):
        self.tick = tick
        self.waiting: dict[asyncio.Task, float] = {}
        self.cancelled: set[asyncio.Task] = set()
        self.sweeper: asyncio.Task | None = None

    def watch(self, seconds: float) -> asyncio.Task:
        """Start the clock for the current task; it must call :meth:`forget` when done."""
        task = asyncio.current_task()
        loop = task.get_loop()
        self.waiting[task] = loop.time() + seconds
        if self.sweeper is None or self.sweeper.done() or self.sweeper.get_loop() is not loop:
            self.sweeper = loop.create_task(self._sweep())
        return task

    def forget(self, task: asyncio.Task) -> None:
        self.waiting.pop(task, None)

    def expired(self, task: asyncio.Task) -> bool:
        """Whether the CancelledError ``task`` caught came from here (and undo it if so)."""
        if task not in self.cancelled:
            return False
        self.cancelled.discard(task)
        task.uncancel()
        return True

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while self.waiting:
            await asyncio.sleep(self.tick)
            now = loop.time()
            for task, deadline in list(self.waiting.items()):
                if now >= deadline and task.get_loop() is loop:
                    del self.waiting[task]
                    self.cancelled.add(task)
                    task.cancel()


def _replay(body: bytes, receive):
    """A ``receive`` that hands the app the body read already, then the real one."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay():
        if pending:
            return pending.pop()
        return await receive()

    return replay


def http_protocol():
    """uvicorn's HTTP/1.1 protocol (httptools, else h11) whose own 400 -- for bytes that are
    not HTTP, e.g. a bad chunk size -- is in the service's error shape, not plain text. Pass
    it as ``uvicorn.Config(http=...)``."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:                                  # httptools is not installed
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base

    class Protocol(Base):
        def send_400_response(self, msg: str) -> None:
            body = json.dumps({"error": f"invalid HTTP request ({msg.rstrip('.')})",
                               "field": None}).encode()
            head = [b"HTTP/1.1 400 Bad Request\r\n"]
            for name, value in self.server_state.default_headers:
                head += [name, b": ", value, b"\r\n"]
            head += [b"content-type: application/json\r\n",
                     b"content-length: %d\r\n" % len(body),
                     b"x-content-type-options: nosniff\r\n", b"connection: close\r\n\r\n", body]
            self.transport.write(b"".join(head))
            self.transport.close()

    return Protocol
