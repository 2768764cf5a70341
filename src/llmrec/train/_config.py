"""Config fields shared across models: one vocabulary of names (see shared/STYLE.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import added_option, require_non_negative, require_positive, require_seed


@dataclass
class ModelConfig:
    """Options every model has."""

    seed: int = 42

    def __post_init__(self) -> None:
        require_seed(self, "seed")


@dataclass
class TrainConfig(ModelConfig):
    """Options of every model trained by :class:`~llmrec.train.Trainer`.

    Early stopping watches validation NDCG@10: training stops after ``patience`` evaluations
    without improvement and the best weights are restored.

    ``lr_schedule="cosine"`` lowers the learning rate after every batch along half a cosine,
    from ``learning_rate`` at the start to 0 at the end of epoch ``epochs`` (so ``epochs`` is
    then the length of the schedule, not only a cap); ``"constant"`` keeps it.
    """

    epochs: int = 200
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 20
    eval_every: int = 1
    max_grad_norm: float = 5.0      # 0 disables gradient clipping
    threads: int = 0                # torch intra-op threads; 0 = torch's default (all cores)
    lr_schedule: Literal["constant", "cosine"] = added_option("constant")

    def __post_init__(self) -> None:
        super().__post_init__()
        require_non_negative(self, "weight_decay", "max_grad_norm", "threads")
        require_positive(self, "epochs", "batch_size", "learning_rate", "patience", "eval_every")
