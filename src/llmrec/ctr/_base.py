"""What every CTR model shares: the config, the knowledge-aware module base, and the model
class that ties a module to data, the trainer and disk.

Contract of a CTR model (tested for every model by ``tests/ctr/test_contract.py``):

- ``fit(train, valid=None)`` trains on :class:`CTRData` samples with
  :class:`~llmrec.train.Trainer` (binary cross-entropy; early stopping on validation AUC);
- ``predict(data)`` gives click probabilities (n,) float64, the same batched or one by one;
- ``validate(valid)`` -> ``{"auc", "logloss", "gauc"}``;
- ``save(folder)`` / :func:`load_ctr_model` (JSON + safetensors, no pickle) predict identically.

With ``knowledge = true`` the module owns a :class:`~llmrec.ctr.kar.HybridExpertAdapter` and the
data must carry knowledge vectors; :meth:`CTRModel.prestore` then replaces the adaptor at
inference by per-item and per-user tables of augmented vectors.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._io import read_json_file
from .._saved import read_model_folder, write_model_folder
from ..config import from_dict, to_dict
from ..errors import ConfigError, DataError
from ..train import TrainConfig, Trainer
from ._data import CTRData, CTRSchema
from ._layers import FeatureEmbedding
from ._metrics import ctr_metrics
from .kar import KINDS, HybridExpertAdapter


@dataclass
class CTRConfig(TrainConfig):
    """Options every CTR model has (names shared with the sequential models)."""

    epochs: int = 20
    batch_size: int = 256
    learning_rate: float = 1e-3
    patience: int = 2
    embedding_size: int = 32
    mlp_sizes: tuple[int, ...] = (256, 128)
    dropout: float = 0.2
    knowledge: bool = False             # KAR: augment the input with knowledge vectors
    num_shared_experts: int = 2
    num_dedicated_experts: int = 2
    expert_sizes: tuple[int, ...] = (128,)
    knowledge_kinds: tuple[str, ...] | None = None      # None = ("item", "user")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), not {self.dropout}")
        if self.embedding_size < 1 or any(s < 1 for s in (*self.mlp_sizes, *self.expert_sizes)):
            raise ValueError("embedding_size, mlp_sizes and expert_sizes must be >= 1")
        if self.knowledge and self.num_shared_experts + self.num_dedicated_experts < 1:
            raise ValueError("knowledge needs at least one expert")
        if self.knowledge_kinds is not None and (
                not self.knowledge_kinds or set(self.knowledge_kinds) - set(KINDS)
                or len(set(self.knowledge_kinds)) != len(self.knowledge_kinds)):
            raise ValueError(f"knowledge_kinds must be distinct values of {KINDS}, not "
                             f"{self.knowledge_kinds!r}")


class CTRModule(nn.Module):
    """Base of every CTR network: field embeddings plus, with knowledge, the KAR adaptor."""

    def __init__(self, schema: CTRSchema, cfg: CTRConfig):
        super().__init__()
        self.dim = cfg.embedding_size
        self.features = FeatureEmbedding(schema, cfg.embedding_size)
        self.adapter: HybridExpertAdapter | None = None
        if cfg.knowledge:
            self.adapter = HybridExpertAdapter(schema.knowledge_dim, cfg.embedding_size,
                                               cfg.num_shared_experts, cfg.num_dedicated_experts,
                                               cfg.expert_sizes, cfg.dropout,
                                               cfg.knowledge_kinds or KINDS)

    @property
    def num_knowledge_fields(self) -> int:
        return 0 if self.adapter is None else len(self.adapter.kinds)

    def knowledge_fields(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Augmented vectors (B, kinds, D): prestored ones if the batch has them; (B, 0, D) when
        the model has no knowledge."""
        if self.adapter is None:
            return torch.zeros(len(batch["user"]), 0, self.dim)
        if "augmented" in batch:
            return batch["augmented"]
        return self.adapter({k: batch[f"{k}_knowledge"] for k in self.adapter.kinds})

    @abstractmethod
    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Click logits (B,)."""


class CTRModel(ABC):
    """A CTR model: ID features -> click probability; see the module docstring."""

    name: ClassVar[str]
    config_class: ClassVar[type[CTRConfig]] = CTRConfig
    monitor = "auc"

    def __init__(self, config: CTRConfig | dict[str, Any] | None = None, **options: Any):
        if config is None or isinstance(config, dict):
            config = from_dict(self.config_class, {**(config or {}), **options}, self.name)
        elif options:
            raise TypeError("pass either a config object or keyword options, not both")
        self.config = config
        self.schema: CTRSchema | None = None
        self.module: CTRModule | None = None
        self.prestored: dict[str, torch.Tensor] | None = None
        self.fit_info: dict[str, Any] = {}

    @abstractmethod
    def _build(self, schema: CTRSchema) -> CTRModule: ...

    def _check_data(self, data: CTRData, need_knowledge: bool) -> None:
        if need_knowledge and not data.has_knowledge:
            raise DataError(f"{self.name} has knowledge = true but the data carries no "
                            "knowledge vectors (attach them with CTRData.with_knowledge)")

    # -- training ------------------------------------------------------------------------
    def build(self, schema: CTRSchema) -> Self:
        """A fresh, untrained network for ``schema``, seeded (what :meth:`fit` starts from)."""
        torch.manual_seed(self.config.seed)
        self.schema = schema
        self.module = self._build(schema)
        self.prestored = None
        return self

    def fit(self, train: CTRData, valid: CTRData | None = None, *,
            run_dir: Path | None = None, progress: bool = True) -> Self:
        """Train on ``train``; ``valid`` drives early stopping on AUC."""
        if len(train) == 0:
            raise ConfigError("cannot fit on zero training samples")
        self._check_data(train, self.config.knowledge)
        self.build(train.schema)
        self._train = train
        try:
            result = Trainer(run_dir, progress=progress).fit(self, valid)
        finally:
            del self._train
        self.fit_info = {**result.summary("auc"), "training_samples": len(train)}
        return self

    def training_batches(self, epoch: int, rng: np.random.Generator):
        order = rng.permutation(len(self._train))
        bs = self.config.batch_size
        for start in range(0, len(order), bs):
            index = order[start:start + bs]
            if len(index) > 1 or start == 0:      # batch norm (DIN's Dice) needs 2+ samples
                yield self._train.batch(index)

    @staticmethod
    def batch_size_of(batch: dict[str, torch.Tensor]) -> int:
        return len(batch["label"])

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(self.module(batch), batch["label"])

    # -- inference -----------------------------------------------------------------------
    def prestore(self, data: CTRData) -> None:
        """Compute every item's and user's augmented vector once from ``data``'s knowledge
        tables; afterwards predictions look them up (no adaptor, no encoder, no LLM)."""
        if self.module is None or self.module.adapter is None:
            raise ConfigError(f"{self.name} has no knowledge adapter to prestore")
        self._check_data(data, True)
        tables = {"item": data.item_knowledge, "user": data.user_knowledge}
        self.prestored = self.module.adapter.prestore(
            {k: torch.from_numpy(tables[k]) for k in self.module.adapter.kinds})

    def batch_for(self, data: CTRData, index: np.ndarray) -> dict[str, torch.Tensor]:
        batch = data.batch(index)
        if self.prestored is not None:
            kinds = self.module.adapter.kinds
            batch["augmented"] = torch.stack([self.prestored[k][batch[k]]   # (B, kinds, D)
                                              for k in kinds], dim=1)
        return batch

    @torch.no_grad()
    def predict(self, data: CTRData, batch_size: int = 8192) -> np.ndarray:
        """Click probabilities of every sample of ``data``: (n,) float64."""
        if self.module is None:
            raise RuntimeError(f"{self.name} is not fitted")
        self._check_data(data, self.config.knowledge and self.prestored is None)
        self.module.eval()
        out = [torch.sigmoid(self.module(self.batch_for(data, np.arange(s, min(s + batch_size,
                                                                              len(data))))))
               for s in range(0, len(data), batch_size)]
        return torch.cat(out).double().numpy() if out else np.zeros(0)

    def validate(self, valid: CTRData) -> dict[str, float]:
        return ctr_metrics(valid.label, self.predict(valid), valid.user)

    # -- persistence ---------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        if self.module is None or self.schema is None:
            raise RuntimeError(f"{self.name} is not fitted")
        tensors = {f"module.{k}": v.detach().contiguous().clone()
                   for k, v in self.module.state_dict().items()}
        for kind, table in (self.prestored or {}).items():
            tensors[f"prestored.{kind}"] = table.contiguous()
        return write_model_folder(folder, tensors, {
            "name": self.name, "config": to_dict(self.config), "schema": self.schema.to_dict(),
            "fit_info": self.fit_info})


def _saved_name(folder: str | Path) -> str | None:
    try:
        return json.loads((Path(folder) / "model.json").read_text(encoding="utf-8")).get("name")
    except (OSError, ValueError, AttributeError):
        return None                       # read_model_folder reports what is wrong


def load_ctr_model(folder: str | Path) -> CTRModel:
    """Load a model saved by :meth:`CTRModel.save`."""
    from . import CTR_MODELS, LLM_CTR_MODELS

    if _saved_name(folder) in LLM_CTR_MODELS:          # an LLM click model: its own layout
        return LLM_CTR_MODELS[_saved_name(folder)].load_folder(Path(folder), read_json_file(
            Path(folder) / "model.json", f"the model in {folder} is damaged; fit again"))
    cls, meta, tensors = read_model_folder(folder, CTR_MODELS, what="CTR model")
    model = cls(meta["config"])
    model.schema = CTRSchema(**meta["schema"])
    model.fit_info = meta.get("fit_info", {})
    model.module = model._build(model.schema)
    model.module.load_state_dict({k[len("module."):]: v for k, v in tensors.items()
                                  if k.startswith("module.")})
    model.module.eval()
    pre = {k[len("prestored."):]: v for k, v in tensors.items() if k.startswith("prestored.")}
    model.prestored = pre or None
    return model
