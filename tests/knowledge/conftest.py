"""Fixtures for the knowledge tests: real ML-100K, the real local model, tiny templates.

The LLM tests run SmolLM2-135M through the real backends with *tiny* templates (the packaged
ones with 2 words per factor and a few tokens), two factors given up front, and a handful of
entities, so the whole module stays quick on a 2-core machine. ``threads=1``: on a shared
machine llama.cpp with 2 threads can be ten times slower.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
import tomli_w

from llmrec.data import Dataset, Preprocessing, Split, leave_one_out, load_dataset
from llmrec.llm import LocalBackend

FACTORS = ("genre", "mood")
TINY = {"factors": {"max_tokens": 64},
        "item": {"max_tokens": 32, "words_per_factor": 2},
        "user": {"max_tokens": 24, "words_per_factor": 2, "params": {"history_items": 3}},
        "cluster": {"max_tokens": 24, "words_per_factor": 2, "params": {"top_titles": 3}},
        "partition": {"max_tokens": 24, "words_per_factor": 2},
        "fold": {"max_tokens": 24, "words_per_factor": 2}}


@pytest.fixture(scope="session")
def tiny_templates(tmp_path_factory) -> Path:
    """A template folder: the packaged templates with tiny outputs (and a shorter history)."""
    folder = tmp_path_factory.mktemp("templates")
    packaged = resources.files("llmrec.knowledge") / "templates"
    for name in TINY:
        raw = tomllib.loads((packaged / f"{name}.toml").read_text(encoding="utf-8"))
        changes = dict(TINY[name])
        raw["params"] = {**raw.get("params", {}), **changes.pop("params", {})}
        raw.update(changes)
        (folder / f"{name}.toml").write_text(tomli_w.dumps(raw))
    return folder


@pytest.fixture(scope="session")
def ml100k_split(ml100k) -> tuple[Dataset, Split]:
    """Real ML-100K, 5-core, leave-one-out: the default data config."""
    ds = load_dataset("ml-100k", preprocessing=Preprocessing(user_core=5, item_core=5))
    return ds, leave_one_out(ds.interactions)


@pytest.fixture(scope="session")
def local_llm() -> Iterator[LocalBackend]:
    with LocalBackend(threads=1, parallel=2, n_ctx=512) as backend:
        yield backend  # type: ignore[misc]
