"""Training checkpoints in safetensors (no pickle): weights, optimizer state, RNG states.

One file holds tensors under prefixes ``model.``, ``optim.`` and ``rng.``; everything else
(epoch, best score, numpy RNG state, optimizer hyper-parameters) is JSON in the safetensors
metadata header. Files are replaced atomically, so a crash leaves the previous checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save

from .._io import atomic_write_bytes, corrupt_file
from .._saved import read_safetensors


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_state(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = value
    for name, value in meta["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_weights(path: Path, module: torch.nn.Module) -> None:
    tensors = {k: v.detach().contiguous().clone() for k, v in module.state_dict().items()}
    atomic_write_bytes(path, save(tensors))


def checkpoint_fix(path: Path) -> str:
    """The way out for a damaged checkpoint of a run folder."""
    return (f"delete {path} to train again from the start (or pass --force to retrain the "
            "whole run)")


def load_weights(path: Path, module: torch.nn.Module) -> None:
    tensors, _ = read_safetensors(path, checkpoint_fix(path))
    try:
        module.load_state_dict(tensors)
    except RuntimeError as e:
        raise corrupt_file(path, str(e).splitlines()[0], checkpoint_fix(path)) from None


def save_checkpoint(path: Path, module: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    meta: dict[str, Any]) -> None:
    tensors = {f"model.{k}": v.detach().contiguous().clone()
               for k, v in module.state_dict().items()}
    optim_tensors, optim_meta = _optimizer_tensors(optimizer)
    tensors.update({k: v.contiguous().clone() for k, v in optim_tensors.items()})
    tensors["rng.torch"] = torch.get_rng_state()
    header = {"meta": json.dumps(meta), "optimizer": json.dumps(optim_meta)}
    atomic_write_bytes(path, save(tensors, metadata=header))


def load_checkpoint(path: Path, module: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    config_hash: str | None = None) -> dict[str, Any]:
    """Restore module, optimizer and torch RNG in place; return the JSON metadata. A
    checkpoint of another ``config_hash`` is not restored (its metadata is returned for the
    caller to refuse it); a damaged one is a CorruptFileError naming the file."""
    tensors, header = read_safetensors(path, checkpoint_fix(path))
    try:
        meta = json.loads(header["meta"])
        if config_hash is not None and isinstance(meta, dict) \
                and meta.get("config_hash") != config_hash:
            return meta
        module.load_state_dict({k[len("model."):]: v for k, v in tensors.items()
                                if k.startswith("model.")})
        optimizer.load_state_dict(_optimizer_state(
            {k: v for k, v in tensors.items() if k.startswith("optim.")},
            json.loads(header["optimizer"])))
        torch.set_rng_state(tensors["rng.torch"])
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        why = f"missing {e}" if isinstance(e, KeyError) else str(e).splitlines()[0]
        raise corrupt_file(path, why, checkpoint_fix(path)) from None
    if not isinstance(meta, dict) or "config_hash" not in meta:
        raise corrupt_file(path, "no training state in its header", checkpoint_fix(path))
    return meta
