"""A tiny randomly initialised causal LM with a real tokenizer, for fast tests of the LLM
recommenders (no download: the tokenizer comes from the cached conversion of the packaged
SmolLM2 GGUF, see :func:`llmrec.lm.load_lm`)."""

from __future__ import annotations

from pathlib import Path


def tiny_tokenizer(lm_cache: str | Path):
    """The packaged model's tokenizer, from ``lm_cache`` (a ``load_lm`` cache folder); the
    GGUF is converted there first if it never was."""
    from transformers import AutoTokenizer

    from ..lm import load_lm

    converted = sorted(Path(lm_cache).glob("gguf/*/tokenizer.json"))
    if converted:
        return AutoTokenizer.from_pretrained(converted[0].parent)
    return load_lm(cache_dir=lm_cache).tokenizer


def write_tiny_lm(out: str | Path, tokenizer, *, hidden: int = 32, layers: int = 2,
                  init_std: float = 0.02, seed: int = 0) -> str:
    """Save a Llama (``hidden`` wide, ``layers`` deep, 4 heads, tied embeddings) over
    ``tokenizer``'s vocabulary, randomly initialised with ``seed``, as a model folder.
    ``init_std`` is the weights' initial standard deviation (a larger one separates new
    tokens' rows, which start as means of their pieces, and so learns faster)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden,
                      intermediate_size=2 * hidden, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=1024, tie_word_embeddings=True,
                      initializer_range=init_std, bos_token_id=tokenizer.bos_token_id,
                      eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(seed)
    LlamaForCausalLM(cfg).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)
