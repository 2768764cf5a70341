"""``llmrec serve RUN_DIR [--host 127.0.0.1 --port 8000]``: the HTTP service and web page."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import socket

from ..errors import ConfigError, LlmrecError

log = logging.getLogger("llmrec.serve")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a trained run over HTTP (API, web page, metrics)")
    p.add_argument("run_dir")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key-env", metavar="VAR",
                   help="require header X-API-Key equal to this environment variable's value")
    p.add_argument("--config", help="serve TOML (weights, channels, limits; see llmrec.serve)")
    p.add_argument("--weights", help="channel weights, e.g. sequential=1,ann=0.5,popularity=0.1")
    p.add_argument("--item-vectors", choices=("text", "model"),
                   help="ANN space: encoded item text (default) or the model's item table")
    p.add_argument("--encoder", choices=("minilm", "hashing"), help="text encoder for 'text'")
    p.add_argument("--index", choices=("hnsw", "flat"), help="FAISS index (default hnsw)")
    p.add_argument("--ranker", choices=("auto", "fused", "ctr"),
                   help="auto: the run's CTR model (RUN_DIR/ctr) if any, else fused scores")
    p.add_argument("--threads", type=int, default=1, help="torch/FAISS threads (default 1)")
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

        from ..serve import ServeConfig, create_app, load_artifacts, parse_weights
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
    cfg = ServeConfig.load(args.config, item_vectors=args.item_vectors, encoder=args.encoder,
                           index=args.index, ranker=args.ranker, api_key=api_key,
                           weights=parse_weights(args.weights) if args.weights else None)
    _check_port(args.host, args.port)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        log.warning("listening on %s without an API key: anyone who can reach it may query it "
                    "(see --api-key-env)", args.host)
    import torch

    torch.set_num_threads(args.threads)
    import faiss

    faiss.omp_set_num_threads(args.threads)
    artifacts = load_artifacts(args.run_dir, cfg)
    app = create_app(artifacts)
    log.info("llmrec serve: http://%s:%d/  (API docs at /docs, metrics at /metrics)",
             args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0
