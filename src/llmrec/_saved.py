"""The on-disk form of a trained model, shared by recommenders and CTR models: a folder with
``model.safetensors`` (tensors, no pickle) and ``model.json`` (name, config, anything else the
model needs to rebuild itself), both written atomically."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from ._io import atomic_write_bytes, write_json
from .errors import ConfigError


def write_model_folder(folder: str | Path, tensors: dict[str, torch.Tensor],
                       meta: dict[str, Any]) -> Path:
    """Write ``tensors`` and ``meta`` (which names the model under ``"name"``) to ``folder``."""
    folder = Path(folder)
    atomic_write_bytes(folder / "model.safetensors", save(tensors))
    write_json(folder / "model.json", meta)
    return folder


def read_model_folder(folder: str | Path, registry: Mapping[str, type], what: str = "model"
                      ) -> tuple[type, dict[str, Any], dict[str, torch.Tensor]]:
    """The registered class, the metadata and the tensors of a folder written by
    :func:`write_model_folder`; a clear error for a folder without one or an unknown name."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "model.json").read_text())
    except FileNotFoundError:
        raise ConfigError(f"{folder}: no saved {what} (model.json missing)") from None
    cls = registry.get(meta["name"])
    if cls is None:
        raise ConfigError(f"{folder}: unknown {what} {meta['name']!r}")
    return cls, meta, load_file(str(folder / "model.safetensors"))
