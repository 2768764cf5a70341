"""RecLoRA: Lifelong Personalized Low-Rank Adaptation of Large Language Models for
Recommendation (Zhu et al., 2024).

TALLRec's Yes/No click prompt with two additions:

- **a personalized LoRA bank.** Every adapted linear layer ``W`` (q/v projections) gets ``K``
  LoRA pairs ``(A_k, B_k)``; a gate ``softmax(G u)`` on the user's representation ``u`` mixes
  them per sample: ``y = W x + (alpha / r) * sum_k g_k B_k A_k x``. ``u`` comes from a trained
  conventional CTR model (CRM): a :class:`~llmrec.ctr.DIN` fitted on the same training samples
  (or a saved one, ``crm`` = its folder, for the paper's "Few2Many": CRM on many samples, LLM on
  few); ``u = [mean history vector, user-attribute embeddings]`` of that DIN -- not the user-id
  embedding, which is untrained for the test users of the CTR task's user split. The DIN is
  frozen; the bank and the gate train.
- **long-short history retrieval.** The prompt shows the ``similar`` history items closest to
  the target (cosine of the CRM's item embeddings) plus the ``recent`` most recent ones, from
  the sample's whole history row (``history_len`` of the CTR data, e.g. 30), in time order.

peft has no per-sample mixture of LoRA modules, so :class:`GatedLoRALinear` wraps the target
linear layers itself (the gate for the current batch is set on a shared holder before each
forward).

Deviations from the paper: SmolLM2-135M instead of Vicuna-7B; the paper's CRM user vector is a
SIM/DIN representation of a long ID history -- here DIN's pooled history and attributes; the
LLM's training loop is the small one below (same loss as :func:`llmrec.lm.finetune`: answer
tokens only, AdamW, gradient clipping, cosine schedule) but with no resumable run folder.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
from safetensors.torch import save
from torch import nn
from tqdm import tqdm

from .._io import atomic_write_bytes, write_json
from .._saved import read_safetensors
from ..config import to_dict
from ..errors import ConfigError
from ..lm import FinetuneConfig, answer_loss, encode_example, lr_at
from ._base import CTRModel
from ._data import CTRData, CTRSchema
from ._llm import (LLMCTRConfig, base_lm, check_titles, load_template, sample_examples,
                   yes_probability)
from .din import DIN


@dataclass
class RecLoRAConfig(LLMCTRConfig):
    num_experts: int = 4
    similar: int = 5                    # history items most similar to the target
    recent: int = 5                     # plus the most recent ones
    crm: str | None = None              # folder of a saved DIN; None: fit one on the samples
    crm_epochs: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_experts < 1 or self.similar < 0 or self.recent < 0 \
                or self.similar + self.recent < 1:
            raise ConfigError("reclora needs num_experts >= 1 and similar + recent >= 1")


class GateHolder:
    """The gate weights (B, K) of the batch being run, shared by every wrapped layer."""

    weights: torch.Tensor | None = None


class GatedLoRALinear(nn.Module):
    """``base(x) + scale * sum_k g_k B_k A_k x`` with ``g`` (B, K) from the holder."""

    def __init__(self, base: nn.Linear, experts: int, r: int, alpha: float, holder: GateHolder):
        super().__init__()
        self.base, self.holder, self.scale = base, holder, alpha / r
        self.lora_A = nn.Parameter(torch.empty(experts, r, base.in_features))    # (K, r, in)
        self.lora_B = nn.Parameter(torch.zeros(experts, base.out_features, r))   # (K, out, r)
        for k in range(experts):
            nn.init.kaiming_uniform_(self.lora_A[k], a=math.sqrt(5))

    def delta_weight(self, gate: torch.Tensor) -> torch.Tensor:
        """The effective weight change (out, in) for one gate vector (K,)."""
        return self.scale * torch.einsum("k,kor,kri->oi", gate, self.lora_B, self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:                          # (B, T, in)
        g = self.holder.weights                                                  # (B, K)
        xa = torch.einsum("bti,kri->btkr", x, self.lora_A.to(x.dtype))           # (B, T, K, r)
        xa = xa * g.to(x.dtype)[:, None, :, None]
        return self.base(x) + self.scale * torch.einsum("btkr,kor->bto", xa,
                                                        self.lora_B.to(x.dtype))


class RecLoRA(CTRModel):
    name = "reclora"
    config_class = RecLoRAConfig

    def __init__(self, config: RecLoRAConfig | dict[str, Any] | None = None, **options: Any):
        super().__init__(config, **options)
        self.lm = None
        self.crm: DIN | None = None
        self.gate: nn.Linear | None = None
        self.holder = GateHolder()
        self.template = load_template(self.config)

    def _build(self, schema: CTRSchema):
        raise ConfigError("reclora has no CTR network; use fit() or load_ctr_model()")

    # -- parts -----------------------------------------------------------------------------
    def _wrap(self) -> None:
        cfg = self.config
        targets = [(name, m) for name, m in self.lm.model.named_modules()
                   if isinstance(m, nn.Linear) and name.rsplit(".", 1)[-1] in cfg.target_modules]
        if not targets:
            raise ConfigError(f"no linear layer of {self.lm.name} matches target_modules "
                              f"{list(cfg.target_modules)}")
        for p in self.lm.model.parameters():
            p.requires_grad_(False)
        for name, m in targets:
            parent = self.lm.model.get_submodule(name.rsplit(".", 1)[0])
            setattr(parent, name.rsplit(".", 1)[1],
                    GatedLoRALinear(m, cfg.num_experts, cfg.lora_r, cfg.lora_alpha, self.holder))
        self.lm.adapter = {"mode": "reclora", "experts": cfg.num_experts, "r": cfg.lora_r}

    def build(self, schema: CTRSchema) -> Self:
        torch.manual_seed(self.config.seed)
        self.schema = schema
        self.lm = base_lm(self.config)
        self._wrap()
        self.gate = nn.Linear(self.user_dim(), self.config.num_experts)
        return self

    def user_dim(self) -> int:
        return self.crm.config.embedding_size * (1 + len(self.crm.schema.user_fields))

    @torch.no_grad()
    def user_vectors(self, data: CTRData) -> torch.Tensor:
        """The CRM's user representation of each sample (n, U): pooled history + attributes."""
        feats = self.crm.module.features
        feats.eval()
        batch = data.batch(np.arange(len(data)))
        attrs = [e(batch["user_fields"][:, k]) for k, e in enumerate(feats.user_fields)]
        return torch.cat([feats.pooled_history(batch), *attrs], dim=1)

    @torch.no_grad()
    def retrieve(self, data: CTRData, k: int) -> np.ndarray:
        """Positions of sample ``k``'s history row to show: the ``similar`` most similar to
        the target (CRM item embeddings, cosine) and the ``recent`` latest."""
        items = data.hist_items[k]
        real = np.flatnonzero(items != data.schema.n_items)
        emb = nn.functional.normalize(self.crm.module.features.item.weight, dim=1)
        sim = (emb[torch.from_numpy(items[real])] @ emb[int(data.item[k])]).numpy()
        near = real[np.argsort(-sim, kind="stable")[:self.config.similar]]
        recent = real[len(real) - self.config.recent:] if self.config.recent else real[:0]
        return np.union1d(near, recent)

    def examples(self, data: CTRData, with_answer: bool = True):
        return sample_examples(data, self.template, self.config.scenario,
                               keep=lambda k: self.retrieve(data, k), with_answer=with_answer)

    def gate_weights(self, users: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.gate(users), dim=-1)                        # (B, K)

    # -- training ---------------------------------------------------------------------------
    def fit(self, train: CTRData, valid: CTRData | None = None, *,
            run_dir: Path | None = None, progress: bool = True) -> Self:
        cfg = self.config
        if len(train) == 0:
            raise ConfigError("cannot fit on zero training samples")
        check_titles(train, self.name)
        t0 = time.perf_counter()
        if cfg.crm:
            from ._base import load_ctr_model
            self.crm = load_ctr_model(cfg.crm)
        else:
            self.crm = DIN(epochs=cfg.crm_epochs, batch_size=min(32, len(train)), seed=cfg.seed,
                           threads=cfg.threads).fit(train, progress=False)
        self.build(train.schema)
        users = self.user_vectors(train)
        ft = FinetuneConfig(**cfg.finetune_options(), progress=progress)
        encoded = [encode_example(self.lm, ex, True, cfg.max_seq_len)
                   for ex in self.examples(train)]
        params = [p for p in self.lm.model.parameters() if p.requires_grad]
        params += list(self.gate.parameters())
        opt = torch.optim.AdamW(params, lr=cfg.learning_rate)
        total = math.ceil(len(encoded) / cfg.batch_size) * cfg.epochs
        total = min(total, cfg.max_steps) if cfg.max_steps else total
        pad = self.lm.tokenizer.pad_token_id or 0
        losses = []
        self.lm.model.train()
        for step in tqdm(range(total), desc="reclora", disable=not progress, leave=False):
            for g in opt.param_groups:
                g["lr"] = lr_at(ft, step, total)
            per_epoch = math.ceil(len(encoded) / cfg.batch_size)
            order = np.random.default_rng([cfg.seed, step // per_epoch]).permutation(len(encoded))
            idx = order[(step % per_epoch) * cfg.batch_size:][:cfg.batch_size]
            opt.zero_grad(set_to_none=True)
            n_answer = sum(sum(1 for y in encoded[i][1][1:] if y != -100) for i in idx)
            step_loss = 0.0
            for m in range(0, len(idx), cfg.micro_batch_size):
                chunk = idx[m:m + cfg.micro_batch_size]
                self.holder.weights = self.gate_weights(users[chunk])
                loss, _ = answer_loss(self.lm, _collate([encoded[i] for i in chunk], pad))
                (loss / max(n_answer, 1)).backward()
                step_loss += float(loss.detach())
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            losses.append(step_loss / max(n_answer, 1))
        self.lm.model.eval()
        self.fit_info = {"training_samples": len(train), "steps": total,
                         "final_loss": float(np.mean(losses[-5:])) if losses else None,
                         "train_seconds": round(time.perf_counter() - t0, 1)}
        return self

    def predict(self, data: CTRData, batch_size: int | None = None,
                progress: bool = False) -> np.ndarray:
        if self.lm is None:
            raise RuntimeError(f"{self.name} is not fitted")
        check_titles(data, self.name)
        users = self.user_vectors(data)

        def set_gate(idx: np.ndarray) -> None:
            with torch.no_grad():
                self.holder.weights = self.gate_weights(users[torch.from_numpy(idx)])

        return yes_probability(self.lm, self.examples(data, with_answer=False),
                               batch_size or self.config.score_batch_size, set_gate, progress)

    # -- persistence ------------------------------------------------------------------------
    def trainable(self) -> dict[str, torch.Tensor]:
        out = {f"lm.{n}": p.detach().contiguous().clone()
               for n, p in self.lm.model.named_parameters() if "lora_" in n}
        out.update({f"gate.{n}": p.detach().contiguous().clone()
                    for n, p in self.gate.named_parameters()})
        return out

    def save(self, folder: str | Path) -> Path:
        if self.lm is None:
            raise RuntimeError(f"{self.name} is not fitted")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.crm.save(folder / "crm")
        atomic_write_bytes(folder / "adapter.safetensors", save(self.trainable()))
        write_json(folder / "model.json", {"name": self.name, "config": to_dict(self.config),
                                           "schema": self.schema.to_dict(),
                                           "fit_info": self.fit_info})
        return folder

    @classmethod
    def load_folder(cls, folder: Path, meta: dict[str, Any]) -> RecLoRA:
        from ._base import load_ctr_model

        model = cls(meta["config"])
        model.fit_info = meta.get("fit_info", {})
        model.crm = load_ctr_model(folder / "crm")
        model.build(CTRSchema(**meta["schema"]))
        tensors, _ = read_safetensors(folder / "adapter.safetensors",
                                      f"the model in {folder} is damaged; fit again")
        own = {**{f"lm.{n}": p for n, p in model.lm.model.named_parameters() if "lora_" in n},
               **{f"gate.{n}": p for n, p in model.gate.named_parameters()}}
        if set(own) != set(tensors):
            raise ConfigError(f"{folder}/adapter.safetensors does not fit this model")
        with torch.no_grad():
            for n, p in own.items():
                p.copy_(tensors[n])
        model.lm.model.eval()
        return model


def _collate(rows: list[tuple[list[int], list[int]]], pad: int) -> dict[str, torch.Tensor]:
    width = max(len(x) for x, _ in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)               # (B, T)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)           # (B, T)
    mask = torch.zeros((len(rows), width), dtype=torch.long)                  # (B, T)
    for r, (x, y) in enumerate(rows):
        ids[r, :len(x)], labels[r, :len(y)], mask[r, :len(x)] = (
            torch.tensor(x), torch.tensor(y), 1)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
