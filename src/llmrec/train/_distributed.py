"""Data-parallel training under ``torchrun``: one process per device, the same code as one.

``torchrun --nproc-per-node N -m llmrec train ...`` starts N copies of the command with
``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT`` set; :func:`init_from_env` joins them
into a process group (gloo on CPU, nccl on GPU). From there the trainer keeps the semantics of
one process:

- every rank draws the same global batches (same seed, same RNG) and trains on its own
  contiguous shard of each (:func:`shard`), so N processes see the data one process sees;
- gradients are averaged over the shards weighted by the number of terms each shard's mean
  loss averages (``model.loss_terms(batch)`` where a model defines it -- supervised positions
  of a sequence model -- else its samples; :class:`GradientSync`), so a step equals the
  one-process step on the whole global batch --
  exactly what ``DistributedDataParallel`` computes, and it is DDP's all-reduce: parameters are
  flattened into buckets and summed with ``all_reduce``. Deviation from wrapping the module in
  ``torch.nn.parallel.DistributedDataParallel``: llmrec's models compute their losses through
  sub-modules and item tables outside ``forward`` (full-catalogue cross-entropy against the
  item table), which DDP's forward hook would not see; syncing after ``backward`` covers every
  parameter that got a gradient, whatever path produced it;
- the batch loss and sample counts ride in the same all-reduce, so logged losses are global;
- floating-point buffers (batch-norm running statistics) are averaged over ranks after each
  step (:func:`average_buffers`);
- full-ranking validation is sharded over ranks (each ranks every N-th case) and the per-case
  sums are all-reduced: the result equals one process's evaluation;
- rank 0 alone writes the run folder (checkpoints, best weights, logs); every rank reads the
  checkpoint on resume.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


def init_from_env() -> bool:
    """Join the process group ``torchrun`` describes in the environment (``WORLD_SIZE`` > 1);
    False when this is a plain single process. Idempotent."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return True


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return world()[0] == 0


def barrier() -> None:
    if world()[1] > 1:
        dist.barrier()


def shard(batch: Any, rank: int, size: int) -> Any:
    """Rank ``rank``'s contiguous part of a batch: a tensor or array split on its first
    dimension, or a dict/list/tuple of them (every leaf the same length)."""
    if size == 1:
        return batch
    if isinstance(batch, dict):
        return {k: shard(v, rank, size) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and not isinstance(batch, str):
        return type(batch)(shard(v, rank, size) for v in batch)
    if isinstance(batch, (torch.Tensor, np.ndarray)):
        n = len(batch)
        lo, hi = rank * n // size, (rank + 1) * n // size
        return batch[lo:hi]
    return batch


def _device_of(params: list[torch.Tensor]) -> torch.device:
    return params[0].device if params else torch.device("cpu")


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Every rank starts from rank 0's parameters and buffers."""
    if world()[1] == 1:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


class GradientSync:
    """After ``backward`` on a rank's shard: average gradients over ranks, weighted by the
    shard's loss terms, and sum the loss and sample counts -- bucketed ``all_reduce``s."""

    def __init__(self, params: Iterable[torch.Tensor], bucket_elements: int = 1 << 24):
        self.params = [p for p in params if p.requires_grad]
        self.bucket_elements = bucket_elements

    def __call__(self, loss: torch.Tensor | None, weight: float, n_local: int
                 ) -> tuple[float, int]:
        """Sync gradients; returns (global mean loss, global sample count). ``loss`` is the
        shard's mean loss over ``weight`` terms (samples, or supervised positions of a
        sequence model; None for an empty shard). A parameter no rank computed a gradient for
        keeps ``grad = None`` (the optimizer skips it, as in one process)."""
        dev = _device_of(self.params)
        had = [p.grad is not None for p in self.params]
        weight = float(weight) if loss is not None else 0.0
        stats = torch.tensor([0.0 if loss is None else float(loss.detach()) * weight,
                              weight, float(n_local), *map(float, had)],
                             dtype=torch.float64, device=dev)
        grads = []
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            grads.append(p.grad)
        buckets: list[list[torch.Tensor]] = []
        current: list[torch.Tensor] = []
        size = 0
        for g in grads:
            if current and size + g.numel() > self.bucket_elements:
                buckets.append(current)
                current, size = [], 0
            current.append(g)
            size += g.numel()
        if current:
            buckets.append(current)
        for bucket in buckets:         # weighted by loss terms: sum_r w_r g_r / sum_r w_r
            flat = torch.cat([g.reshape(-1) for g in bucket]) * weight
            dist.all_reduce(flat)
            self._scatter(flat, bucket)
        dist.all_reduce(stats)
        total = max(float(stats[1]), 1e-12)
        for p, g, any_rank in zip(self.params, grads, stats[3:].tolist()):
            if any_rank:
                g.div_(total)
            else:
                p.grad = None
        return float(stats[0]) / total, int(stats[2])

    @staticmethod
    def _scatter(flat: torch.Tensor, bucket: list[torch.Tensor]) -> None:
        offset = 0
        for g in bucket:
            n = g.numel()
            g.copy_(flat[offset:offset + n].view_as(g))
            offset += n


def average_buffers(module: torch.nn.Module) -> None:
    """Average the floating-point buffers (batch-norm running statistics, e.g. in DIN's Dice)
    over ranks, so that every rank, and the weights rank 0 saves, hold statistics of all
    shards. ``DistributedDataParallel`` instead broadcasts rank 0's buffers, which keeps only
    rank 0's shards; batch normalisation in training mode still uses each shard's own batch
    statistics (as DDP without ``SyncBatchNorm``), so a model with batch norm does not follow
    the one-process curve exactly."""
    bufs = [b for b in module.buffers() if b.is_floating_point()]
    if not bufs or world()[1] == 1:
        return
    flat = torch.cat([b.reshape(-1) for b in bufs])
    dist.all_reduce(flat)
    flat /= world()[1]
    GradientSync._scatter(flat, bufs)


def all_reduce_sums(values: dict[str, float]) -> dict[str, float]:
    """Sum each value over ranks (float64); identity in one process."""
    if world()[1] == 1 or not values:
        return dict(values)
    keys = list(values)                      # the same order on every rank
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"    # nccl reduces GPU tensors
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(keys, t.tolist()))
