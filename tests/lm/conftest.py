"""Fixtures for the torch LLM layer: the packaged SmolLM2-135M GGUF, converted to torch once.

The GGUF -> torch conversion (transformers + gguf) parses the whole file and costs 15-90 s on
2 cores; ``load_lm`` caches its result as a Hugging Face folder. Tests keep that cache in
pytest's own cache folder (``.pytest_cache/d/llmrec-lm``), so only the first test session on a
machine converts (the cache key is the GGUF's SHA-256 and the transformers/gguf versions, so
a new version converts again); every later ``load_lm`` is a ~1 s folder load. Tests that
change the model (tokens, adapters) load their own copy with :func:`fresh_lm`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from llmrec.lm import LM, load_lm


@pytest.fixture(scope="session")
def lm_cache(request: pytest.FixtureRequest) -> Path:
    return Path(request.config.cache.mkdir("llmrec-lm"))


@pytest.fixture(scope="session")
def base_lm(lm_cache: Path) -> LM:
    """The packaged model, read-only: never add tokens or adapters to it. Under pytest-xdist
    the first worker converts while the others wait on a file lock, then load its result."""
    import fcntl

    with open(lm_cache / "convert.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return load_lm(cache_dir=lm_cache)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture
def fresh_lm(lm_cache: Path, base_lm: LM) -> Callable[[], LM]:
    """A factory of new copies of the packaged model (from the conversion cache)."""
    return lambda: load_lm(cache_dir=lm_cache)


@pytest.fixture(autouse=True)
def restore_llmrec_logger():
    """``llmrec.cli.main`` points the llmrec logger at the (captured) stderr of its test; put
    the logger back so later tests do not log into a closed capture stream."""
    import logging

    logger = logging.getLogger("llmrec")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]
