"""Helpers shared by subcommands."""

from __future__ import annotations

import json
import sys
from typing import Any

from ..errors import ConfigError


def parse_columns(text: str | None) -> dict[str, str]:
    """``"user_id=userId,item_id=movieId"`` -> mapping; a clear error otherwise."""
    if not text:
        return {}
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"--columns expects NAME=COLUMN[,NAME=COLUMN...], not {text!r}")
        out[key.strip()] = value.strip()
    return out


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str, ensure_ascii=False)
    sys.stdout.write("\n")
