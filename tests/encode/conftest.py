"""The real packaged sentence encoder, loaded once per test session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def minilm():
    from llmrec.encode import SentenceTransformerEncoder

    return SentenceTransformerEncoder()
