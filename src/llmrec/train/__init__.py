"""Training: the shared config fields, the trainer, checkpoints and losses."""

from ._config import ModelConfig, TrainConfig
from ._trainer import Trainer, TrainResult, on_validation

__all__ = ["ModelConfig", "TrainConfig", "TrainResult", "Trainer", "on_validation"]
