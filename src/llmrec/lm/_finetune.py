"""Fine-tune a causal LM on (prompt, answer) examples: LoRA or full, resumable, with progress.

The loop follows litgpt's ``finetune/lora.py``: the loss falls on the answer tokens only (the
prompt is masked with -100); an optimizer step takes ``batch_size`` examples in micro-batches
of ``micro_batch_size`` (gradient accumulation); the loss of a step is the mean over *all* its
answer tokens, so accumulation gives the same gradient as one big batch; the learning rate
rises linearly for ``warmup_steps`` and then follows half a cosine to ``min_learning_rate``;
training stops after ``epochs``, ``max_steps`` or ``max_time`` seconds, whichever comes first.

Data order is a pure function of (seed, epoch), and a step's examples a function of the step
number, so the step counter alone says where a run is. With a ``run_dir``, every
``save_every`` steps (and at the end) the run writes, atomically:

- ``checkpoint.safetensors``: the trainable tensors, AdamW's state and the torch RNG state
  (tensors), and the step, elapsed time and loss history (JSON header);
- ``adapter.safetensors`` + ``adapter.json``: only the trainable tensors (LoRA matrices and
  new-token rows, or every weight under full fine-tuning), with the base model's description,
  the added tokens, the adapter and training settings and the prompt template ids, so the
  folder describes itself (:func:`load_adapter` rebuilds the model from it);
- ``train_log.jsonl``: one line per ``log_every`` steps (loss, learning rate, tokens/s).

Calling :func:`finetune` again on the same folder with the same model, data and settings
resumes after the last checkpoint and ends with the trainable tensors an uninterrupted run
would have had (tests/lm/test_finetune.py).

Why not :class:`llmrec.train.Trainer`: it counts epochs (an LLM epoch can take hours, so
checkpoints and the schedule must count optimizer steps), has no gradient accumulation,
warm-up or wall-clock limit, validates by full-ranking NDCG every epoch, and checkpoints the
whole ``state_dict`` (135M+ frozen numbers) where only the adapter trains. The run-folder
habits are the same: safetensors without pickle, atomic writes, a config hash that refuses to
resume another configuration, JSONL logs, tqdm progress.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors.torch import save
from tqdm import tqdm

from .._io import (atomic_write_bytes, atomic_write_text, content_hash, corrupt_file,
                   read_json_file, write_json)
from .._saved import read_safetensors
from ..errors import ConfigError
from ._adapt import (LoraOptions, apply_lora, full_finetuning, load_trainable,
                     trainable_parameters, trainable_state)
from ._load import LM
from ._prompts import Example

log = logging.getLogger(__name__)
IGNORE = -100
# settings that do not change what is computed: a resumed run may change them
_FREE = ("max_time", "save_every", "log_every", "threads", "progress")


# the options below mean the same in FinetuneConfig and in every model config built on
# LMTuning (the models that fine-tune an LM: LC-Rec, BIGRec, TALLRec, RecLoRA)
TUNING_FIELDS = ("mode", "lora_r", "lora_alpha", "lora_dropout", "target_modules",
                 "learning_rate", "warmup_steps", "batch_size", "micro_batch_size", "epochs",
                 "max_steps", "max_time", "threads")


@dataclass
class LMTuning:
    """The fine-tuning options of a model config that fine-tunes an LM: the fields of
    :class:`FinetuneConfig` named in ``TUNING_FIELDS``, their checks, and the mapping onto a
    FinetuneConfig. A model keeps its own defaults by declaring a field again; its
    ``__post_init__`` calls :meth:`check_tuning`."""

    mode: Literal["lora", "full"] = "lora"
    lora_r: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    learning_rate: float = 3e-4
    warmup_steps: int = 0
    batch_size: int = 8
    micro_batch_size: int = 4
    epochs: int = 1
    max_steps: int = 0               # 0: epochs decide
    max_time: float = 0.0            # seconds of fine-tuning, all sessions together; 0: none
    threads: int = 0                 # torch intra-op threads; 0: unchanged

    def check_tuning(self, who: str) -> None:
        """One line naming ``who`` and the first option out of range."""
        self.target_modules = tuple(self.target_modules)
        if self.mode not in ("lora", "full"):
            raise ConfigError(f"{who}: mode must be 'lora' or 'full', not {self.mode!r}")
        bad = [n for n in ("lora_r", "batch_size", "micro_batch_size", "epochs")
               if getattr(self, n) < 1]
        bad += [n for n in ("learning_rate",) if not getattr(self, n) > 0]
        bad += [n for n in ("lora_dropout", "warmup_steps", "max_steps", "max_time", "threads")
                if getattr(self, n) < 0]
        if bad:
            raise ConfigError(f"{who}: {bad[0]} = {getattr(self, bad[0])!r} is out of range")
        if self.batch_size % self.micro_batch_size:
            raise ConfigError(f"{who}: batch_size {self.batch_size} is not a multiple of "
                              f"micro_batch_size {self.micro_batch_size}")

    def finetune_config(self, **fixed: Any) -> FinetuneConfig:
        """A :class:`FinetuneConfig` with this config's tuning options and ``fixed`` (the
        options the model decides itself: max_seq_len, seed, progress, ...)."""
        return FinetuneConfig(**{**{n: getattr(self, n) for n in TUNING_FIELDS}, **fixed})


@dataclass
class FinetuneConfig(LMTuning):
    """Settings of one fine-tuning run (``batch_size``: examples per optimizer step): the
    :class:`LMTuning` options and these."""

    min_learning_rate: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0      # 0 disables clipping
    max_seq_len: int = 512
    chat: bool = True               # wrap prompts in the tokenizer's chat template
    seed: int = 42
    save_every: int = 50            # steps between checkpoints (with a run_dir)
    log_every: int = 10
    progress: bool = True

    def __post_init__(self) -> None:
        self.check_tuning("fine-tuning")
        bad = [n for n in ("max_seq_len", "save_every", "log_every") if not getattr(self, n) > 0]
        bad += [n for n in ("min_learning_rate", "weight_decay", "max_grad_norm")
                if getattr(self, n) < 0]
        if bad:
            raise ConfigError(f"fine-tuning option {bad[0]} = {getattr(self, bad[0])!r} is "
                              "out of range")

    def lora(self) -> LoraOptions:
        return LoraOptions(self.lora_r, self.lora_alpha, self.lora_dropout, self.target_modules)


@dataclass
class FinetuneResult:
    steps: int
    total_steps: int
    loss: float | None               # mean answer-token loss of the last logged steps
    tokens: int                      # tokens seen (prompt + answer), all sessions
    seconds: float
    stopped: Literal["done", "max_time"]
    resumed_from: int | None
    history: list[dict] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)


def encode_example(lm: LM, example: Example, chat: bool, max_seq_len: int
                   ) -> tuple[list[int], list[int]]:
    """(input ids, labels): the prompt's labels are -100; a long prompt loses its start."""
    tok = lm.tokenizer
    prompt = lm.chat_text(example.prompt, example.system) if chat else example.prompt
    answer = example.answer + lm.end_of_answer()
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    a = tok(answer, add_special_tokens=False)["input_ids"]
    if len(a) >= max_seq_len:
        raise ConfigError(f"an answer of {len(a)} tokens does not fit max_seq_len "
                          f"{max_seq_len}: {example.answer[:60]!r}")
    p = p[len(p) + len(a) - max_seq_len:] if len(p) + len(a) > max_seq_len else p
    return p + a, [IGNORE] * len(p) + a


def _collate(rows: list[tuple[list[int], list[int]]], pad: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)          # (B, T)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)    # (B, T)
    mask = torch.zeros((len(rows), width), dtype=torch.long)             # (B, T)
    for r, (x, y) in enumerate(rows):
        ids[r, :len(x)] = torch.tensor(x)
        labels[r, :len(y)] = torch.tensor(y)
        mask[r, :len(x)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def answer_loss(lm: LM, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """(sum of answer-token cross-entropies, number of answer tokens) of one micro-batch.

    Only the positions that predict an answer token go through the LM head (``logits_to_keep``
    where the model supports it): with a 49k vocabulary and short answers after long prompts,
    the head is otherwise the largest cost of a step."""
    batch = {k: v.to(lm.device) for k, v in batch.items()}
    labels = batch["labels"]                                                # (B, T)
    keep = torch.nonzero((labels[:, 1:] != IGNORE).any(0)).flatten()        # (K,) positions
    extra = {"logits_to_keep": keep} if _keeps_logits(lm) else {}
    with lm.autocast():
        logits = lm.model(input_ids=batch["input_ids"],
                          attention_mask=batch["attention_mask"], **extra).logits
    if not extra:
        logits = logits[:, keep]                                            # (B, K, V)
    targets = labels[:, keep + 1]                                           # (B, K)
    loss = torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
        ignore_index=IGNORE, reduction="sum")
    return loss, int((targets != IGNORE).sum())


def _keeps_logits(lm: LM) -> bool:
    base = lm.model.get_base_model() if hasattr(lm.model, "get_base_model") else lm.model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def lr_at(cfg: FinetuneConfig, step: int, total: int) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warm-up, then cosine."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    span = max(total - cfg.warmup_steps, 1)
    progress = min((step - cfg.warmup_steps) / span, 1.0)
    return cfg.min_learning_rate + (cfg.learning_rate - cfg.min_learning_rate) * 0.5 * (
        1 + math.cos(math.pi * progress))


def step_examples(n: int, step: int, cfg: FinetuneConfig) -> np.ndarray:
    """Indices of the examples of optimizer step ``step``: epoch ``step // steps_per_epoch``
    in the order ``default_rng([seed, epoch]).permutation(n)``."""
    per_epoch = math.ceil(n / cfg.batch_size)
    epoch, i = divmod(step, per_epoch)
    order = np.random.default_rng([cfg.seed, epoch]).permutation(n)
    return order[i * cfg.batch_size:(i + 1) * cfg.batch_size]


def finetune(lm: LM, examples: Sequence[Example], config: FinetuneConfig | None = None,
             run_dir: str | Path | None = None, *, meta: dict[str, Any] | None = None,
             on_step: Callable[[int, dict], None] | None = None) -> FinetuneResult:
    """Fine-tune ``lm`` in place on ``examples`` (see the module docstring). ``meta`` (for
    instance ``{"template": template.ref}``) is stored with the adapter; ``on_step(step,
    record)`` runs after every optimizer step (and its checkpoint), and an exception it raises
    ends training there."""
    cfg = config or FinetuneConfig()
    if not examples:
        raise ConfigError("fine-tuning needs at least one example")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)                  # LoRA's initial A, dropout masks
    if lm.adapter is None:
        if cfg.mode == "lora":
            apply_lora(lm, cfg.lora())
        else:
            full_finetuning(lm)
    elif lm.adapter["mode"] != cfg.mode:
        raise ConfigError(f"the model has a {lm.adapter['mode']} adapter, the config asks "
                          f"for mode {cfg.mode!r}")
    encoded = [encode_example(lm, ex, cfg.chat, cfg.max_seq_len) for ex in examples]
    pad = lm.tokenizer.pad_token_id
    per_epoch = math.ceil(len(encoded) / cfg.batch_size)
    total = per_epoch * cfg.epochs
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    settings = {k: v for k, v in asdict(cfg).items() if k not in _FREE}
    run_info = {"lm": lm.describe(), "config": asdict(cfg), "meta": meta or {},
                "examples": len(encoded),
                "config_hash": content_hash({"lm": lm.describe(), "settings": settings,
                                             "meta": meta or {}, "data": encoded})}
    params = trainable_parameters(lm)
    optimizer = torch.optim.AdamW([p for _, p in params], lr=cfg.learning_rate,
                                  weight_decay=cfg.weight_decay)
    state: dict[str, Any] = {"step": 0, "elapsed": 0.0, "tokens": 0, "history": []}
    folder = Path(run_dir) if run_dir else None
    resumed_from = None
    if folder is not None and (folder / "checkpoint.safetensors").exists():
        state = _load_checkpoint(folder, lm, optimizer, run_info["config_hash"])
        resumed_from = state["step"]
        log.info("resuming %s at step %d of %d", folder, state["step"], total,
                 extra={"event": "resume", "step": state["step"]})
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "run.json", run_info)
        atomic_write_text(folder / "train_log.jsonl",
                          "".join(json.dumps(r) + "\n" for r in state["history"]))

    lm.model.train()
    accum = cfg.batch_size // cfg.micro_batch_size
    t_start = time.perf_counter() - state["elapsed"]
    window = {"loss": 0.0, "answer_tokens": 0, "tokens": 0, "t": time.perf_counter()}
    stopped: Literal["done", "max_time"] = "done"
    bar = tqdm(total=total, initial=state["step"], desc="finetune", unit="step",
               disable=not cfg.progress, dynamic_ncols=True, leave=False)
    try:
        while state["step"] < total:
            if cfg.max_time and time.perf_counter() - t_start >= cfg.max_time:
                stopped = "max_time"
                break
            step = state["step"]
            lr = lr_at(cfg, step, total)
            for group in optimizer.param_groups:
                group["lr"] = lr
            idx = step_examples(len(encoded), step, cfg)
            rows = [encoded[i] for i in idx]
            n_answer = sum(sum(1 for y in lab[1:] if y != IGNORE) for _, lab in rows)
            optimizer.zero_grad(set_to_none=True)
            step_loss = 0.0
            for m in range(accum):
                chunk = rows[m * cfg.micro_batch_size:(m + 1) * cfg.micro_batch_size]
                if not chunk:
                    break
                loss_sum, _ = answer_loss(lm, _collate(chunk, pad))
                (loss_sum / max(n_answer, 1)).backward()
                step_loss += float(loss_sum.detach())
            if not math.isfinite(step_loss):
                raise FloatingPointError(f"loss became {step_loss} at step {step + 1}; "
                                         "lower learning_rate")
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_([p for _, p in params], cfg.max_grad_norm)
            optimizer.step()
            state["step"] = step + 1
            n_tokens = sum(len(x) for x, _ in rows)
            state["tokens"] += n_tokens
            window["loss"] += step_loss
            window["answer_tokens"] += n_answer
            window["tokens"] += n_tokens
            record = {"step": state["step"], "loss": step_loss / max(n_answer, 1), "lr": lr}
            bar.update(1)
            if state["step"] % cfg.log_every == 0 or state["step"] == total:
                now = time.perf_counter()
                record = {"step": state["step"],
                          "loss": window["loss"] / max(window["answer_tokens"], 1), "lr": lr,
                          "tokens_per_s": round(window["tokens"] / max(now - window["t"], 1e-9),
                                                1),
                          "seconds": round(now - t_start, 2)}
                state["history"].append(record)
                bar.set_postfix(loss=f"{record['loss']:.4f}",
                                tok_s=f"{record['tokens_per_s']:.0f}")
                log.info("step %d/%d | loss %.4f | lr %.2e | %.0f tokens/s", state["step"],
                         total, record["loss"], lr, record["tokens_per_s"],
                         extra={"event": "finetune_step", **record})
                window = {"loss": 0.0, "answer_tokens": 0, "tokens": 0, "t": now}
                if folder is not None:
                    with open(folder / "train_log.jsonl", "a") as f:
                        f.write(json.dumps(record) + "\n")
            state["elapsed"] = time.perf_counter() - t_start
            if folder is not None and (state["step"] % cfg.save_every == 0
                                       or state["step"] == total):
                _save(folder, lm, optimizer, state, run_info)
            if on_step is not None:
                on_step(state["step"], record)
    finally:
        bar.close()
        lm.model.eval()
    state["elapsed"] = time.perf_counter() - t_start
    if folder is not None and stopped == "max_time":
        _save(folder, lm, optimizer, state, run_info)
    last = state["history"][-1]["loss"] if state["history"] else None
    return FinetuneResult(state["step"], total, last, state["tokens"], state["elapsed"],
                          stopped, resumed_from, state["history"])


def _save(folder: Path, lm: LM, optimizer: torch.optim.Optimizer, state: dict,
          run_info: dict) -> None:
    tensors = {f"param.{k}": v for k, v in trainable_state(lm).items()}
    sd = optimizer.state_dict()
    scalars = {}
    for pid, st in sd["state"].items():
        for key, value in st.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars[f"{pid}.{key}"] = value
    tensors["rng.torch"] = torch.get_rng_state()
    if lm.device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(lm.device)
    header = {"state": json.dumps({**state, "config_hash": run_info["config_hash"]}),
              "optimizer": json.dumps({"param_groups": sd["param_groups"], "scalars": scalars})}
    atomic_write_bytes(folder / "checkpoint.safetensors", save(tensors, metadata=header))
    save_adapter(lm, folder, {**run_info, "step": state["step"]})


def _load_checkpoint(folder: Path, lm: LM, optimizer: torch.optim.Optimizer,
                     config_hash: str) -> dict[str, Any]:
    path = folder / "checkpoint.safetensors"
    fix = f"delete {folder} to fine-tune again from the start"
    tensors, header = read_safetensors(path, fix)
    try:
        state = json.loads(header["state"])
        if state.get("config_hash") != config_hash:
            raise ConfigError(f"{folder} holds a fine-tuning run of another model, data or "
                              "configuration; use another folder or delete it")
        load_trainable(lm, {k[6:]: v for k, v in tensors.items() if k.startswith("param.")},
                       str(path))
        opt = json.loads(header["optimizer"])
        st: dict[int, dict[str, Any]] = {}
        for name, value in tensors.items():
            if name.startswith("optim."):
                _, pid, key = name.split(".", 2)
                st.setdefault(int(pid), {})[key] = value
        for name, value in opt["scalars"].items():
            pid, key = name.split(".", 1)
            st.setdefault(int(pid), {})[key] = value
        optimizer.load_state_dict({"state": st, "param_groups": opt["param_groups"]})
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and lm.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], lm.device)
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise corrupt_file(path, e, fix) from None
    return state


def save_adapter(lm: LM, folder: str | Path, info: dict[str, Any] | None = None) -> None:
    """``adapter.safetensors`` (the trainable tensors) and ``adapter.json`` (what they fit)."""
    folder = Path(folder)
    atomic_write_bytes(folder / "adapter.safetensors", save(trainable_state(lm)))
    write_json(folder / "adapter.json", {**(info or {}), "lm": lm.describe()})


def load_adapter(folder: str | Path, *, device: str | torch.device | None = None,
                 cache_dir: str | Path | None = None) -> LM:
    """The model an adapter folder was trained from, with the adapter's tensors loaded."""
    from ._adapt import add_tokens
    from ._load import load_lm

    folder = Path(folder)
    fix = f"the adapter in {folder} is damaged; fine-tune again"
    info = read_json_file(folder / "adapter.json", fix)
    desc = info.get("lm", {})
    base = desc.get("base", {})
    kind = base.get("kind")
    source = base.get("path") if kind in ("gguf", "folder") else base.get("name")
    if not source:
        raise ConfigError(f"{folder}/adapter.json: names no base model")
    lm = load_lm(source, device=device, dtype=base.get("dtype"), cache_dir=cache_dir)
    if base.get("sha256") and lm.source.get("sha256") != base["sha256"]:
        raise ConfigError(f"{folder}: trained on {source} with SHA-256 {base['sha256'][:12]}…, "
                          "but that file has changed")
    if desc.get("new_tokens"):
        add_tokens(lm, list(desc["new_tokens"]))
    adapter = desc.get("adapter") or {}
    if adapter.get("mode") == "lora":
        apply_lora(lm, LoraOptions(adapter["r"], adapter["alpha"], adapter["dropout"],
                                   tuple(adapter["target_modules"]), adapter.get("extra", {})))
    elif adapter.get("mode") == "full":
        full_finetuning(lm)
    else:
        raise ConfigError(f"{folder}/adapter.json: unknown adapter {adapter!r}")
    tensors, _ = read_safetensors(folder / "adapter.safetensors", fix)
    load_trainable(lm, tensors, str(folder / "adapter.safetensors"))
    lm.model.eval()
    return lm
