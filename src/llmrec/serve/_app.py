"""The HTTP layer: ``create_app(artifacts)`` builds a FastAPI app around a :class:`Service`.

No import-time globals: every app owns its service, its request models (their limits come from
the config) and its Prometheus registry.

Errors. Every 4xx and 5xx answer, the framework's own included, is JSON of one shape:
``{"error": <one line>, "field": <what is at fault, or null>}``; a failed validation (422)
also lists every field at fault::

    400 {"error": "request body is not valid JSON (...)", "field": "body"}
    401 {"error": "missing or wrong API key", "field": "x-api-key"}
    404 {"error": "unknown item '99999'", "field": "item_id"}
    404 {"error": "no such path: /nowhere", "field": "path"}
    405 {"error": "method DELETE is not allowed here (allowed: POST)", "field": "method"}
    408 {"error": "request body not received within 10 seconds", "field": "body"}
    413 {"error": "request body over 1000000 bytes", "field": "body"}
    415 {"error": "content type 'text/plain' is not supported: ...", "field": "content-type"}
    422 {"error": "invalid request: n", "field": "n",
         "fields": [{"field": "n", "message": "..."}]}
    500 {"error": "internal error", "field": null}

The body limit counts the bytes that arrive (``Content-Length`` or chunked) and the whole body
must arrive within ``body_timeout`` seconds of the request head; 401/408/413/415 answered
before the body was read close the connection. HEAD is answered wherever GET is (same status
and headers, no body). A request body must be ``application/json`` (or ``+json``).

Headers. Every response carries ``X-Content-Type-Options: nosniff``; every HTML page also
``X-Frame-Options: DENY`` and a ``Content-Security-Policy`` with ``frame-ancestors 'none'``
and scripts from this origin only (no inline script anywhere: the web page's code is
``/static/page.js``).

Key policy (``--api-key-env``). Without the key: the web page ``/``, ``/healthz`` (status and
version only), the API docs ``/docs`` (Swagger UI) and ``/redoc`` with ``/openapi.json`` and
their assets under ``/static/`` -- code and schema, no data. Everything that returns data or
describes the deployment -- ``/recommend``, ``/items``, ``/users``, ``/genres``, ``/info`` (run
folder, model, pid, artifacts), ``/metrics``, the chat sessions ``/chat`` (see ``_chat.py``) --
needs header ``X-API-Key``. The docs are served
from the installed package (the pinned ``fastapi-offline`` wheel ships Swagger UI 5.32.6 and
ReDoc 2.5.3): they work offline and load nothing from a CDN.
"""

import contextlib
import glob
import logging
import os
from importlib import resources
from typing import Annotated, Any

from ._artifacts import Artifacts
from ._batch import MicroBatcher
from ._guard import Guard
from ._service import RequestError, Service

log = logging.getLogger(__name__)
# the docs pages run the packaged Swagger UI / ReDoc bundles: they set styles inline (React,
# styled-components) and ReDoc runs its search index in a blob: worker
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
            "worker-src 'self' blob:; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")


def _field(loc: tuple[Any, ...]) -> str:
    parts = list(loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc)
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or (str(loc[0]) if loc else "body")


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
    from fastapi.responses import JSONResponse

    return JSONResponse(body, status_code=status, headers=headers)


def _error(status: int, message: str, field: str | None,
           headers: dict[str, str] | None = None):
    return _json(status, {"error": message, "field": field}, headers)


def _parse_failure(exc: BaseException | None) -> str:
    """Why FastAPI could not parse a JSON body, in words."""
    if isinstance(exc, UnicodeDecodeError):
        return "request body is not valid JSON (not UTF-8 text)"
    if isinstance(exc, RecursionError):
        return "request body is not valid JSON (nested too deeply)"
    if isinstance(exc, ValueError) and "digits" in str(exc):
        return "request body is not valid JSON (an integer with too many digits)"
    return "request body is not valid JSON"


def _page(name: str) -> str:
    return resources.files("llmrec.serve").joinpath(f"pages/{name}").read_text("utf-8")


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


def create_app(artifacts: Artifacts):
    """A FastAPI app serving ``artifacts`` (see :func:`~llmrec.serve.load_artifacts`)."""
    from fastapi import FastAPI, Path, Query
    from fastapi.exceptions import RequestValidationError
    from fastapi.openapi.utils import get_openapi
    from fastapi.responses import HTMLResponse, Response
    from fastapi.staticfiles import StaticFiles
    from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge,
                                   Histogram, generate_latest)
    from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator
    from starlette.exceptions import HTTPException

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

    version = _version()
    @contextlib.asynccontextmanager
    async def lifespan(app):
        # in each worker process, before it takes traffic (see Service.warm_up); a failure
        # is logged, not fatal: the requests it would fail on answer 500 with the same cause
        try:
            service.warm_up()
        except Exception:
            log.exception("warm-up failed; serving without it")
        yield

    app = FastAPI(title="llmrec", version=version, docs_url=None, redoc_url=None,
                  swagger_ui_oauth2_redirect_url=None, lifespan=lifespan,
                  description="Multi-channel retrieval (sequential model + FAISS ANN + "
                  "popularity), ranking, MMR re-ranking, explanations from stored knowledge."
                  + (" Every data route needs header X-API-Key (Authorize)."
                     if cfg.api_key else ""))
    app.state.service = service
    app.state.batcher = batcher
    app.state.registry = registry

    async def _now(**request):
        return service.recommend(**request)

    pages = {name: _page(name) for name in ("index.html", "docs.html", "redoc.html")}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            if cfg.api_key:            # Swagger UI's "Authorize": the key, kept in memory
                schema.setdefault("components", {})["securitySchemes"] = {"apiKey": {
                    "type": "apiKey", "in": "header", "name": "X-API-Key"}}
                schema["security"] = [{"apiKey": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi

    @app.exception_handler(RequestError)
    async def _request_error(request, exc: RequestError):
        return _error(exc.status, exc.message, exc.field)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError):
        errors = exc.errors()
        if errors and all(e.get("type") == "json_invalid" for e in errors):
            ctx = errors[0].get("ctx") or {}
            detail = f" ({ctx['error']})" if ctx.get("error") else ""
            return _error(400, f"request body is not valid JSON{detail}", "body")
        fields = [{"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg", "")}
                  for e in errors]
        return _json(422, {"error": "invalid request: " + ", ".join(
            sorted({f["field"] for f in fields})), "field": fields[0]["field"] if fields
            else "body", "fields": fields})

    @app.exception_handler(HTTPException)
    async def _http(request, exc: HTTPException):
        """The framework's own errors (unknown path, wrong method, unparseable body)."""
        headers = getattr(exc, "headers", None)
        if exc.status_code == 404:
            return _error(404, f"no such path: {request.url.path[:200]}", "path", headers)
        if exc.status_code == 405:
            allowed = (headers or {}).get("Allow", "")
            return _error(405, f"method {request.method} is not allowed here (allowed: "
                          f"{allowed})", "method", headers)
        if exc.status_code == 400:
            return _error(400, _parse_failure(exc.__cause__), "body", headers)
        return _error(exc.status_code, str(exc.detail), None, headers)

    @app.exception_handler(Exception)
    async def _bug(request, exc: Exception):
        log.exception("unhandled error on %s", request.url.path)
        return _error(500, "internal error", None)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return HTMLResponse(pages["index.html"])

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs():
        return HTMLResponse(pages["docs.html"], headers={"Content-Security-Policy": DOCS_CSP})

    @app.get("/redoc", response_class=HTMLResponse, include_in_schema=False)
    async def redoc():
        return HTMLResponse(pages["redoc.html"], headers={"Content-Security-Policy": DOCS_CSP})

    # Routes return JSONResponse: the dicts are built by the service, validating them again
    # against a response model would cost more than the recommendation itself. Handlers are
    # ``async`` and compute inline (about a millisecond, GIL-bound anyway): a hop to a thread
    # pool per request costs more than it overlaps.
    @app.get("/healthz")
    async def healthz():
        """Liveness: status and version only (no key needed; nothing about the deployment)."""
        return _json(200, {"status": "ok", "version": version})

    @app.get("/info")
    async def info():
        """What is served: run folder, model, data set, channels, ranker, worker pid, and this
        worker's batched forwards so far (per kind: batches run, forwards in them)."""
        return _json(200, {"status": "ok", "version": version, "pid": os.getpid(),
                           **artifacts.info, "batches": {
                               k: {"batches": v[0], "forwards": v[1]}
                               for k, v in (batcher.stats if batcher else {}).items()}})

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

    from ._chat import add_chat_routes

    app.state.chat = add_chat_routes(app, artifacts)
    app.mount("/static/vendor", StaticFiles(directory=_vendor_assets()), name="vendor")
    app.mount("/static", StaticFiles(packages=[("llmrec.serve", "static")]), name="static")
    app.add_middleware(Guard, api_key=cfg.api_key, max_body=cfg.max_body_bytes,
                       body_timeout=cfg.body_timeout, requests=requests, latency=latency)
    return app


def _vendor_assets() -> str:
    """Swagger UI and ReDoc bundles from the pinned ``fastapi-offline`` wheel."""
    try:
        folder = resources.files("fastapi_offline").joinpath("static")
    except ModuleNotFoundError:
        from ..errors import LlmrecError

        raise LlmrecError("llmrec serve needs the serve extra (fastapi-offline is missing): "
                          "pip install 'llmrec[serve,faiss]'") from None
    return str(folder)


def _version() -> str:
    from .. import __version__

    return __version__
