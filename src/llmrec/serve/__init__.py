"""Serving: an HTTP recommendation service over a trained run (``llmrec serve RUN_DIR``).

retrieve (sequential model + FAISS ANN over item vectors + popularity, fused with configurable
weights) -> rank (a CTR model with prestored knowledge vectors when the run has one, else the
fused score) -> re-rank (optional MMR diversity) -> explain (stored LLM knowledge, else item
metadata). No LLM and no encoder run on the request path.

    >>> from llmrec.serve import ServeConfig, create_app, load_artifacts
    >>> app = create_app(load_artifacts("runs/sasrec", ServeConfig()))   # doctest: +SKIP
    >>> import uvicorn; uvicorn.run(app, host="127.0.0.1", port=8000)    # doctest: +SKIP

Needs the ``serve`` and ``faiss`` extras; FastAPI, uvicorn and FAISS are imported lazily.
"""

from ._app import create_app
from ._artifacts import Artifacts, build_index, load_artifacts, set_threads
from ._config import CHANNELS, ServeConfig, parse_weights
from ._guard import http_protocol
from ._rank import CTRRanker, mmr, save_ctr_ranker
from ._replay import (SERVE_FILE, Variant, paired_line, paired_test, replay,
                      replay_artifacts, run_serve_config, served_evaluation, served_table,
                      split_cases)
from ._service import RequestError, Service
from ._tune import ReplayCache, TuneResult, tune

__all__ = ["CHANNELS", "SERVE_FILE", "Artifacts", "CTRRanker", "ReplayCache", "RequestError",
           "ServeConfig", "Service", "TuneResult", "Variant", "build_index", "create_app",
           "http_protocol", "load_artifacts", "mmr", "paired_line", "paired_test",
           "parse_weights", "replay", "replay_artifacts", "run_serve_config", "save_ctr_ranker",
           "served_evaluation", "served_table", "set_threads", "split_cases", "tune"]
