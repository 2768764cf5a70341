"""What the LLM click models (TALLRec, RecLoRA) share: the config, preference prompts built
from a sample's history, the Yes/No answer, P(Yes) scoring, and the base LM (pretrained or,
for the control, the same architecture with random weights).

A prompt names only the items of the sample's ``hist_items`` row -- the user's events with a
timestamp strictly before the sample (:func:`~llmrec.ctr.history_index`) -- split into *liked*
(rating >= the template's ``like_threshold``) and *disliked*, plus the target item. The sample's
own rating, and anything after it, never reaches a prompt (tests/ctr/test_llm_ctr.py checks
every prompt of a run). The click probability is ``softmax(logit_Yes, logit_No)[Yes]`` at the
first answer position (TALLRec, Bao et al. 2023).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from ..config import added_option
from ..errors import ConfigError, DataError
from ..lm import (LM, TUNING_FIELDS, Example, LMTuning, PromptTemplate, load_lm,
                  load_prompt_template)
from ._data import CTRData

ANSWERS = ("Yes", "No")


@dataclass
class LLMCTRConfig(LMTuning):
    """Options of an LLM click model. The fine-tuning options (mode, lora_*, learning_rate,
    batch sizes, epochs, max_steps, max_time, threads) are :class:`~llmrec.lm.LMTuning`'s,
    with these defaults."""

    lm: str | None = None               # None: packaged SmolLM2-135M-Instruct; folder/.gguf/hub
    init: Literal["pretrained", "random"] = "pretrained"    # random: the control (same shape)
    template: str = "preference"        # packaged name or a .toml path
    scenario: str = "movie"
    mode: Literal["lora", "full"] = added_option("lora")
    lora_dropout: float = added_option(0.0)
    learning_rate: float = 5e-4
    max_seq_len: int = 320
    score_batch_size: int = 16
    save_every: int = 10                # fine-tuning checkpoint every N steps (with a run_dir)
    device: str | None = None
    seed: int = 0
    knowledge: bool = False             # LLM click models read titles, not knowledge vectors

    def __post_init__(self) -> None:
        self.check_tuning(type(self).__name__)
        if self.mode != "lora":
            raise ConfigError(f"mode must be 'lora' for LLM click models, not {self.mode!r}")
        if self.init not in ("pretrained", "random"):
            raise ConfigError(f"init must be 'pretrained' or 'random', not {self.init!r}")
        if self.knowledge:
            raise ConfigError("LLM click models take no knowledge vectors (knowledge = false)")
        if self.score_batch_size < 1:
            raise ConfigError("score_batch_size must be >= 1")

    def finetune_options(self) -> dict[str, Any]:
        """The :class:`~llmrec.lm.FinetuneConfig` options this config fixes."""
        return {**{n: getattr(self, n) for n in TUNING_FIELDS}, "max_seq_len": self.max_seq_len,
                "seed": self.seed, "save_every": self.save_every}


def base_lm(cfg: LLMCTRConfig) -> LM:
    """The base LM of ``cfg``: loaded, or (``init = "random"``) the same architecture and
    tokenizer with weights drawn afresh from ``cfg.seed`` (the pretraining control)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    lm = load_lm(cfg.lm, device=cfg.device)
    if cfg.init == "random":
        torch.manual_seed(cfg.seed)
        model = type(lm.model)(lm.model.config)          # the model's own random init
        lm.model = model.to(lm.device).eval()
        lm.source = {**lm.source, "init": "random", "init_seed": cfg.seed}
    return lm


def answer_ids(lm: LM) -> tuple[int, int]:
    """Token ids of "Yes" and "No" (their first piece) as the first answer token."""
    ids = []
    for word in ANSWERS:
        pieces = lm.tokenizer(word, add_special_tokens=False)["input_ids"]
        if not pieces:
            raise ConfigError(f"{lm.name}: the tokenizer gives no token for {word!r}")
        ids.append(int(pieces[0]))
    if ids[0] == ids[1]:
        raise ConfigError(f"{lm.name}: 'Yes' and 'No' start with the same token")
    return ids[0], ids[1]


def check_titles(data: CTRData, who: str) -> tuple[str, ...]:
    if data.item_titles is None or len(data.item_titles) != data.schema.n_items:
        raise DataError(f"{who} needs item titles in the CTR data (CTRData.item_titles, set by "
                        "build_ctr_data from the data set's title column)")
    return data.item_titles


def preference_prompt(template: PromptTemplate, titles: Sequence[str], hist_items: np.ndarray,
                      hist_ratings: np.ndarray, target: int, pad: int,
                      keep: np.ndarray | None = None) -> tuple[str, tuple[int, ...]]:
    """The user text of ``template`` for one sample and the item indices it names.

    ``hist_items``/``hist_ratings`` (H,): the sample's history row, oldest first, ``pad`` =
    padding. ``keep``: positions of the row to show (default: the last ``max_items`` real
    ones); they are shown in time order."""
    real = np.flatnonzero(hist_items != pad)
    if keep is None:
        keep = real[-int(template.param("max_items")):]
    else:
        keep = np.sort(np.intersect1d(np.asarray(keep, dtype=np.int64), real))
    threshold = float(template.param("like_threshold"))
    liked = [titles[int(hist_items[k])] for k in keep if hist_ratings[k] >= threshold]
    disliked = [titles[int(hist_items[k])] for k in keep if hist_ratings[k] < threshold]
    text = template.fill("user", {"liked": ", ".join(liked) or "nothing yet",
                                  "disliked": ", ".join(disliked) or "nothing yet",
                                  "target": titles[int(target)]})
    return text, tuple(int(hist_items[k]) for k in keep) + (int(target),)


def sample_examples(data: CTRData, template: PromptTemplate, scenario: str,
                    keep: Callable[[int], np.ndarray | None] | None = None,
                    with_answer: bool = True) -> list[Example]:
    """One :class:`~llmrec.lm.Example` per sample of ``data`` (answer Yes/No from the label;
    ``items`` = the history items the prompt names, then the target)."""
    titles = check_titles(data, "an LLM click model")
    system = template.fill("system", {"scenario": scenario})
    pad = data.schema.n_items
    out = []
    for k in range(len(data)):
        text, items = preference_prompt(template, titles, data.hist_items[k],
                                        data.hist_ratings[k], int(data.item[k]), pad,
                                        None if keep is None else keep(k))
        answer = template.fill("answer", {"label": ANSWERS[0 if data.label[k] > 0.5 else 1]}) \
            if with_answer else ""
        out.append(Example(text, answer, system, int(data.user[k]), items))
    return out


def load_template(cfg: LLMCTRConfig) -> PromptTemplate:
    template = load_prompt_template(cfg.template)
    template.param("max_items")
    template.param("like_threshold")
    return template


@torch.no_grad()
def yes_probability(lm: LM, examples: Sequence[Example], batch_size: int = 16,
                    before_batch: Callable[[np.ndarray], None] | None = None,
                    progress: bool = False) -> np.ndarray:
    """P("Yes") (n,) float64 for each example's chat prompt: softmax over the Yes and No
    logits of the first answer token. Prompts run ``batch_size`` at a time, shortest first,
    left-padded with explicit position ids (so a prompt scores the same in any batch);
    ``before_batch(indices)`` runs before each batch (RecLoRA sets its gate there)."""
    from tqdm import tqdm

    yes, no = answer_ids(lm)
    enc = [lm.tokenizer(lm.chat_text(ex.prompt, ex.system), add_special_tokens=False)
           ["input_ids"] for ex in examples]
    order = np.argsort([len(e) for e in enc], kind="stable")
    out = np.zeros(len(enc))
    lm.model.eval()
    pad = lm.tokenizer.pad_token_id or 0
    for start in tqdm(range(0, len(order), batch_size), desc="score", unit="batch",
                      disable=not progress, leave=False):
        idx = order[start:start + batch_size]
        width = max(len(enc[i]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)            # (B, T)
        mask = torch.zeros((len(idx), width), dtype=torch.long)               # (B, T)
        for r, i in enumerate(idx):
            ids[r, width - len(enc[i]):] = torch.tensor(enc[i])
            mask[r, width - len(enc[i]):] = 1
        pos = (mask.cumsum(1) - 1).clamp(min=0)                               # (B, T)
        if before_batch is not None:
            before_batch(idx)
        with lm.autocast():
            logits = lm.model(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device),
                              position_ids=pos.to(lm.device), logits_to_keep=1).logits
        two = logits[:, -1, [yes, no]].float()                                # (B, 2)
        out[idx] = torch.softmax(two, dim=-1)[:, 0].double().cpu().numpy()
    return out
