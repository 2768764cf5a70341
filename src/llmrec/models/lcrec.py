"""LC-Rec: a causal LLM fine-tuned to generate the next item's code tuple (Zheng et al., ICDE
2024, "Adapting Large Language Models by Integrating Collaborative Semantics for
Recommendation").

Every item is a short tuple of codes (its index, see :mod:`llmrec.tokenize`); each code of
each level is a new token of the LLM's vocabulary (``<a_12> <b_3> <c_7>``: letter = level).
The LLM is fine-tuned (LoRA by default, or every weight) on LC-Rec's tasks, all built from the
*training* split only, each an instruction prompt and an answer (templates
``lm/templates/lcrec_*.toml``)::

    seq         history codes   "<a_1><b_4><c_0>, <a_7><b_2><c_5>, ..."  ->  "<a_3><b_3><c_1>"
    item2index  "Which item is titled "Heat (1995)"?"                    ->  "<a_3><b_3><c_1>"
    index2item  "What is the title of the item <a_3><b_3><c_1>?"         ->  "Heat (1995)"
    fusion      history titles "Casino (1995)\\nFargo (1996)\\n..."       ->  "<a_3><b_3><c_1>"

Recommending is the ``seq`` prompt of the user's history followed by beam search constrained
to the trie of real item tuples (:mod:`._beam`, the search TIGER uses), over the LLM's logits
restricted to the code tokens of each level. Scores are TIGER's: the ``beam_size`` beam items
get the log-probability of their tuple (renormalised over valid codes at each level); every
other item ranks after the beam by training popularity, so full-ranking metrics are comparable
with SASRec and TIGER on the same split (metrics at cut-offs above ``beam_size`` measure the
popularity tail, not the model).

``init = "random"``: the same architecture with randomly initialised weights (seeded), trained
the same way -- the control for what the LLM's pretraining brings.

Item indices: ``ids`` is a folder written by ``llmrec tokenize`` (LC-Rec's own setting:
RQ-KMeans/RQ-VAE of item text with ``collisions = "sinkhorn"``, its uniform semantic mapping)
or one of the generated baselines of "How to Index Item IDs" (``random``, ``sequential``,
``collaborative``, from the training interactions only).

Deviations from the paper (LLaMA-7B, RQ-VAE 4x256 of LLaMA text embeddings, full
fine-tuning of the new embeddings + LoRA on all projections, 4 epochs over all targets and
items, beam 20 with the item-level trie):

- The base model is the packaged SmolLM2-135M-Instruct (any causal LM folder via ``lm``).
- Tasks: the four above. The paper also has preference-intention tasks (user-written intent
  and preference texts from GPT-3.5); ML-100K has no reviews, so they are left out.
- Each of ``epochs`` draws ``samples_per_user`` random next-item targets per user (each with
  the ``max_seq_len`` items before it); the item tasks cover the items drawn as targets in that
  epoch. The examples of all epochs are shuffled together into one fine-tuning run (the run is
  then one resumable, step-counted :func:`llmrec.lm.finetune` run).
- Only the new code rows train with LoRA (peft ``trainable_token_indices``), not the whole
  embedding and LM head.
- The whole prompt is the user's history; no user-id token. No early stopping on validation:
  fine-tuning stops after ``epochs``, ``max_steps`` or ``max_time``.
"""

from __future__ import annotations

import inspect
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import require_positive
from ..data import EvalCases, Interactions
from ..errors import ConfigError
from ..lm import LMTuning
from ..tokenize import SemanticIds
from ..train import ModelConfig
from ._beam import (beam_scores, child_table, constrained_beam_search, item_ids,
                    popularity_tail)
from .base import Recommender

log = logging.getLogger(__name__)

TASKS = ("seq", "item2index", "index2item", "fusion")
LETTERS = "abcdefghijklmnop"
INITS = ("pretrained", "random")


def code_token(level: int, code: int) -> str:
    return f"<{LETTERS[level]}_{code}>"


@dataclass
class LCRecConfig(ModelConfig, LMTuning):
    """See the module docstring. ``lm``: a causal LM folder or ``.gguf`` ("" = the packaged
    SmolLM2-135M-Instruct); ``max_seq_len``: history items in the ``seq`` prompt;
    ``max_tokens``: prompt + answer tokens (a long prompt loses its start). The fine-tuning
    options (mode, lora_*, learning_rate, batch sizes, epochs, max_steps, max_time, threads)
    are :class:`~llmrec.lm.LMTuning`'s, with LC-Rec's defaults below."""

    lm: str = ""
    init: str = "pretrained"
    learning_rate: float = 1e-3
    warmup_steps: int = 10
    samples_per_user: int = 1
    tasks: tuple[str, ...] = TASKS
    max_seq_len: int = 20
    max_title_items: int = 10
    max_tokens: int = 384
    scenario: str = "item"
    chat: bool = True               # wrap prompts in the tokenizer's chat template
    beam_size: int = 20
    score_batch: int = 16           # users per beam-search batch
    ids: str = "collaborative"
    id_levels: int = 3
    id_codebook_size: int = 32
    finetune_dir: str = ""          # "" = RUN/finetune; another run's folder continues it
    save_every: int = 50

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_tuning("lcrec")
        self.tasks = tuple(self.tasks)
        if self.init not in INITS:
            raise ConfigError(f"init must be one of {INITS}, not {self.init!r}")
        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ConfigError(f"tasks must be distinct names from {TASKS}; got {self.tasks}")
        require_positive(self, "samples_per_user", "max_seq_len", "max_title_items",
                         "max_tokens", "beam_size", "score_batch", "id_levels", "save_every")
        if not 2 <= self.id_codebook_size or self.id_levels > len(LETTERS):
            raise ConfigError(f"id_codebook_size must be >= 2 and id_levels <= {len(LETTERS)}")


class LCRec(Recommender):
    """The recommender: item codes as LLM tokens, task examples, constrained beam search."""

    name = "lcrec"
    config_class = LCRecConfig
    config: LCRecConfig

    def __init__(self, config: Any = None, **options: Any):
        super().__init__(config, **options)
        self.semantic_ids: SemanticIds | None = None
        self.titles: list[str] | None = None
        self.lm: Any = None

    def set_semantic_ids(self, ids: SemanticIds) -> LCRec:
        """Use these item tuples (row i = item index i) instead of ``config.ids``."""
        self.semantic_ids = ids
        return self

    def set_titles(self, titles: list[str]) -> LCRec:
        """Item titles by index (item metadata, not user data), for the title tasks."""
        self.titles = list(titles)
        return self

    def prepare(self, dataset: Any, split: Any) -> None:
        """What ``llmrec train`` calls: titles from the data set's item metadata."""
        from ..knowledge import display_titles

        if self.titles is None and set(self.config.tasks) - {"seq"}:
            self.set_titles(display_titles(dataset))

    # -- the LLM and its code tokens ------------------------------------------------------
    def _load_lm(self, codes: np.ndarray, sizes: tuple[int, ...]) -> None:
        """Base LM (pretrained or re-initialised), code tokens added; no adapter yet."""
        from ..lm import add_tokens, load_lm

        cfg = self.config
        lm = load_lm(cfg.lm or None)
        if cfg.init == "random":
            from transformers import AutoModelForCausalLM

            torch.manual_seed(cfg.seed)
            lm.model = AutoModelForCausalLM.from_config(lm.model.config).to(lm.device).eval()
            lm.source = {**lm.source, "init": "random", "init_seed": cfg.seed}
        tokens = [code_token(lv, c) for lv, size in enumerate(sizes) for c in range(size)]
        add_tokens(lm, tokens)
        self.lm = lm
        self.codes = np.asarray(codes, dtype=np.int64)                       # (N, L)
        self.sizes = tuple(int(s) for s in sizes)
        self.offsets = tuple(int(o) for o in np.concatenate([[0], np.cumsum(sizes)[:-1]]))
        # LLM token id of code-space index offsets[l] + c, (sum(sizes),)
        self._code_ids = torch.tensor(lm.tokenizer.convert_tokens_to_ids(tokens),
                                      dtype=torch.long)
        trie = SemanticIds(self.codes, self.sizes).trie()
        self._table = child_table(trie)
        self._leaf_item = torch.from_numpy(trie.item)
        self._tail: torch.Tensor | None = None
        base = lm.model.get_base_model() if hasattr(lm.model, "get_base_model") else lm.model
        # transformers >= 5.2x renamed the decoding cache argument past_key_values -> cache
        self._cache_arg = ("cache" if "cache" in inspect.signature(base.forward).parameters
                           else "past_key_values")

    def item_text(self, item: int) -> str:
        """An item's code tokens, e.g. ``<a_3><b_3><c_1>``."""
        return "".join(code_token(lv, int(c)) for lv, c in enumerate(self.codes[item]))

    def _templates(self) -> dict[str, Any]:
        from ..lm import load_prompt_template

        return {t: load_prompt_template(f"lcrec_{t}") for t in TASKS}

    def _seq_prompt(self, template: Any, history: np.ndarray) -> tuple[str, str]:
        """(system, user text) of the main task for a history (oldest first)."""
        shown = history[-self.config.max_seq_len:]
        fields = {"scenario": self.config.scenario,
                  "history": ", ".join(self.item_text(int(i)) for i in shown)}
        return template.fill("system", fields), template.fill("user", fields)

    # -- training -------------------------------------------------------------------------
    def examples(self, train: Interactions) -> list[Any]:
        """The task examples of every epoch (see the module docstring), training data only."""
        from ..lm import Example

        cfg, tpl = self.config, self._templates()
        sc = cfg.scenario
        if set(cfg.tasks) - {"seq"} and (self.titles is None or len(self.titles) < train.n_items):
            raise ConfigError("lcrec tasks item2index, index2item and fusion need item titles "
                              "(set_titles, or the data set's item metadata); use "
                              "tasks = [\"seq\"] for data without titles")
        out = []
        seqs = [train.sequence(u) for u in range(train.n_users)]
        for epoch in range(cfg.epochs):
            rng = np.random.default_rng([cfg.seed, epoch])
            targets: set[int] = set()
            for u, s in enumerate(seqs):
                if len(s) < 2:
                    continue
                for t in rng.integers(1, len(s), size=cfg.samples_per_user):
                    hist, target = s[max(0, t - cfg.max_seq_len):t], int(s[t])
                    targets.add(target)
                    codes = self.item_text(target)
                    if "seq" in cfg.tasks:
                        system, user = self._seq_prompt(tpl["seq"], hist)
                        out.append(Example(user, codes, system, u, (*map(int, hist), target)))
                    if "fusion" in cfg.tasks:
                        shown = hist[-cfg.max_title_items:]
                        f = {"scenario": sc, "history": "\n".join(self.titles[int(i)]
                                                                  for i in shown)}
                        out.append(Example(tpl["fusion"].fill("user", f), codes,
                                           tpl["fusion"].fill("system", f), u,
                                           (*map(int, shown), target)))
            for i in sorted(targets):
                f = {"scenario": sc, "codes": self.item_text(i),
                     "title": self.titles[i] if self.titles else ""}
                for task in ("item2index", "index2item"):
                    if task in cfg.tasks:
                        out.append(Example(tpl[task].fill("user", f), tpl[task].fill("answer", f),
                                           tpl[task].fill("system", f), None, (i,)))
        return out

    def finetune_config(self, progress: bool = True) -> Any:
        c = self.config             # LC-Rec draws each epoch's targets itself: one pass each
        return c.finetune_config(epochs=1, max_seq_len=c.max_tokens, chat=c.chat, seed=c.seed,
                                 save_every=c.save_every, progress=progress)

    def _fit(self, train: Interactions, valid: EvalCases | None, *, run_dir: Path | None,
             progress: bool, valid_mask: str) -> None:
        from ..lm import finetune

        cfg = self.config
        ids = self.semantic_ids if self.semantic_ids is not None else item_ids(
            train, cfg.ids, cfg.id_levels, cfg.id_codebook_size, cfg.seed)
        if ids.n_items != train.n_items:
            raise ConfigError(f"semantic IDs cover {ids.n_items} items, the data has "
                              f"{train.n_items}; tokenize the same data set and preprocessing")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self._load_lm(np.array(ids.codes), ids.codebook_sizes)
        examples = self.examples(train)
        if not examples:
            raise ConfigError("no user has 2 or more training interactions")
        folder = Path(cfg.finetune_dir) if cfg.finetune_dir else (
            run_dir / "finetune" if run_dir is not None else None)
        meta = {"model": "lcrec", "templates": [f"lcrec_{t}@1" for t in cfg.tasks],
                "ids": ids.method, "ids_key": ids.key}
        t0 = time.perf_counter()
        result = finetune(self.lm, examples, self.finetune_config(progress), folder, meta=meta)
        self.lm.model.eval()
        self.fit_info = {
            "train_seconds": round(result.seconds, 2), "wall_seconds":
            round(time.perf_counter() - t0, 2), "steps": result.steps,
            "total_steps": result.total_steps, "stopped": result.stopped,
            "resumed_from": result.resumed_from, "loss": result.loss, "tokens": result.tokens,
            "tokens_per_s": round(result.tokens_per_s, 1), "examples": len(examples),
            "ids": ids.method, "ids_key": ids.key, "levels": len(ids.codebook_sizes),
            "collision_rate": ids.diagnostics.get("collision_rate"),
            "trainable_parameters": self.lm.num_parameters(trainable=True),
            "lm": self.lm.source, "epochs_run": cfg.epochs}

    # -- decoding -------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, histories: list[np.ndarray], beam_size: int | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Constrained beam search from the ``seq`` prompt: items (B, W) and log-probabilities
        (B, W), best first; -1 / -inf fill slots when fewer than W items exist."""
        lm, cfg = self.lm, self.config
        lm.model.eval()
        tpl = self._templates()["seq"]
        rows = []
        for h in histories:
            system, user = self._seq_prompt(tpl, np.asarray(h))
            text = lm.chat_text(user, system) if cfg.chat else user
            ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
            rows.append(ids[-(cfg.max_tokens - len(self.sizes) - 1):])
        B, T = len(rows), max(len(r) for r in rows)
        pad = lm.tokenizer.pad_token_id or 0
        input_ids = torch.full((B, T), pad, dtype=torch.long)                # (B, T) left-padded
        mask = torch.zeros((B, T), dtype=torch.long)                         # (B, T)
        for r, ids in enumerate(rows):
            input_ids[r, T - len(ids):] = torch.tensor(ids)
            mask[r, T - len(ids):] = 1
        dev = lm.device
        code_ids = self._code_ids.to(dev)

        def run(ids: torch.Tensor, att: torch.Tensor, pos: torch.Tensor, cache: Any
                ) -> tuple[torch.Tensor, Any]:
            with lm.autocast():
                out = lm.model(input_ids=ids.to(dev), attention_mask=att.to(dev),
                               position_ids=pos.to(dev), use_cache=True, logits_to_keep=1,
                               **{self._cache_arg: cache})
            cache = getattr(out, "cache", None) or out.past_key_values
            return out.logits[:, -1].float()[:, code_ids].cpu(), cache

        def step(tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
            Bt, W, _ = tokens.shape
            if state is None:                    # the prompt, once per user
                pos = (mask.cumsum(1) - 1).clamp(min=0)                      # (B, T)
                logits, cache = run(input_ids, mask, pos, None)
                return logits.view(Bt, 1, -1), (cache, mask, pos[:, -1])
            cache, att, last = state                                          # (B*W, ...)
            new = self._code_ids[tokens[:, :, -1].reshape(-1)].unsqueeze(1)   # (B*W, 1)
            att = torch.cat([att, torch.ones(len(att), 1, dtype=att.dtype)], dim=1)
            last = last + 1
            logits, cache = run(new, att, last.unsqueeze(1), cache)
            return logits.view(Bt, W, -1), (cache, att, last)                 # (B, W, V)

        def reorder(state: Any, parent: torch.Tensor) -> Any:
            cache, att, last = state
            w_old = len(att) // parent.shape[0]
            flat = (torch.arange(parent.shape[0]).unsqueeze(1) * w_old + parent).reshape(-1)
            cache.reorder_cache(flat.to(dev))
            return cache, att[flat], last[flat]

        return constrained_beam_search(step, reorder, B, -1, self.sizes, self.offsets,
                                       self._table, self._leaf_item,
                                       beam_size or cfg.beam_size)

    def _score(self, histories: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        if self._tail is None:                 # out-of-beam items: after the beam, by popularity
            self._tail = popularity_tail(self.popularity)
        out = []
        step = self.config.score_batch
        for start in range(0, len(histories), step):
            items, scores = self.generate(histories[start:start + step])
            out.append(beam_scores(items, scores, self._tail))
        return torch.cat(out)

    # -- persistence: the code table and the trainable tensors, never the base weights ----
    def state_tensors(self) -> dict[str, torch.Tensor]:
        from ..lm import trainable_state

        out = super().state_tensors()
        out["codes"] = torch.from_numpy(self.codes)
        out["codebook_sizes"] = torch.tensor(self.sizes, dtype=torch.long)
        out.update({f"lm.{k}": v for k, v in trainable_state(self.lm).items()})
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        from ..lm import apply_lora, full_finetuning, load_trainable

        super().load_state_tensors(tensors)
        sizes = tuple(int(s) for s in tensors["codebook_sizes"])
        self._load_lm(tensors["codes"].numpy(), sizes)
        saved = self.fit_info.get("lm", {})
        if saved.get("sha256") and saved["sha256"] != self.lm.source.get("sha256"):
            raise ConfigError(f"this lcrec model was fine-tuned on {saved.get('path')} with "
                              f"SHA-256 {saved['sha256'][:12]}…, but that file has changed")
        if self.config.mode == "lora":
            apply_lora(self.lm, self.finetune_config().lora())
        else:
            full_finetuning(self.lm)
        load_trainable(self.lm, {k[3:]: v for k, v in tensors.items() if k.startswith("lm.")},
                       "lcrec model")
        self.lm.model.eval()
