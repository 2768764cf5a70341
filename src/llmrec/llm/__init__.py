"""LLM backends for knowledge generation: an OpenAI-compatible HTTP client and local llama.cpp.

    >>> from llmrec.llm import Request, make_backend
    >>> llm = make_backend("local", parallel=2)                              # doctest: +SKIP
    >>> [r] = llm.generate([Request.chat("Describe Toy Story (1995).", max_tokens=48)])
    >>> r.text if r.ok else (r.kind, r.message)

``make_backend("openai", base_url="http://localhost:8000/v1", model="...",
api_key_env="OPENAI_API_KEY")`` talks to vLLM, SGLang, Ollama, llama.cpp or a hosted API.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ._base import (FAILURE_KINDS, Backend, Completion, Failure, FailureKind, LLMError, Request,
                    Result)
from .local import LocalBackend, LocalConfig, packaged_model_path, serve_local_openai
from .openai_compat import OpenAIBackend, OpenAIConfig

BACKENDS: dict[str, type[Backend]] = {"openai": OpenAIBackend, "local": LocalBackend}


def make_backend(name: str, **config: Any) -> Backend:
    """The backend registered as ``name``, built from its config fields."""
    try:
        cls = BACKENDS[name]
    except KeyError:
        raise ConfigError(f"unknown LLM backend {name!r}; choose one of: "
                          f"{', '.join(sorted(BACKENDS))}") from None
    return cls(**config)


__all__ = [
    "BACKENDS", "FAILURE_KINDS", "Backend", "Completion", "Failure", "FailureKind", "LLMError",
    "LocalBackend", "LocalConfig", "OpenAIBackend", "OpenAIConfig", "Request", "Result",
    "make_backend", "packaged_model_path", "serve_local_openai",
]
