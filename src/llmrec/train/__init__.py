"""Training: the shared config fields, the trainer, checkpoints, losses and data parallelism
under ``torchrun``."""

from ._config import ModelConfig, TrainConfig
from ._distributed import barrier, init_from_env, is_main, shard, world
from ._trainer import Trainer, TrainResult, on_validation

__all__ = ["ModelConfig", "TrainConfig", "TrainResult", "Trainer", "barrier", "init_from_env",
           "is_main", "on_validation", "shard", "world"]
