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
from safetensors import safe_open
from safetensors.torch import save

from .._io import atomic_write_bytes


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


def load_weights(path: Path, module: torch.nn.Module) -> None:
    with safe_open(str(path), framework="pt") as f:
        module.load_state_dict({k: f.get_tensor(k) for k in f.keys()})


def save_checkpoint(path: Path, module: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    meta: dict[str, Any]) -> None:
    tensors = {f"model.{k}": v.detach().contiguous().clone()
               for k, v in module.state_dict().items()}
    optim_tensors, optim_meta = _optimizer_tensors(optimizer)
    tensors.update({k: v.contiguous().clone() for k, v in optim_tensors.items()})
    tensors["rng.torch"] = torch.get_rng_state()
    header = {"meta": json.dumps(meta), "optimizer": json.dumps(optim_meta)}
    atomic_write_bytes(path, save(tensors, metadata=header))


def load_checkpoint(path: Path, module: torch.nn.Module,
                    optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore module, optimizer and torch RNG in place; return the JSON metadata."""
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    module.load_state_dict({k[len("model."):]: v for k, v in tensors.items()
                            if k.startswith("model.")})
    optimizer.load_state_dict(_optimizer_state(
        {k: v for k, v in tensors.items() if k.startswith("optim.")},
        json.loads(header["optimizer"])))
    torch.set_rng_state(tensors["rng.torch"])
    return json.loads(header["meta"])
