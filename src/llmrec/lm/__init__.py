"""The torch LLM layer: load a causal LM, add tokens, LoRA or full fine-tuning, prompts.

    >>> from llmrec.lm import FinetuneConfig, add_tokens, finetune, load_adapter, load_lm
    >>> lm = load_lm()                    # packaged SmolLM2-135M-Instruct GGUF -> torch (cached)
    >>> lm = load_lm("path/to/hf-folder") # any local causal LM; or a hub name "org/model"
    >>> ids = add_tokens(lm, ["<a_1>", "<a_2>"])          # new rows, trainable under LoRA
    >>> result = finetune(lm, examples, FinetuneConfig(max_steps=100), run_dir="runs/lm")
    >>> lm = load_adapter("runs/lm")      # base model + tokens + adapter, from the folder

``examples`` are :class:`Example` (prompt, answer) pairs; :func:`next_item_examples` builds
them from a :class:`~llmrec.knowledge.TrainHistory` (training data only) and a versioned
template (``templates/*.toml``). Needs the ``[lm]`` extra (transformers, peft, gguf), imported
only when a model is loaded.
"""

from ._adapt import (LoraOptions, add_tokens, apply_lora, full_finetuning, load_trainable,
                     new_token_ids, trainable_parameters, trainable_state)
from ._finetune import (TUNING_FIELDS, FinetuneConfig, FinetuneResult, LMTuning, answer_loss,
                        encode_example, finetune, load_adapter, lr_at, save_adapter,
                        step_examples)
from ._load import DTYPES, LM, load_lm, resolve_device
from ._prompts import (PACKAGED, Example, PromptTemplate, history_prompt, load_prompt_template,
                       next_item_examples, read_prompt_template, recommendation_prompts,
                       titles_prompt)

__all__ = [
    "DTYPES", "LM", "PACKAGED", "TUNING_FIELDS", "Example", "FinetuneConfig", "FinetuneResult",
    "LMTuning", "LoraOptions",
    "PromptTemplate", "add_tokens", "answer_loss", "apply_lora", "encode_example", "finetune",
    "full_finetuning", "history_prompt", "load_adapter", "load_lm", "load_prompt_template",
    "load_trainable", "lr_at", "new_token_ids", "next_item_examples", "read_prompt_template",
    "recommendation_prompts", "resolve_device", "save_adapter", "step_examples", "titles_prompt",
    "trainable_parameters", "trainable_state",
]
