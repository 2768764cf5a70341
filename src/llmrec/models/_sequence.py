"""What sequential next-item models share: windows, padding, scoring, persistence, training.

Layout of a batch (left-aligned, padded at the end with ``pad = n_items``)::

    histories  [[4, 7, 1], [9, 2]]
    items      [[4, 7, 1], [9, 2, P]]   (B, T) long
    lengths    [3, 2]                    (B,)  long

A model's encoder maps ``(items, lengths)`` to ``(B, T, D)`` states; the state at position
``lengths-1`` scores every item by a dot product with the item table (tied embeddings).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..config import added_option
from ..data import EvalCases, Interactions
from ..train import TrainConfig, Trainer
from ._items import ItemEmbedding
from .base import Recommender


@dataclass
class SequentialConfig(TrainConfig):
    """Options shared by the sequential models (``item_input``: see :mod:`._items`)."""

    batch_size: int = 64
    learning_rate: float = 2e-3
    embedding_size: int = 64
    dropout: float = 0.2
    max_seq_len: int = 200
    item_input: Literal["id", "text", "id+text"] = "id"
    tied: bool = True               # score with the input item representations
    # Training windows: "all" cuts every history into windows so that each transition is a
    # target once; "last" keeps only each user's most recent window (one sample per user
    # and epoch, as in the reference implementations of SASRec/BERT4Rec).
    train_windows: Literal["all", "last"] = added_option("all")
    # Weight initialisation: 0 keeps each layer's own (item tables std 1/sqrt(d), PyTorch's layer
    # defaults); > 0 draws every Linear and Embedding weight with std init_std (normal), zero
    # biases, as BERT/GPT and the reference SASRec implementations do (they use 0.02).
    init_std: float = added_option(0.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), not {self.dropout}")
        if self.max_seq_len < 2 or self.embedding_size < 1:
            raise ValueError("max_seq_len must be >= 2 and embedding_size >= 1")
        if not 0 <= self.init_std < 1:
            raise ValueError(f"init_std must be in [0, 1), not {self.init_std}")


def pad_right(seqs: list[np.ndarray], pad: int, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the last ``max_len`` items of each sequence; left-align; pad at the end."""
    seqs = [np.asarray(s)[-max_len:] for s in seqs]
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    out = np.full((len(seqs), max(1, int(lengths.max(initial=1)))), pad, dtype=np.int64)
    out[np.arange(out.shape[1]) < lengths[:, None]] = np.concatenate(seqs) if seqs else []
    return torch.from_numpy(out), torch.from_numpy(lengths)


def normal_init(module: nn.Module, std: float) -> None:
    """N(0, std) for every Linear and Embedding weight, zero biases, padding rows kept zero."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.Embedding) and m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()


def windows(train: Interactions, size: int, step: int, min_len: int = 2,
            keep: Literal["all", "last"] = "all") -> list[np.ndarray]:
    """Cut every user's sequence into windows of ``size`` items, ``step`` apart, from the end
    (``keep="last"``: only the most recent window of each user).

    With ``size = max_seq_len + 1`` and ``step = max_seq_len`` consecutive windows share one
    item, so each next-item transition is a training target exactly once.
    """
    out = []
    for u in range(train.n_users):
        seq = train.sequence(u)
        end = len(seq)
        while end >= min_len:
            out.append(seq[max(0, end - size):end])
            if end - size <= 0 or keep == "last":
                break
            end -= step
    return out


class SequentialRecommender(Recommender):
    """Base of GRU4Rec / SASRec / BERT4Rec: subclasses define the module and the loss.

    Modules keep their item representations in ``module.items`` (an :class:`ItemEmbedding`);
    with ``item_input`` "text" or "id+text", call :meth:`set_item_vectors` before ``fit``.
    """

    config: SequentialConfig
    module: nn.Module

    def __init__(self, config: Any = None, **options: Any):
        super().__init__(config, **options)
        self.item_vectors: torch.Tensor | None = None

    def set_item_vectors(self, vectors: np.ndarray | torch.Tensor) -> SequentialRecommender:
        """Frozen per-item vectors (N, Dv), row i for item index i (text, LLM knowledge...)."""
        self.item_vectors = torch.as_tensor(np.asarray(vectors, dtype=np.float32))
        return self

    def _item_embedding(self, special_tokens: int = 1) -> ItemEmbedding:
        """The item layer every subclass's module uses (seeded by the caller)."""
        vectors = self.item_vectors if self.config.item_input != "id" else None
        return ItemEmbedding(self.n_items, self.config.embedding_size, special_tokens,
                             self.config.item_input, vectors, self.config.tied)

    @abstractmethod
    def _build(self) -> nn.Module:
        """The network for ``self.n_items`` items (seeded by the caller)."""

    @abstractmethod
    def _training_windows(self, train: Interactions) -> list[np.ndarray]: ...

    @abstractmethod
    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...

    @property
    def pad(self) -> int:
        return self.n_items

    def _fit(self, train: Interactions, valid: EvalCases | None, *, run_dir: Path | None,
             progress: bool, valid_mask: str) -> None:
        torch.manual_seed(self.config.seed)
        self.module = self._build()
        if self.config.init_std:
            normal_init(self.module, self.config.init_std)
        self._windows = self._training_windows(train)
        if not self._windows:
            raise ValueError("no user has 2 or more training interactions")
        result = Trainer(run_dir, progress=progress, mask=valid_mask).fit(self, valid)
        self.fit_info = {**result.summary(), "training_sequences": len(self._windows)}
        del self._windows

    def training_batches(self, epoch: int, rng: np.random.Generator):
        """Shuffled batches of windows of similar length (less padding to compute on)."""
        bs = self.config.batch_size
        order = rng.permutation(len(self._windows))
        lengths = np.fromiter((len(w) for w in self._windows), dtype=np.int64)
        pool = bs * 16                       # sort by length inside pools of 16 batches
        batches = []
        for start in range(0, len(order), pool):
            chunk = order[start:start + pool]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            batches += [chunk[i:i + bs] for i in range(0, len(chunk), bs)]
        for b in rng.permutation(len(batches)):
            seqs = [self._windows[i] for i in batches[b]]
            items, lens = pad_right(seqs, self.pad, int(lengths[batches[b]].max()))
            yield {"items": items, "lengths": lens}

    @staticmethod
    def batch_size_of(batch: dict[str, torch.Tensor]) -> int:
        return len(batch["lengths"])

    @staticmethod
    def loss_terms(batch: dict[str, torch.Tensor]) -> int:
        """How many terms the next-item loss of ``batch`` averages: its supervised positions
        (data-parallel training weights each rank's gradient by it)."""
        return int((batch["lengths"] - 1).clamp(min=0).sum())

    def item_weights(self) -> torch.Tensor:
        return self.module.items.table()                                  # (N, D)

    def item_embeddings(self) -> np.ndarray:
        with torch.no_grad():
            return self.item_weights().detach().float().cpu().numpy()           # (N, D)

    def _encode_histories(self, histories: list[np.ndarray]) -> torch.Tensor:
        items, lengths = pad_right(histories, self.pad, self.config.max_seq_len)
        states = self.module(items, lengths)                              # (B, T, D)
        return states[torch.arange(len(lengths)), lengths - 1]            # (B, D)

    def _score(self, histories: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        if self.module.training:          # eval() walks every submodule: not on each request
            self.module.eval()
        return self._encode_histories(histories) @ self.item_weights().T

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = super().state_tensors()
        out.update({f"module.{k}": v for k, v in self.module.state_dict().items()})
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        super().load_state_tensors(tensors)
        if "module.items.vectors" in tensors:
            self.item_vectors = tensors["module.items.vectors"]
        self.module = self._build()
        self.module.load_state_dict({k[len("module."):]: v for k, v in tensors.items()
                                     if k.startswith("module.")})
        self.module.eval()


class NextItemRecommender(SequentialRecommender):
    """A causal model trained to predict each next item of its windows (GRU4Rec, SASRec, HSTU):
    windows of ``max_seq_len + 1`` items, ``max_seq_len`` apart; the loss of every supervised
    position against the item table (``config.loss``; ``softmax_over = "unseen"`` where the
    config has it). ``_states`` maps the module's states before scoring (HSTU: cosine with a
    temperature); the identity by default."""

    def _training_windows(self, train: Interactions) -> list[np.ndarray]:
        L = self.config.max_seq_len
        return windows(train, size=L + 1, step=L, keep=self.config.train_windows)

    def _states(self, states: torch.Tensor) -> torch.Tensor:
        return states

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs, lengths, valid, targets = shift_for_next_item(batch)
        states = self._states(self.module(inputs, lengths))              # (B, T, D)
        exclude = None
        if getattr(self.config, "softmax_over", "all") == "unseen":
            rows = torch.arange(len(inputs)).unsqueeze(1).expand_as(valid)[valid]
            exclude = window_items(batch["items"], self.n_items)[rows]     # (M, N)
        return next_item_loss(self.config.loss, states[valid], self.item_weights(),
                              targets[valid], self.config.num_negatives, exclude)


def shift_for_next_item(batch: dict[str, torch.Tensor]
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs and next-item targets of a batch of windows.

    Returns ``inputs`` (B, T-1), ``input_lengths`` (B,), ``valid`` (B, T-1) bool marking
    supervised positions, and ``targets`` (B, T-1): position t predicts item t+1.
    """
    items, lengths = batch["items"], batch["lengths"]
    inputs, targets = items[:, :-1], items[:, 1:]
    input_lengths = lengths - 1
    valid = torch.arange(inputs.shape[1]).unsqueeze(0) < input_lengths.unsqueeze(1)
    return inputs, input_lengths, valid, targets


def window_items(items: torch.Tensor, n_items: int) -> torch.Tensor:
    """(B, T) padded windows -> (B, N) bool: which items each window holds."""
    held = torch.zeros(len(items), n_items + 1, dtype=torch.bool)
    held.scatter_(1, items, True)
    return held[:, :n_items]                                              # drop the padding


def next_item_loss(kind: str, hidden: torch.Tensor, weights: torch.Tensor,
                   targets: torch.Tensor, num_negatives: int,
                   exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Dispatch to the loss named in a model config ("ce", "bce" or "sampled_softmax");
    ``exclude`` (M, N): items left out of each row's softmax ("ce" only)."""
    from ..train import losses

    if kind == "ce":
        return losses.full_cross_entropy(hidden, weights, targets, exclude)
    if kind == "bce":
        return losses.binary_cross_entropy(hidden, weights, targets)
    return losses.sampled_softmax(hidden, weights, targets, num_negatives)
