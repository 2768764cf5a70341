"""Structured logs: every record of the ``llmrec`` logger as one JSON line in a run folder."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonLinesHandler(logging.Handler):
    """Appends ``{"time", "level", "logger", "message", **extra}`` per record, flushed at once."""

    def __init__(self, path: Path):
        super().__init__()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a", encoding="utf-8")

    def emit(self, record: logging.LogRecord) -> None:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created)),
                 "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        self._file.write(json.dumps(entry, default=str) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
        super().close()


@contextlib.contextmanager
def log_to(path: Path) -> Iterator[None]:
    """Copy llmrec's log records (INFO and up) into ``path`` as JSON lines for the block."""
    logger = logging.getLogger("llmrec")
    handler = JsonLinesHandler(path)
    handler.setLevel(logging.INFO)
    old = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
        handler.close()
