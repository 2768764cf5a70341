"""BIGRec: a bi-step grounding paradigm for LLM recommendation (Bao et al., 2023).

"A Bi-Step Grounding Paradigm for Large Language Models in Recommendation Systems"
(arXiv 2308.08434; code: github.com/SAI990323/BIGRec). Step 1 grounds the LLM to the
recommendation *space*: it is fine-tuned (LoRA) to write the next item's title from the titles
of the user's history. Step 2 grounds the generated text to *real items*: the text and every
item title are embedded, and items are ranked by the L2 distance between the two::

    history titles ──▶ LLM (LoRA) ──▶ "Toy Story (1995)"  ──▶ embed ──▶ L2 to every item
                                        (generated text)                 title's embedding

The paper's popularity factor (its ``data/movie/adjust_pda.py``): with ``d`` the distances of
one user, min-max normalised to [0, 1] over the catalogue, and ``p`` the items' popularity,
min-max normalised to [0, 1], items are ranked by ``(1 + p)^-gamma * d`` ascending. Here the
score (higher is better) is ``-(1 + p)^-gamma * d``: ``gamma = 0`` is pure grounding; a large
``gamma`` shrinks the distance of popular items towards 0, so the ranking approaches popularity
(only the exactly matched item, ``d = 0``, keeps its place).

Every item is scored, so full-ranking metrics (``llmrec evaluate``) compare with SASRec on the
same split; seen items are removed by the evaluator's history mask as for every model. The
prompt is built from the history the evaluator passes (training items for validation, training
+ validation items for test), like every sequential model's input; the fine-tuning examples
come from the training split only (the target is one of the user's training items, the prompt
the training items before it).

Deviations from the paper (LLaMA-7B, LoRA r=8 on q/v, 1,024 sampled training examples,
lr 1e-4, batch 128, 50 epochs with validation early stopping, beam 4; embeddings from the LLM's
own last hidden state; popularity counted over a recent window; gamma tuned on validation):

- The LLM defaults to the packaged SmolLM2-135M-Instruct (any causal LM via ``lm``), prompted
  through its chat template with the packaged ``next_title@1`` template (no ratings: at
  recommendation time a history carries none); training is a step budget (``max_steps`` /
  ``max_time``), not early stopping.
- Grounding embeds with the packaged sentence encoder (all-MiniLM-L6-v2, ``encoder="minilm"``;
  ``"hashing"`` for tests) instead of the LLM's hidden state, on unit-normalised vectors (so
  L2 ranks exactly as cosine).
- Popularity is the training split's interaction count; ``gamma`` is a setting, not searched.
- Training examples: the last ``targets_per_user`` training items of each user, each with the
  items before it (the paper samples from sliding windows).
- Greedy decoding by default (``num_beams`` > 1 runs beam search; the best beam is grounded).

Controls: ``init = "random"`` (same architecture, random weights, full fine-tuning advised)
and ``finetune = false`` (zero-shot generation from the pretrained model).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data import EvalCases, Interactions
from ..errors import ConfigError
from ..lm import LMTuning
from ..train import ModelConfig
from .base import Recommender

log = logging.getLogger(__name__)
_LM_PREFIX = "lm."


@dataclass
class BIGRecConfig(ModelConfig, LMTuning):
    """See the module docstring. ``lm``: "" is the packaged SmolLM2-135M GGUF, else a .gguf
    file, a Hugging Face folder or a hub name. The fine-tuning options (mode, lora_*,
    learning_rate, batch sizes, epochs, max_steps, max_time, threads) are
    :class:`~llmrec.lm.LMTuning`'s, with BIGRec's defaults below."""

    lm: str = ""
    init: Literal["pretrained", "random"] = "pretrained"
    finetune: bool = True
    lora_dropout: float = 0.05
    learning_rate: float = 5e-4
    warmup_steps: int = 10
    max_seq_len: int = 384
    targets_per_user: int = 1
    template: str = "next_title"
    max_items: int = 0               # history titles in a prompt; 0: the template's max_items
    scenario: str = "movie"
    chat: bool = True                # wrap prompts in the tokenizer's chat template
    num_beams: int = 1
    max_new_tokens: int = 32
    generate_batch_size: int = 16
    encoder: Literal["minilm", "hashing"] = "minilm"
    gamma: float = 0.0
    device: str = ""                 # "": CUDA when present, else the CPU

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_tuning("bigrec")
        for name in ("max_seq_len", "targets_per_user", "num_beams", "max_new_tokens",
                     "generate_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"bigrec: {name} must be >= 1, not {getattr(self, name)}")
        for name in ("gamma", "max_items"):
            if getattr(self, name) < 0:
                raise ConfigError(f"bigrec: {name} must be >= 0, not {getattr(self, name)}")

    def finetune_config(self, progress: bool) -> Any:
        return LMTuning.finetune_config(self, max_seq_len=self.max_seq_len, chat=self.chat,
                                        seed=self.seed, progress=progress)


@torch.no_grad()
def _random_weights(model: torch.nn.Module, seed: int) -> None:
    """Re-initialise every weight as a fresh model of the architecture (linear and embedding
    weights ~ N(0, initializer_range), biases 0, norm scales 1), seeded. Written out because
    transformers' own ``_init_weights`` skips weights it marked as loaded."""
    std = float(getattr(model.config, "initializer_range", None) or 0.02)
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():          # a tied weight appears once
        if p.ndim >= 2:
            p.copy_(torch.randn(p.shape, generator=gen) * std)
        elif "norm" in name.lower():
            p.fill_(1.0)
        else:
            p.zero_()


def popularity_factor(popularity: torch.Tensor, gamma: float) -> torch.Tensor:
    """(N,) ``(1 + p)^-gamma`` with ``p`` the popularity min-max normalised to [0, 1]."""
    p = popularity.float()
    span = float(p.max() - p.min()) if len(p) else 0.0
    p = (p - p.min()) / span if span > 0 else torch.zeros_like(p)
    return (1 + p).pow(-gamma)


def grounded_scores(queries: torch.Tensor, items: torch.Tensor, factor: torch.Tensor
                    ) -> torch.Tensor:
    """Scores (higher is better) of every item for each query vector: minus the L2 distance,
    min-max normalised per row to [0, 1], times the popularity factor.
    queries (B, D), items (N, D), factor (N,) -> (B, N)."""
    dist = torch.cdist(queries.float(), items.float())                      # (B, N)
    lo, hi = dist.min(1, keepdim=True).values, dist.max(1, keepdim=True).values
    norm = (dist - lo) / (hi - lo).clamp_min(1e-12)                         # (B, N) in [0, 1]
    return -(norm * factor)


class BIGRec(Recommender):
    name = "bigrec"
    config_class = BIGRecConfig
    config: BIGRecConfig

    def __init__(self, config: BIGRecConfig | dict[str, Any] | None = None, **options: Any):
        super().__init__(config, **options)
        self.titles: list[str] | None = None
        self.lm: Any = None
        self.item_vectors = torch.zeros(0)          # (N, D) unit rows
        self._encoder: Any = None
        self._generated: dict[str, str] = {}        # prompt text -> generated text

    # -- inputs -------------------------------------------------------------------------
    def set_titles(self, titles: list[str]) -> Self:
        """One display title per item index. Call before ``fit`` (``llmrec train`` calls
        :meth:`prepare`, which reads them from the data set)."""
        self.titles = [" ".join(str(t).split()) for t in titles]
        return self

    def prepare(self, dataset: Any, split: Any) -> None:
        if self.titles is None:
            from ..knowledge import display_titles

            self.set_titles(display_titles(dataset))

    def template(self) -> Any:
        """The prompt template (``max_items`` overridden where the config sets it)."""
        from dataclasses import replace

        from ..lm import load_prompt_template

        template = load_prompt_template(self.config.template)
        if self.config.max_items:
            template = replace(template, params={**template.params,
                                                 "max_items": self.config.max_items})
        return template

    def training_examples(self, train: Interactions) -> list[Any]:
        """Fine-tuning examples from the *training* interactions only: for each user, the last
        ``targets_per_user`` training items, each as the answer to the items before it."""
        from ..lm import Example, titles_prompt

        assert self.titles is not None
        template = self.template()
        out = []
        for u in range(train.n_users):
            items = train.sequence(u)
            for pos in range(max(1, len(items) - self.config.targets_per_user), len(items)):
                system, text = titles_prompt(template, [self.titles[i] for i in items[:pos]],
                                             self.config.scenario)
                answer = template.fill("answer", {"title": self.titles[items[pos]]})
                out.append(Example(text, answer, system, u,
                                   tuple(int(i) for i in items[:pos + 1])))
        return out

    # -- the LLM ------------------------------------------------------------------------
    def _base_lm(self) -> Any:
        from ..lm import load_lm

        cfg = self.config
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        lm = load_lm(cfg.lm or None, device=cfg.device or None)
        if cfg.init == "random":        # the control: same architecture, no pretraining
            _random_weights(lm.model, cfg.seed)
        return lm

    def _attach_adapter(self, tensors: dict[str, torch.Tensor]) -> None:
        from ..lm import LoraOptions, apply_lora, full_finetuning, load_trainable

        cfg = self.config
        if cfg.mode == "lora":
            apply_lora(self.lm, LoraOptions(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout,
                                            cfg.target_modules))
        else:
            full_finetuning(self.lm)
        load_trainable(self.lm, tensors, "bigrec model folder")
        self.lm.model.eval()

    def _encode(self, texts: list[str]) -> torch.Tensor:
        if self._encoder is None:
            from ..encode import ENCODERS

            self._encoder = ENCODERS[self.config.encoder]()
        return torch.from_numpy(self._encoder.encode(texts))                # (n, D)

    # -- training -----------------------------------------------------------------------
    def _fit(self, train: Interactions, valid: EvalCases | None, *, run_dir: Path | None,
             progress: bool, valid_mask: str) -> None:
        cfg = self.config
        if self.titles is None:
            raise ConfigError("bigrec needs item titles: call set_titles(titles) or "
                              "prepare(dataset, split) before fit (llmrec train does)")
        if len(self.titles) != train.n_items:
            raise ConfigError(f"bigrec: {len(self.titles)} titles for {train.n_items} items")
        t0 = time.perf_counter()
        self.lm = self._base_lm()
        self._generated = {}
        info: dict[str, Any] = {"finetune_steps": 0}
        if cfg.finetune:
            from ..lm import finetune

            examples = self.training_examples(train)
            result = finetune(self.lm, examples, cfg.finetune_config(progress),
                              run_dir=None if run_dir is None else Path(run_dir) / "lm",
                              meta={"model": "bigrec", "template": self.template().ref})
            info = {"finetune_steps": result.steps, "finetune_total_steps": result.total_steps,
                    "finetune_loss": result.loss, "finetune_tokens": result.tokens,
                    "finetune_seconds": round(result.seconds, 2),
                    "tokens_per_s": round(result.tokens_per_s, 1), "examples": len(examples),
                    "stopped": result.stopped, "resumed_from": result.resumed_from}
        self.lm.model.eval()
        self.item_vectors = self._item_vectors(progress)
        self.fit_info = {**info, "best_epoch": 0, "epochs_run": 0,
                         "train_seconds": round(time.perf_counter() - t0, 2)}

    def _item_vectors(self, progress: bool) -> torch.Tensor:
        from ..encode import encode_texts

        assert self.titles is not None
        self._encode([])                                 # builds the encoder
        vectors = encode_texts(np.arange(len(self.titles)), self.titles, self._encoder,
                               progress=progress)
        return torch.from_numpy(np.ascontiguousarray(vectors.matrix))      # (N, D)

    # -- generation and grounding -------------------------------------------------------
    def prompts(self, histories: list[np.ndarray]) -> list[str]:
        """The prompt text of each history (its last ``max_items`` titles), chat-templated
        unless ``chat = false``."""
        from ..lm import titles_prompt

        assert self.titles is not None
        template = self.template()
        out = []
        for h in histories:
            system, text = titles_prompt(template, [self.titles[i] for i in h],
                                         self.config.scenario)
            out.append(self.lm.chat_text(text, system) if self.config.chat else text)
        return out

    @torch.no_grad()
    def generate(self, histories: list[np.ndarray], progress: bool = False) -> list[str]:
        """The generated next title of each history (memoised by prompt text: a prompt is
        generated once per loaded model, whatever the batch it comes in)."""
        prompts = self.prompts(histories)
        todo = sorted(set(prompts) - set(self._generated))
        if todo:
            tok = self.lm.tokenizer
            encoded = {p: tok(p, add_special_tokens=False)["input_ids"] for p in todo}
            todo.sort(key=lambda p: (len(encoded[p]), p))   # similar lengths share a batch
            size = self.config.generate_batch_size
            bar = tqdm(total=len(todo), desc="bigrec generate", unit="user", leave=False,
                       disable=not progress or len(todo) <= size, dynamic_ncols=True)
            for start in range(0, len(todo), size):
                chunk = todo[start:start + size]
                texts = self._generate_batch([encoded[p] for p in chunk])
                self._generated.update(zip(chunk, texts))
                bar.update(len(chunk))
            bar.close()
        return [self._generated[p] for p in prompts]

    def _generate_batch(self, rows: list[list[int]]) -> list[str]:
        tok, cfg = self.lm.tokenizer, self.config
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)          # (B, T) left-padded
        mask = torch.zeros((len(rows), width), dtype=torch.long)             # (B, T)
        for i, r in enumerate(rows):
            ids[i, width - len(r):] = torch.tensor(r)
            mask[i, width - len(r):] = 1
        self.lm.model.eval()
        with self.lm.autocast():
            out = self.lm.model.generate(
                input_ids=ids.to(self.lm.device), attention_mask=mask.to(self.lm.device),
                max_new_tokens=cfg.max_new_tokens, num_beams=cfg.num_beams, do_sample=False,
                pad_token_id=pad, eos_token_id=tok.eos_token_id)              # (B, T + t)
        texts = tok.batch_decode(out[:, width:], skip_special_tokens=True)
        return [t.strip().split("\n")[0].strip() for t in texts]

    def ground(self, texts: list[str]) -> torch.Tensor:
        """(B, N) scores of every item for each generated text (see the module docstring)."""
        factor = popularity_factor(self.popularity, self.config.gamma)
        return grounded_scores(self._encode(texts), self.item_vectors, factor)

    def _score(self, histories: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        if self.lm is None:
            raise RuntimeError("bigrec has no language model loaded")
        return self.ground(self.generate(histories, progress=True))

    def item_embeddings(self) -> np.ndarray | None:
        return self.item_vectors.numpy() if len(self.item_vectors) else None

    # -- persistence: the adapter tensors, the item vectors and the titles ---------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        from ..lm import trainable_state

        assert self.titles is not None
        out = super().state_tensors()
        encoded = [t.encode("utf-8") for t in self.titles]
        out["title_bytes"] = torch.frombuffer(bytearray(b"".join(encoded)) or bytearray(1),
                                              dtype=torch.uint8).clone()
        out["title_ends"] = torch.tensor(np.cumsum([len(b) for b in encoded]),
                                         dtype=torch.int64)
        out["item_vectors"] = self.item_vectors
        if self.lm is not None and self.lm.adapter is not None:
            out.update({_LM_PREFIX + k: v for k, v in trainable_state(self.lm).items()})
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        super().load_state_tensors(tensors)
        raw = tensors["title_bytes"].numpy().tobytes()
        ends = tensors["title_ends"].tolist()
        self.titles = [raw[a:b].decode("utf-8") for a, b in zip([0] + ends[:-1], ends)]
        self.item_vectors = tensors["item_vectors"]
        self.lm = self._base_lm()
        self._generated = {}
        adapter = {k[len(_LM_PREFIX):]: v for k, v in tensors.items()
                   if k.startswith(_LM_PREFIX)}
        if adapter:
            self._attach_adapter(adapter)
