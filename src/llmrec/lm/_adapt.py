"""What is trained: new vocabulary tokens, LoRA adapters (peft), or every weight.

New tokens (semantic-ID codes such as ``<a_12>``) are added in sorted order, so the same set
always gets the same ids. A new row starts as the mean of the embedding rows of the pieces the
old tokenizer split its text into (deterministic, and close to what the model already knows);
old rows are untouched, so every old token's logit is unchanged by the resize.

Under LoRA only the adapter matrices and the new embedding rows train: peft's
``trainable_token_indices`` keeps one trainable copy of the new rows and writes it into the
embedding with ``index_copy`` (the tied LM head shares it), instead of training the whole
vocabulary matrix (LC-Rec's ``modules_to_save=embed_tokens,lm_head`` stores two
vocabulary-sized matrices per checkpoint). :func:`trainable_state` is exactly the tensors that
train, so an adapter file stays small (LoRA r=8 on q/v of SmolLM2-135M: 0.46M numbers).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ..errors import ConfigError
from ._load import LM

DEFAULT_TARGETS = ("q_proj", "v_proj")


def add_tokens(lm: LM, tokens: list[str]) -> list[int]:
    """Add ``tokens`` (sorted, each new to the vocabulary) to ``lm``; returns their ids."""
    if lm.adapter is not None:
        raise ConfigError("add tokens before apply_lora/full_finetuning: the adapter must know "
                          "the new rows")
    new = sorted(set(tokens))
    if len(new) != len(tokens):
        raise ConfigError("add_tokens: the token list has duplicates")
    vocab = lm.tokenizer.get_vocab()
    known = [t for t in new if t in vocab]
    if known:
        raise ConfigError(f"add_tokens: {known[0]!r} is already in the vocabulary")
    if not new:
        return []
    emb = lm.model.get_input_embeddings().weight
    pieces = [lm.tokenizer(t, add_special_tokens=False)["input_ids"] for t in new]
    with torch.no_grad():
        init = torch.stack([emb[ids].mean(0) if ids else emb.mean(0) for ids in pieces])
    added = lm.tokenizer.add_tokens(new)
    assert added == len(new)
    ids = [int(i) for i in lm.tokenizer.convert_tokens_to_ids(new)]
    # a padded vocabulary (more rows than tokens) is never shrunk
    lm.model.resize_token_embeddings(max(len(lm.tokenizer), emb.shape[0]), mean_resizing=False)
    emb = lm.model.get_input_embeddings().weight       # (V', D), a new tensor
    with torch.no_grad():
        emb[ids] = init.to(emb.dtype)
        head = lm.model.get_output_embeddings()
        if head is not None and head.weight is not emb:       # an untied LM head
            head.weight[ids] = init.to(head.weight.dtype)
    lm.new_tokens.extend(new)
    return ids


def new_token_ids(lm: LM) -> list[int]:
    return [int(i) for i in lm.tokenizer.convert_tokens_to_ids(lm.new_tokens)]


@dataclass(frozen=True)
class LoraOptions:
    """LoRA settings: rank ``r``, scale ``alpha / r``, dropout on the adapter input, and the
    module names to adapt (every linear layer whose name ends with one of them)."""

    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha <= 0 or not 0 <= self.dropout < 1:
            raise ConfigError(f"LoRA needs r >= 1, alpha > 0, 0 <= dropout < 1; got r={self.r}, "
                              f"alpha={self.alpha}, dropout={self.dropout}")
        if not self.target_modules:
            raise ConfigError("LoRA needs at least one target module")


def apply_lora(lm: LM, options: LoraOptions = LoraOptions()) -> LM:
    """Wrap ``lm.model`` with peft LoRA adapters (and trainable new-token rows); everything
    else is frozen. A target name that matches no module is a ConfigError naming it."""
    if lm.adapter is not None:
        raise ConfigError(f"the model already has an adapter ({lm.adapter['mode']})")
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ConfigError("LoRA needs the peft package: pip install 'llmrec[lm]'") from None

    names = {n.rsplit(".", 1)[-1] for n, m in lm.model.named_modules()
             if isinstance(m, torch.nn.Linear)}
    missing = [t for t in options.target_modules if t not in names]
    if missing:
        raise ConfigError(f"LoRA target module {missing[0]!r} matches no linear layer of "
                          f"{lm.name}; its linear layers: {', '.join(sorted(names))}")
    ids = new_token_ids(lm)
    config = LoraConfig(r=options.r, lora_alpha=options.alpha, lora_dropout=options.dropout,
                        target_modules=list(options.target_modules), bias="none",
                        task_type="CAUSAL_LM", trainable_token_indices=ids or None,
                        **options.extra)
    lm.model = get_peft_model(lm.model, config)
    lm.adapter = {"mode": "lora", **asdict(options),
                  "target_modules": list(options.target_modules)}
    return lm


def full_finetuning(lm: LM) -> LM:
    """Make every weight trainable (new rows included)."""
    if lm.adapter is not None:
        raise ConfigError(f"the model already has an adapter ({lm.adapter['mode']})")
    for p in lm.model.parameters():
        p.requires_grad_(True)
    lm.adapter = {"mode": "full"}
    return lm


def trainable_state(lm: LM) -> dict[str, torch.Tensor]:
    """The tensors that train, by parameter name (a tied weight once), detached on the CPU."""
    return {name: p.detach().cpu().contiguous().clone()
            for name, p in trainable_parameters(lm)}


def trainable_parameters(lm: LM) -> list[tuple[str, torch.nn.Parameter]]:
    """(name, parameter) of every trainable tensor, in a fixed order, each once."""
    seen: set[int] = set()
    out = []
    for name, p in lm.model.named_parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            out.append((name, p))
    return out


def load_trainable(lm: LM, tensors: dict[str, torch.Tensor], where: str = "adapter") -> None:
    """Copy ``tensors`` into the trainable parameters; the names must match exactly."""
    params = dict(trainable_parameters(lm))
    missing, unexpected = sorted(set(params) - set(tensors)), sorted(set(tensors) - set(params))
    if missing or unexpected:
        what = f"no tensor {missing[0]!r}" if missing else f"unknown tensor {unexpected[0]!r}"
        raise ConfigError(f"{where}: does not fit this model ({what}); load the same base "
                          "model, add the same tokens and apply the same adapter first")
    with torch.no_grad():
        for name, p in params.items():
            if tensors[name].shape != p.shape:
                raise ConfigError(f"{where}: {name} has shape {tuple(tensors[name].shape)}, "
                                  f"the model's is {tuple(p.shape)}")
            p.copy_(tensors[name].to(p.device, p.dtype))
