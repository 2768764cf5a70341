"""The service's front door: one pure-ASGI middleware in front of the FastAPI app.

It checks the API key, reads the request body itself -- counting the bytes that actually
arrive, whatever the framing (``Content-Length`` or ``Transfer-Encoding: chunked``), under one
deadline for the whole body -- checks the content type, answers HEAD like GET, adds the
security headers, and records the request metrics. The framework never sees an oversized,
stalled or non-JSON body. (Starlette's ``BaseHTTPMiddleware`` would cost more per request, and
FastAPI's own ``max_body_size`` has no deadline.)

Requests without a body (no ``Content-Length`` above 0, no ``Transfer-Encoding``) -- every GET
of the API -- pass with a header scan and no other work.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time

# where no key is asked for: the web page, the docs and their assets, the schema, health
PUBLIC = frozenset(("/", "/healthz", "/docs", "/redoc", "/openapi.json", "/favicon.ico"))
PUBLIC_PREFIX = "/static/"
JSON_HEADERS = [(b"content-type", b"application/json")]
NOSNIFF = (b"x-content-type-options", b"nosniff")
# HTML pages: scripts only from this origin (no inline script), never in a frame
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HTML_HEADERS = ((b"x-frame-options", b"DENY"),)
BODY_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))
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
                                headers.append((b"content-security-policy", PAGE_CSP.encode()))
                        break
                message = {**message, "headers": headers}
            await send(message)

        inner = scope
        if scope["method"] == "HEAD":        # GET's answer; uvicorn drops the body for HEAD
            inner = {**scope, "method": "GET"}
        refusal = self._check(scope)
        if refusal is None and self._has_body(scope):
            refusal, receive = await self._read_body(receive)
        if refusal is None:
            await self.app(inner, receive, send_wrapper)
        elif refusal is not GONE:
            start, body = refusal
            await send_wrapper(start)
            await send_wrapper(body)
        route = inner.get("route")
        path = getattr(route, "path", None) or "unmatched"
        self.requests.labels(scope["method"], path, str(status[0])).inc()
        self.latency.labels(path).observe(time.perf_counter() - t0)

    @staticmethod
    def _has_body(scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
                return True
        return False

    def _check(self, scope):
        """An error response for what the headers alone refuse, else None."""
        path = scope["path"]
        headers = scope["headers"]
        if self.api_key and path not in PUBLIC and not path.startswith(PUBLIC_PREFIX):
            given = b""
            for name, value in headers:
                if name == b"x-api-key":
                    given = value
            if not secrets.compare_digest(given, self.api_key):
                return error_body(401, "missing or wrong API key", "x-api-key",
                                  _close_if_body(scope))
        length = content_type = None
        for name, value in headers:
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                content_type = value
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return error_body(413, f"request body over {self.max_body} bytes", "body",
                              [(b"connection", b"close")])
        if (scope["method"] in BODY_METHODS and self._has_body(scope)
                and not _is_json(content_type)):
            shown = (content_type or b"none").decode("latin-1")[:80]
            return error_body(415, f"content type {shown!r} is not supported: send "
                              "Content-Type: application/json", "content-type",
                              [(b"connection", b"close")])
        return None

    async def _read_body(self, receive):
        """Read the whole body (at most ``max_body`` bytes, within ``body_timeout`` seconds):
        ``(None, replaying receive)``, ``(error response, receive)`` or ``(GONE, receive)``
        when the client disconnected."""
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":       # the client went away
                        return GONE, receive
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body:
                        return error_body(413, f"request body over {self.max_body} bytes",
                                          "body", [(b"connection", b"close")]), receive
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            return error_body(408, f"request body not received within {self.body_timeout:g} "
                              "seconds", "body", [(b"connection", b"close")]), receive
        return None, _replay(b"".join(chunks), receive)


def _close_if_body(scope) -> list[tuple[bytes, bytes]]:
    """Refused before its body was read: close rather than read the body to keep the
    connection."""
    return [(b"connection", b"close")] if Guard._has_body(scope) else []


def _replay(body: bytes, receive):
    """A ``receive`` that hands the app the body read already, then the real one."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay():
        if pending:
            return pending.pop()
        return await receive()

    return replay
