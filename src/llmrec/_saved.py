"""The on-disk form of a trained model, shared by recommenders and CTR models: a folder with
``model.safetensors`` (tensors, no pickle) and ``model.json`` (name, config, anything else the
model needs to rebuild itself), both written atomically.

Reads are checked: a truncated or garbled file is a :class:`~llmrec.errors.CorruptFileError`
that names the file and the way out (see :func:`run_fix`), never a safetensors traceback."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save

from ._io import atomic_write_bytes, corrupt_file, read_json_file, write_json
from .errors import ConfigError


def run_fix(run_dir: str | Path) -> str:
    """The way out for a damaged file of a run folder: retrain it."""
    return (f"retrain the run (llmrec train with its options and --force, or delete "
            f"{Path(run_dir)} and train again)")


def ranker_fix(folder: str | Path) -> str:
    """The way out for a damaged file of a run's CTR ranker (``RUN_DIR/ctr``)."""
    folder = Path(folder)
    return f"run `llmrec ranker {folder.parent}` again, or delete {folder}"


def _default_fix(folder: Path) -> str:
    if folder.name == "ctr":
        return ranker_fix(folder)
    if (folder.parent / "run.json").exists() or (folder.parent / "config.toml").exists():
        return run_fix(folder.parent)
    return f"save the model again, or delete {folder}"


def read_safetensors(path: str | Path, fix: str) -> tuple[dict[str, torch.Tensor],
                                                            dict[str, str]]:
    """All tensors and the metadata header of a safetensors file; a
    :class:`~llmrec.errors.CorruptFileError` naming the file and ``fix`` when it is truncated
    or garbled, or missing."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise corrupt_file(path, "missing", fix)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise corrupt_file(path, e, fix) from None
    return tensors, meta


def write_model_folder(folder: str | Path, tensors: dict[str, torch.Tensor],
                       meta: dict[str, Any]) -> Path:
    """Write ``tensors`` and ``meta`` (which names the model under ``"name"``) to ``folder``."""
    folder = Path(folder)
    atomic_write_bytes(folder / "model.safetensors", save(tensors))
    write_json(folder / "model.json", meta)
    return folder


def read_model_folder(folder: str | Path, registry: Mapping[str, type], what: str = "model",
                      fix: str | None = None
                      ) -> tuple[type, dict[str, Any], dict[str, torch.Tensor]]:
    """The registered class, the metadata and the tensors of a folder written by
    :func:`write_model_folder`; a clear error for a folder without one, an unknown name or a
    damaged file (``fix``: the way out; default: retrain the run / rerun the ranker)."""
    folder = Path(folder)
    fix = fix or _default_fix(folder)
    try:
        meta = read_json_file(folder / "model.json", fix, required=False)
    except FileNotFoundError:
        raise ConfigError(f"{folder}: no saved {what} (model.json missing)") from None
    if not isinstance(meta.get("name"), str) or not isinstance(meta.get("config"), dict):
        raise corrupt_file(folder / "model.json", "no model name or config", fix)
    cls = registry.get(meta["name"])
    if cls is None:
        raise ConfigError(f"{folder}: unknown {what} {meta['name']!r}")
    tensors, _ = read_safetensors(folder / "model.safetensors", fix)
    return cls, meta, tensors
