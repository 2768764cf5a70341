"""The epoch loop, written once: early stopping, checkpoints, resume, progress, JSONL logs.

A trainable model exposes ``module`` (an ``nn.Module``), ``config`` (a :class:`TrainConfig`),
``training_batches(epoch, rng)`` (an iterable of batches), ``batch_size_of(batch)``,
``loss(batch)`` (a scalar tensor) and either ``score(histories, users)`` -- validation is then
full-ranking NDCG@10 on :class:`~llmrec.data.EvalCases` -- or its own
``validate(valid) -> dict`` with a ``monitor`` attribute naming the key to maximise (a CTR
model validates AUC this way).

With a ``run_dir`` the trainer writes, after every epoch, ``checkpoint.safetensors`` (weights,
optimizer, RNG states, progress) and, on every improvement, ``best.safetensors``; one JSON line
per epoch goes to ``train_log.jsonl``. Calling :meth:`Trainer.fit` again on the same folder
resumes after the last finished epoch and ends with the same weights an uninterrupted run
would have had.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

from .._io import atomic_write_text, content_hash
from ..config import to_dict
from ..eval import evaluate
from ..errors import ConfigError
from ._checkpoint import load_checkpoint, load_weights, save_checkpoint, save_weights
from ._config import TrainConfig
from ._distributed import (GradientSync, all_reduce_sums, average_buffers, broadcast_parameters,
                           init_from_env,
                           shard, world)

log = logging.getLogger(__name__)
DEFAULT_MONITOR = "ndcg@10"
_ON_VALIDATION: ContextVar[Callable[[int, float], None] | None] = ContextVar(
    "on_validation", default=None)


@contextmanager
def on_validation(hook: Callable[[int, float], None]) -> Iterator[None]:
    """Call ``hook(epoch, score)`` after every validation of every :class:`Trainer` that runs
    inside the ``with`` block (``score``: the monitored metric). An exception the hook raises
    ends training and propagates out of ``fit`` -- how a hyper-parameter search prunes a trial
    (:mod:`llmrec.tune`) without threading a callback through every model's ``fit``."""
    token = _ON_VALIDATION.set(hook)
    try:
        yield
    finally:
        _ON_VALIDATION.reset(token)


class Trainable(Protocol):
    module: torch.nn.Module
    config: TrainConfig

    def training_batches(self, epoch: int, rng: np.random.Generator) -> Iterable[Any]: ...
    def batch_size_of(self, batch: Any) -> int: ...
    def loss(self, batch: Any) -> torch.Tensor: ...
    def score(self, histories: list[np.ndarray], users: np.ndarray | None = None
              ) -> torch.Tensor: ...


@dataclass
class TrainResult:
    best_epoch: int
    best_score: float | None
    epochs_run: int
    train_seconds: float
    seconds_to_best: float
    resumed_from: int | None
    history: list[dict] = field(default_factory=list)

    def summary(self, metric: str = "ndcg@10") -> dict:
        """What a model keeps as ``fit_info`` (and a run folder's metrics.json reports)."""
        return {"best_epoch": self.best_epoch, f"best_valid_{metric}": self.best_score,
                "epochs_run": self.epochs_run, "train_seconds": round(self.train_seconds, 2),
                "seconds_to_best": round(self.seconds_to_best, 2),
                "resumed_from": self.resumed_from}


class Trainer:
    """Runs the training loop of one model; see the module docstring."""

    def __init__(self, run_dir: Path | None = None, *, progress: bool = True,
                 mask: str = "history", eval_batch_size: int = 512):
        self.run_dir = Path(run_dir) if run_dir else None
        self.progress = progress
        self.mask = mask
        self.eval_batch_size = eval_batch_size

    def _paths(self) -> tuple[Path, Path, Path] | None:
        if self.run_dir is None:
            return None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        return (self.run_dir / "checkpoint.safetensors", self.run_dir / "best.safetensors",
                self.run_dir / "train_log.jsonl")

    def _validate(self, model: Trainable, valid: Any) -> dict[str, float]:
        if hasattr(model, "validate"):      # its own metric (AUC): every rank computes it all
            return model.validate(valid)
        rank, size = world()
        if size == 1:
            return evaluate(model, valid, ks=(10,), mask=self.mask,
                            batch_size=self.eval_batch_size)
        # sharded full ranking: every size-th case per rank, per-case sums all-reduced
        mine = valid.subset(np.arange(rank, len(valid), size))
        part = evaluate(model, mine, ks=(10,), mask=self.mask, batch_size=self.eval_batch_size)
        sums = all_reduce_sums({k: v * len(mine) for k, v in part.items()
                                if isinstance(v, float)})
        return {k: v / max(len(valid), 1) for k, v in sums.items()}

    def fit(self, model: Trainable, valid: Any = None) -> TrainResult:
        """Train ``model``; ``valid`` (EvalCases, or what ``model.validate`` takes) drives early
        stopping on ``model.monitor`` (default NDCG@10)."""
        cfg = model.config
        monitor = getattr(model, "monitor", DEFAULT_MONITOR)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        module = model.module
        init_from_env()                       # under torchrun: join the process group
        rank, size = world()
        sync = None
        if size > 1:
            broadcast_parameters(module)
            sync = GradientSync(module.parameters())
        optimizer = torch.optim.AdamW(module.parameters(), lr=cfg.learning_rate,
                                      weight_decay=cfg.weight_decay)
        rng = np.random.default_rng(cfg.seed)
        cfg_hash = content_hash({"model": getattr(model, "name", type(model).__name__),
                                 **to_dict(cfg)})
        state = {"epoch": 0, "best_score": None, "best_epoch": 0, "bad_evals": 0,
                 "elapsed": 0.0, "seconds_to_best": 0.0, "done": False, "history": []}
        best_in_memory: dict[str, torch.Tensor] | None = None
        paths = self._paths()
        writes = paths is not None and rank == 0       # rank 0 alone writes the run folder
        resumed_from = None
        if paths and paths[0].exists():
            meta = load_checkpoint(paths[0], module, optimizer, cfg_hash)
            if meta["config_hash"] != cfg_hash:
                raise ConfigError(f"{self.run_dir} holds a checkpoint of another configuration; "
                                  "use another output folder or delete it")
            rng.bit_generator.state = meta.pop("numpy_rng")
            state.update(meta)
            resumed_from = state["epoch"]
            # the log may hold a line of an epoch whose checkpoint was never written
            if writes:
                atomic_write_text(paths[2],
                                  "".join(json.dumps(r) + "\n" for r in state["history"]))
            log.info("resuming from epoch %d", state["epoch"],
                     extra={"event": "resume", "epoch": state["epoch"]})

        t_start = time.perf_counter() - state["elapsed"]
        while not state["done"] and state["epoch"] < cfg.epochs:
            epoch = state["epoch"] + 1
            module.train()
            batches = list(model.training_batches(epoch, rng))
            total = sum(model.batch_size_of(b) for b in batches)
            t0, loss_sum, seen = time.perf_counter(), 0.0, 0
            bar = tqdm(total=total, desc=f"epoch {epoch}/{cfg.epochs}", unit="seq",
                       disable=not self.progress or rank != 0, leave=False,
                       dynamic_ncols=True)
            for i, batch in enumerate(batches):
                if cfg.lr_schedule == "cosine":
                    lr = cosine_lr(cfg.learning_rate, (epoch - 1 + i / len(batches)) / cfg.epochs)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                optimizer.zero_grad(set_to_none=True)
                if sync is None:
                    loss = model.loss(batch)
                    n, batch_loss = model.batch_size_of(batch), loss.item()
                    if math.isfinite(batch_loss):
                        loss.backward()
                else:                         # this rank's shard; gradients averaged
                    local = shard(batch, rank, size)
                    n = model.batch_size_of(local)
                    loss = model.loss(local) if n else None
                    if loss is not None:
                        loss.backward()
                    terms = model.loss_terms(local) if n and hasattr(model, "loss_terms") else n
                    batch_loss, n = sync(loss, terms, n)
                if not math.isfinite(batch_loss):
                    raise FloatingPointError(f"loss became {batch_loss} at epoch {epoch}; "
                                             "lower learning_rate")
                if cfg.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.max_grad_norm)
                optimizer.step()
                if sync is not None:
                    average_buffers(module)
                loss_sum += batch_loss * n
                seen += n
                bar.update(n)
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}")
            bar.close()
            record: dict[str, Any] = {"epoch": epoch, "loss": loss_sum / max(seen, 1),
                                      "samples_per_s": seen / max(time.perf_counter() - t0, 1e-9)}
            if cfg.lr_schedule != "constant":
                record["lr"] = optimizer.param_groups[0]["lr"]
            if valid is not None and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
                module.eval()
                metrics = self._validate(model, valid)
                score = metrics[monitor]
                record.update({f"valid_{k}": v for k, v in metrics.items()
                               if isinstance(v, float)})
                if state["best_score"] is None or score > state["best_score"]:
                    state.update(best_score=score, best_epoch=epoch, bad_evals=0,
                                 seconds_to_best=time.perf_counter() - t_start)
                    if writes:
                        save_weights(paths[1], module)
                    else:
                        best_in_memory = {k: v.detach().clone()
                                          for k, v in module.state_dict().items()}
                else:
                    state["bad_evals"] += 1
                    state["done"] = state["bad_evals"] >= cfg.patience
            state["epoch"] = epoch
            state["elapsed"] = time.perf_counter() - t_start
            record["seconds"] = round(state["elapsed"], 3)
            state["history"].append(record)
            if rank == 0:
                self._report(record, state, monitor)
            hook = _ON_VALIDATION.get()
            if hook is not None and f"valid_{monitor}" in record:
                hook(epoch, record[f"valid_{monitor}"])
            if writes:
                meta = {**state, "config_hash": cfg_hash,
                        "numpy_rng": rng.bit_generator.state}
                save_checkpoint(paths[0], module, optimizer, meta)
                with open(paths[2], "a") as f:
                    f.write(json.dumps(record) + "\n")

        if state["best_score"] is None:        # no validation: keep the last weights
            state["best_epoch"] = state["epoch"]
            state["seconds_to_best"] = state["elapsed"]
        elif writes:
            load_weights(paths[1], module)
        elif best_in_memory is not None:
            module.load_state_dict(best_in_memory)
        module.eval()
        return TrainResult(state["best_epoch"], state["best_score"], state["epoch"],
                           state["elapsed"], state["seconds_to_best"], resumed_from,
                           state["history"])

    def _report(self, record: dict, state: dict, monitor: str) -> None:
        parts = [f"epoch {record['epoch']}", f"loss {record['loss']:.4f}",
                 f"{record['samples_per_s']:.0f} seq/s"]
        if "lr" in record:
            parts.append(f"lr {record['lr']:.2e}")
        if f"valid_{monitor}" in record:
            best = state["best_score"]
            parts.append(f"valid {monitor} {record[f'valid_{monitor}']:.4f} "
                         f"(best {best:.4f} @ {state['best_epoch']})")
        log.info(" | ".join(parts), extra={"event": "epoch", **record})


def cosine_lr(peak: float, progress: float) -> float:
    """Half a cosine from ``peak`` at ``progress`` 0 to 0 at 1 (clamped outside [0, 1])."""
    return peak * 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
