"""``llmrec serve RUN_DIR [--host 127.0.0.1 --port 8000]``: the HTTP service and web page."""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from ..errors import ConfigError, LlmrecError
from ._common import int_range, port_int, positive_float, positive_int

log = logging.getLogger("llmrec.serve")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a trained run over HTTP (API, web page, metrics)")
    p.add_argument("run_dir")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port_int, default=8000)
    p.add_argument("--api-key-env", metavar="VAR",
                   help="require header X-API-Key equal to this environment variable's value")
    p.add_argument("--config", help="serve TOML (weights, channels, limits; see llmrec.serve); "
                   "default RUN_DIR/serve.toml when `llmrec tune-serving` wrote one")
    p.add_argument("--weights", help="channel weights, e.g. sequential=1,ann=0.5,popularity=0.1")
    p.add_argument("--item-vectors", choices=("text", "model"),
                   help="ANN space: encoded item text (default) or the model's item table")
    p.add_argument("--encoder", choices=("minilm", "hashing"), help="text encoder for 'text'")
    p.add_argument("--index", choices=("auto", "hnsw", "flat"),
                   help="ANN search: flat (exact), hnsw (FAISS, approximate) or auto (default: "
                   "flat up to 10,000 items, else hnsw)")
    p.add_argument("--ranker", choices=("auto", "fused", "ctr"),
                   help="auto: the run's CTR model (RUN_DIR/ctr) if any, else fused scores")
    p.add_argument("--body-timeout", type=positive_float, metavar="SECONDS",
                   help="a request body must arrive within this many seconds, else 408 and "
                   "the connection is closed (default 10)")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="torch/FAISS threads (default 1)")
    p.add_argument("--workers", type=int_range(1, 64), default=1,
                   help="worker processes sharing the port and the loaded artifacts (forked "
                   "after loading; a worker that dies is replaced). Default 1; about one per "
                   "core for throughput")
    p.set_defaults(func=cmd_serve)


def _check_port(host: str, port: int) -> None:
    if not 0 < port < 65536:
        raise ConfigError(f"--port must be in 1..65535, not {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ConfigError(f"--host {host!r}: cannot resolve ({e.strerror})") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as e:
            why = "in use" if e.errno == errno.EADDRINUSE else e.strerror
            raise ConfigError(f"cannot listen on {host}:{port} ({why})") from None


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..serve import (SERVE_FILE, ServeConfig, create_app, http_protocol, load_artifacts,
                             parse_weights, set_threads)
    except ImportError as e:
        raise LlmrecError(f"llmrec serve needs the serve extra ({e.name} is missing): "
                          "pip install 'llmrec[serve,faiss]'") from None
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise ConfigError(f"--api-key-env {args.api_key_env}: that environment variable "
                              "is not set or empty")
    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, not {args.threads}")
    if not 1 <= args.workers <= 64:
        raise ConfigError(f"--workers must be in 1..64, not {args.workers}")
    config = args.config
    if config is None and (Path(args.run_dir).expanduser() / SERVE_FILE).exists():
        config = Path(args.run_dir).expanduser() / SERVE_FILE    # tuned by tune-serving
    cfg = ServeConfig.load(config, item_vectors=args.item_vectors, encoder=args.encoder,
                           index=args.index, ranker=args.ranker, api_key=api_key,
                           body_timeout=args.body_timeout,
                           weights=parse_weights(args.weights) if args.weights else None)
    _check_port(args.host, args.port)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        log.warning("listening on %s without an API key: anyone who can reach it may query it "
                    "(see --api-key-env)", args.host)
    set_threads(args.threads)
    with contextlib.ExitStack() as stack:
        # one worker keeps its metrics in memory: a PROMETHEUS_MULTIPROC_DIR inherited from the
        # environment (another server's, perhaps gone) must not redirect them; the variable is
        # put back as it was when serving ends
        previous = os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if previous is not None:
            stack.callback(os.environ.__setitem__, "PROMETHEUS_MULTIPROC_DIR", previous)
        else:
            stack.callback(os.environ.pop, "PROMETHEUS_MULTIPROC_DIR", None)
        if args.workers > 1:
            # before prometheus_client is first imported (by create_app): shared metric files
            folder = metrics_folder()
            stack.callback(shutil.rmtree, folder, ignore_errors=True)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
        artifacts = load_artifacts(args.run_dir, cfg)
        app = create_app(artifacts)
        log.info("llmrec serve: http://%s:%d/  (API docs at /docs, metrics at /metrics)%s",
                 args.host, args.port,
                 f", {args.workers} worker processes" if args.workers > 1 else "")
        if args.workers == 1:
            uvicorn.run(app, host=args.host, port=args.port, log_level="warning",
                        access_log=False, http=http_protocol())
            return 0
        return serve_forked(app, args.host, args.port, args.workers)


METRICS_PREFIX = "llmrec-metrics-"


def _owner_alive(pid: int, folder: Path) -> bool:
    """Whether the server that made ``folder`` (process ``pid``) still runs. On Linux a pid
    reused by a process started after the folder was last changed does not count, nor does a
    zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")    # field 22: starttime
        changed = folder.stat().st_ctime
    except (OSError, ValueError, IndexError, StopIteration):
        return True                       # no /proc (not Linux): trust the pid
    return fields[0] != "Z" and started <= changed


def metrics_folder() -> Path:
    """A fresh Prometheus multiprocess folder ``$TMPDIR/llmrec-metrics-<pid>`` for this server;
    first removes those of servers that are gone (a SIGKILLed parent cannot clean its own)."""
    root = Path(tempfile.gettempdir())
    for old in root.glob(METRICS_PREFIX + "*"):
        pid = old.name[len(METRICS_PREFIX):]
        if old.is_dir() and pid.isdigit() and (int(pid) == os.getpid()
                                               or not _owner_alive(int(pid), old)):
            shutil.rmtree(old, ignore_errors=True)
            log.info("removed %s, left by a server that is gone", old)
    folder = root / f"{METRICS_PREFIX}{os.getpid()}"
    folder.mkdir(mode=0o700)
    return folder


def _die_with_parent(parent: int, liveness_fd: int) -> None:
    """In a worker just forked: end (SIGTERM, uvicorn's graceful stop) when ``parent`` dies,
    even by SIGKILL. Linux: the parent-death signal (prctl PR_SET_PDEATHSIG), then a check
    for a parent that died before it was set. Everywhere: a thread blocked on the read end of
    a pipe whose only write ends the parent holds; EOF means the parent is gone."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM, 0, 0, 0)        # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:                            # it died before prctl took hold
        os._exit(0)

    def watch() -> None:
        with contextlib.suppress(OSError):
            while os.read(liveness_fd, 1):
                pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="llmrec-parent-watch", daemon=True).start()


def serve_forked(app, host: str, port: int, workers: int, *, max_restarts: int = 10) -> int:
    """Pre-fork serving: bind, fork ``workers`` uvicorn servers that share the listening port and
    the artifacts loaded before the fork (copy-on-write), replace a worker that dies, and stop
    them all on SIGTERM/SIGINT. Workers end with the parent, also when it is SIGKILLed (see
    :func:`_die_with_parent`). Returns 0 after a requested stop, 1 if workers kept dying."""
    import uvicorn

    from ..serve import http_protocol

    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    per_worker = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
    socks = [socket.create_server((host, port), family=family, backlog=2048,
                                  reuse_port=per_worker)
             for _ in range(workers if per_worker else 1)]
    parent = os.getpid()
    liveness_r, liveness_w = os.pipe()          # only the parent keeps the write end open
    children: dict[int, int] = {}
    stopping = False
    restarts: list[float] = []

    def spawn(k: int) -> None:
        pid = os.fork()
        if pid == 0:                                   # the worker
            code = 1
            try:
                os.close(liveness_w)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                _die_with_parent(parent, liveness_r)
                config = uvicorn.Config(app, log_level="warning", access_log=False,
                                        http=http_protocol())
                uvicorn.Server(config).run(sockets=[socks[k % len(socks)]])
                code = 0
            finally:
                os._exit(code)
        children[pid] = k

    def stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for k in range(workers):
        spawn(k)
    status = 0
    while children:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        k = children.pop(pid, None)
        if k is None or stopping:
            continue
        now = time.monotonic()
        restarts = [t for t in restarts if now - t < 60] + [now]
        if len(restarts) > max_restarts:
            log.error("workers died %d times in a minute; stopping", len(restarts))
            status = 1
            stop(signal.SIGTERM, None)
            continue
        log.warning("worker %d (pid %d) ended with %s; starting a new one", k, pid,
                    f"signal {os.WTERMSIG(code)}" if os.WIFSIGNALED(code)
                    else f"status {os.WEXITSTATUS(code)}")
        spawn(k)
    for sock in socks:
        sock.close()
    os.close(liveness_r)
    os.close(liveness_w)
    return status
