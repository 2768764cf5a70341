"""Chat tests: a small SASRec run on the real ML-100K (5-core, leave-one-out), loaded once."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def chat_run(ml100k, tmp_path_factory) -> Path:
    """A quick SASRec run folder (1 epoch, short sequences) made by the real training path."""
    from llmrec.runs import load_config, train_run

    cfg = load_config(model="sasrec", dataset="ml-100k",
                      sets=["data.user_core=5", "data.item_core=5", "model.epochs=1",
                            "model.max_seq_len=30", "model.embedding_size=32",
                            "model.threads=1"])
    return train_run(cfg, tmp_path_factory.mktemp("chat-runs") / "sasrec",
                     progress=False).run_dir


@pytest.fixture(scope="session")
def world(chat_run):
    from llmrec.chat import ChatWorld

    return ChatWorld.from_run(chat_run)


@pytest.fixture(scope="session")
def kg_world(chat_run):
    from llmrec.chat import ChatWorld

    return ChatWorld.from_run(chat_run, kg=True)
