"""TALLRec: an Effective and Efficient Tuning Framework to Align Large Language Model with
Recommendation (Bao et al., RecSys 2023).

A causal LM reads the user's liked and disliked history titles and a target title and answers
"Yes" or "No" (template ``preference@1``); LoRA (peft, through :func:`llmrec.lm.finetune`) is
trained with the loss on the answer tokens only; the click probability is the softmax of the
Yes/No logits at the first answer token. As a CTR model it has the contract of
:class:`~llmrec.ctr.CTRModel` (fit / predict / validate / save / :func:`load_ctr_model`).

Deviations from the paper:

- the base model is SmolLM2-135M-Instruct (the packaged GGUF), not LLaMA-7B; any local Hugging
  Face folder works through ``lm``;
- no Alpaca instruction-tuning stage ("alpaca tuning") before "rec-tuning": the packaged model
  is already instruction tuned;
- few epochs (1 by default; the paper trains up to 200 epochs on 64 samples) because a sample
  costs ~0.3 s on 2 CPU cores;
- the history is the sample's CTR history row (the last ``history_len`` events strictly before
  the sample, liked = rating >= 4), at most the template's ``max_items`` (10) of them; the
  paper uses the last 10 rated items of ML-1M/BookCrossing in the same liked/disliked form;
- ``init = "random"`` gives the control asked for in issue 19 (same architecture, random
  weights, same LoRA): what pretraining brings.

Validation is not used for early stopping (one pass over a few samples); ``fit_info`` records
training loss and time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch

from .._io import write_json
from .._saved import read_safetensors
from ..config import to_dict
from ..errors import ConfigError
from ..lm import (FinetuneConfig, LoraOptions, apply_lora, finetune, load_trainable,
                  save_adapter)
from ._base import CTRModel
from ._data import CTRData, CTRSchema
from ._llm import (LLMCTRConfig, base_lm, check_titles, load_template, sample_examples,
                   yes_probability)


@dataclass
class TALLRecConfig(LLMCTRConfig):
    """TALLRec has exactly the shared LLM click-model options."""


class TALLRec(CTRModel):
    name = "tallrec"
    config_class = TALLRecConfig

    def __init__(self, config: LLMCTRConfig | dict[str, Any] | None = None, **options: Any):
        super().__init__(config, **options)
        self.lm = None
        self.template = load_template(self.config)

    def _build(self, schema: CTRSchema):                    # the LLM is not a CTRModule
        raise ConfigError("tallrec has no CTR network; use fit() or load_ctr_model()")

    def build(self, schema: CTRSchema) -> Self:
        self.schema = schema
        self.lm = base_lm(self.config)
        torch.manual_seed(self.config.seed)               # LoRA's initial A
        apply_lora(self.lm, self._lora())
        return self

    def _lora(self) -> LoraOptions:
        return LoraOptions(self.config.lora_r, self.config.lora_alpha, self.config.lora_dropout,
                           self.config.target_modules)

    def examples(self, data: CTRData, with_answer: bool = True):
        return sample_examples(data, self.template, self.config.scenario,
                               with_answer=with_answer)

    def fit(self, train: CTRData, valid: CTRData | None = None, *,
            run_dir: Path | None = None, progress: bool = True) -> Self:
        """LoRA fine-tuning on ``train``'s samples (resumable in ``run_dir``/finetune)."""
        if len(train) == 0:
            raise ConfigError("cannot fit on zero training samples")
        check_titles(train, self.name)
        self.build(train.schema)
        t0 = time.perf_counter()
        cfg = FinetuneConfig(**self.config.finetune_options(), progress=progress)
        result = finetune(self.lm, self.examples(train), cfg,
                          None if run_dir is None else Path(run_dir) / "finetune",
                          meta={"template": self.template.ref, "model": self.name,
                                "init": self.config.init})
        self.fit_info = {"training_samples": len(train), "steps": result.steps,
                         "final_loss": result.loss, "stopped": result.stopped,
                         "train_seconds": round(time.perf_counter() - t0, 1),
                         "tokens_per_s": round(result.tokens_per_s, 1)}
        if valid is not None and len(valid):
            self.fit_info["valid"] = self.validate(valid)
        return self

    def predict(self, data: CTRData, batch_size: int | None = None,
                progress: bool = False) -> np.ndarray:
        if self.lm is None:
            raise RuntimeError(f"{self.name} is not fitted")
        check_titles(data, self.name)
        return yes_probability(self.lm, self.examples(data, with_answer=False),
                               batch_size or self.config.score_batch_size, progress=progress)

    def save(self, folder: str | Path) -> Path:
        if self.lm is None or self.schema is None:
            raise RuntimeError(f"{self.name} is not fitted")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_adapter(self.lm, folder, {"template": self.template.ref})
        write_json(folder / "model.json", {"name": self.name, "config": to_dict(self.config),
                                           "schema": self.schema.to_dict(),
                                           "fit_info": self.fit_info})
        return folder

    @classmethod
    def load_folder(cls, folder: Path, meta: dict[str, Any]) -> TALLRec:
        """Rebuild from :meth:`save`'s folder: the base LM (re-drawn for ``init = "random"``
        from the same seed), the LoRA shape, then the trained tensors."""
        model = cls(meta["config"])
        model.fit_info = meta.get("fit_info", {})
        model.build(CTRSchema(**meta["schema"]))
        tensors, _ = read_safetensors(folder / "adapter.safetensors",
                                      f"the model in {folder} is damaged; fit again")
        load_trainable(model.lm, tensors, str(folder / "adapter.safetensors"))
        model.lm.model.eval()
        return model
