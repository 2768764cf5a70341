"""The HTTP layer: ``create_app(artifacts)`` builds a FastAPI app around a :class:`Service`.

No import-time globals: every app owns its service, its request models (their limits come from
the config) and its Prometheus registry. Errors are JSON and name the field at fault::

    422 {"error": "invalid request", "fields": [{"field": "n", "message": "..."}]}
    404 {"error": "unknown item '99999'", "field": "item_id"}
    401 {"error": "missing or wrong API key", "field": "x-api-key"}
    413 {"error": "request body over 1000000 bytes", "field": "body"}
"""

import glob
import logging
import os
import secrets
import time
from importlib import resources
from typing import Annotated, Any

from ._artifacts import Artifacts
from ._batch import MicroBatcher
from ._service import RequestError, Service

log = logging.getLogger(__name__)
PUBLIC = ("/", "/healthz", "/docs", "/openapi.json", "/docs/oauth2-redirect")


def _field(loc: tuple[Any, ...]) -> str:
    parts = list(loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc)
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or (str(loc[0]) if loc else "body")


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
    from fastapi.responses import JSONResponse

    return JSONResponse(body, status_code=status, headers=headers)


class _WorkerMetrics:
    """The metric files of every worker in ``folder``, summed (prometheus_client's
    multiprocess merge), skipping empty files: a worker creates its file empty and then sizes
    it, so an empty file is one being created right now or one left by a worker killed in
    between, and prometheus_client cannot parse it (it fails the whole scrape)."""

    def __init__(self, folder: str):
        self.folder = folder

    def collect(self):
        from prometheus_client.multiprocess import MultiProcessCollector

        files = []
        for path in glob.glob(os.path.join(self.folder, "*.db")):
            try:
                if os.path.getsize(path) > 0:
                    files.append(path)
            except FileNotFoundError:
                pass
        return MultiProcessCollector.merge(files, accumulate=True)


class _Guard:
    """Pure ASGI middleware: API key, body size limit, request metrics (cheaper than
    Starlette's BaseHTTPMiddleware on the hot path)."""

    def __init__(self, app, *, api_key: str | None, max_body: int, requests, latency):
        self.app, self.api_key, self.max_body = app, api_key, max_body
        self.requests, self.latency = requests, latency

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        headers = dict(scope.get("headers") or [])
        response = None
        if self.api_key and scope["path"] not in PUBLIC:
            given = headers.get(b"x-api-key", b"").decode("latin-1")
            if not secrets.compare_digest(given.encode(), self.api_key.encode()):
                response = _json(401, {"error": "missing or wrong API key",
                                       "field": "x-api-key"})
        length = headers.get(b"content-length")
        if response is None and length is not None:
            if not length.isdigit() or int(length) > self.max_body:
                response = _json(413, {"error": f"request body over {self.max_body} bytes",
                                       "field": "body"})
        if response is not None:
            await response(scope, receive, send_wrapper)
        else:
            await self.app(scope, receive, send_wrapper)
        route = scope.get("route")
        path = getattr(route, "path", None) or "unmatched"
        self.requests.labels(scope["method"], path, str(status["code"])).inc()
        self.latency.labels(path).observe(time.perf_counter() - t0)


def create_app(artifacts: Artifacts):
    """A FastAPI app serving ``artifacts`` (see :func:`~llmrec.serve.load_artifacts`)."""
    from fastapi import FastAPI, HTTPException, Path, Query
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, Response
    from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge,
                                   Histogram, generate_latest)
    from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

    cfg = artifacts.config
    service = Service(artifacts)
    batcher = (MicroBatcher(service, window=cfg.batch_window_ms / 1000, max_batch=cfg.batch_max)
               if cfg.batch_window_ms > 0 else None)
    max_n, max_history = cfg.max_n, cfg.max_history
    Id = Annotated[StrictStr, Field(min_length=1, max_length=64)] | StrictInt

    class Filters(BaseModel):
        model_config = ConfigDict(extra="forbid")
        genres: list[Annotated[StrictStr, Field(max_length=64)]] = Field(
            default_factory=list, max_length=64, description="any of these genres")
        year_min: int | None = Field(None, ge=0, le=9999)
        year_max: int | None = Field(None, ge=0, le=9999)

    class Weights(BaseModel):
        model_config = ConfigDict(extra="forbid")
        sequential: float | None = Field(None, ge=0, le=1000)
        ann: float | None = Field(None, ge=0, le=1000)
        popularity: float | None = Field(None, ge=0, le=1000)

    class RecommendRequest(BaseModel):
        """Give ``user_id`` (a known user: their stored history) and/or ``history`` (raw item
        ids, oldest first; replaces the stored history). An unknown user with no history gets
        popular items (cold start)."""

        model_config = ConfigDict(extra="forbid")
        user_id: Id | None = None
        history: list[Id] | None = Field(None, max_length=max_history)
        n: int = Field(10, ge=1, le=max_n)
        exclude_seen: bool = True
        exclude: list[Id] = Field(default_factory=list, max_length=max_history)
        filters: Filters = Field(default_factory=Filters)
        diversity: float | None = Field(None, ge=0, le=1,
                                        description="MMR strength, 0 = off")
        weights: Weights | None = None

        @model_validator(mode="after")
        def _who(self):
            if self.user_id is None and self.history is None:
                raise ValueError("give user_id or history (or both)")
            return self

    # `llmrec serve --workers N` sets PROMETHEUS_MULTIPROC_DIR before prometheus_client is
    # imported: every worker then writes its metric values to files there
    multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    registry = CollectorRegistry()
    requests = Counter("llmrec_http_requests", "HTTP requests", ["method", "route", "status"],
                       registry=registry)
    latency = Histogram("llmrec_http_request_seconds", "request latency", ["route"],
                        registry=registry, buckets=(.0005, .001, .0015, .002, .003, .004, .005,
                                                    .0075, .01, .015, .02, .03, .05, .1, .25,
                                                    .5, 1, 2.5))
    channel_items = Counter("llmrec_recommended_items", "recommended items by channel of "
                            "origin", ["channel"], registry=registry)
    cold = Counter("llmrec_cold_start", "cold-start requests", ["kind"], registry=registry)
    Gauge("llmrec_catalog_items", "items served", registry=registry,
          multiprocess_mode="max").set(artifacts.n_items)
    Gauge("llmrec_knowledge_items", "items with stored LLM knowledge", registry=registry,
          multiprocess_mode="max").set(len(artifacts.knowledge))

    app = FastAPI(title="llmrec", version=_version(),
                  description="Multi-channel retrieval (sequential model + FAISS ANN + "
                  "popularity), ranking, MMR re-ranking, explanations from stored knowledge.")
    app.state.service = service
    app.state.batcher = batcher
    app.state.registry = registry

    async def _now(**request):
        return service.recommend(**request)

    page = resources.files("llmrec.serve").joinpath("static/index.html").read_text("utf-8")

    @app.exception_handler(RequestError)
    async def _request_error(request, exc: RequestError):
        return _json(exc.status, {"error": exc.message, "field": exc.field})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError):
        fields = [{"field": "body" if e.get("type") == "json_invalid"
                   else _field(tuple(e.get("loc", ()))), "message": e.get("msg", "")}
                  for e in exc.errors()]
        return _json(422, {"error": "invalid request: " + ", ".join(
            sorted({f["field"] for f in fields})), "fields": fields})

    @app.exception_handler(HTTPException)
    async def _http(request, exc: HTTPException):
        return _json(exc.status_code, {"error": str(exc.detail)}, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request, exc: Exception):
        log.exception("unhandled error on %s", request.url.path)
        return _json(500, {"error": "internal error"})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> str:
        return page

    # Routes return JSONResponse: the dicts are built by the service, validating them again
    # against a response model would cost more than the recommendation itself. Handlers are
    # ``async`` and compute inline (about a millisecond, GIL-bound anyway): a hop to a thread
    # pool per request costs more than it overlaps.
    @app.get("/healthz")
    async def healthz():
        return _json(200, {"status": "ok", "pid": os.getpid(), **artifacts.info})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        if multiprocess_dir:             # several workers: sum what every worker recorded
            return Response(generate_latest(_WorkerMetrics(multiprocess_dir)),
                            media_type=CONTENT_TYPE_LATEST)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/recommend")
    async def recommend(req: RecommendRequest):
        out = await (batcher.recommend if batcher else _now)(
            user_id=None if req.user_id is None else str(req.user_id),
            history=None if req.history is None else [str(x) for x in req.history],
            n=req.n, exclude_seen=req.exclude_seen, exclude=[str(x) for x in req.exclude],
            genres=req.filters.genres, year_min=req.filters.year_min,
            year_max=req.filters.year_max, diversity=req.diversity,
            weights=None if req.weights is None else req.weights.model_dump(exclude_none=True))
        for item in out["items"]:
            channel_items.labels(item["channel"]).inc()
        if out["cold_start"]:
            cold.labels(out["cold_start"]).inc()
        return _json(200, out)

    @app.get("/items/{item_id}")
    async def item(item_id: Annotated[str, Path(max_length=64)]):
        return _json(200, service.item(item_id))

    @app.get("/items/{item_id}/similar")
    async def similar(item_id: Annotated[str, Path(max_length=64)],
                n: Annotated[int, Query(ge=1, le=max_n)] = 10):
        return _json(200, service.similar(item_id, n))

    @app.get("/users")
    async def users(limit: Annotated[int, Query(ge=1, le=1000)] = 100,
              offset: Annotated[int, Query(ge=0)] = 0):
        return _json(200, service.users(limit, offset))

    @app.get("/users/{user_id}")
    async def user(user_id: Annotated[str, Path(max_length=64)],
             limit: Annotated[int, Query(ge=1, le=max_history)] = 50):
        return _json(200, service.user(user_id, limit))

    @app.get("/genres")
    async def genres():
        return _json(200, {"genres": sorted({g for gs in artifacts.genres for g in gs})})

    app.add_middleware(_Guard, api_key=cfg.api_key, max_body=cfg.max_body_bytes,
                       requests=requests, latency=latency)
    return app


def _version() -> str:
    from .. import __version__

    return __version__
