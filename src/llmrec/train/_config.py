"""Config fields shared across models: one vocabulary of names (see shared/STYLE.md)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import require_positive


@dataclass
class ModelConfig:
    """Options every model has."""

    seed: int = 42


@dataclass
class TrainConfig(ModelConfig):
    """Options of every model trained by :class:`~llmrec.train.Trainer`.

    Early stopping watches validation NDCG@10: training stops after ``patience`` evaluations
    without improvement and the best weights are restored.
    """

    epochs: int = 200
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 20
    eval_every: int = 1
    max_grad_norm: float = 5.0      # 0 disables gradient clipping
    threads: int = 0                # torch intra-op threads; 0 = torch's default (all cores)

    def __post_init__(self) -> None:
        require_positive(self, "epochs", "batch_size", "learning_rate", "patience", "eval_every")
