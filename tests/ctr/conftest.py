"""Synthetic CTR data with known answers, and real ML-100K CTR samples."""

from __future__ import annotations

import numpy as np
import pytest

from llmrec.ctr import TEST, TRAIN, VALID, CTRData, CTRSchema


def synthetic_ctr(rule: str = "interaction", n_samples: int = 6000, n_users: int = 200,
                  n_items: int = 120, knowledge_dim: int = 8, seed: int = 0) -> CTRData:
    """Random (user, item) samples whose label a model can only get from a feature interaction.

    ``"interaction"``: users have attribute ``a`` in {1, 2}, items ``b`` in {1, 2}; click iff
    ``a == b`` -- no single feature predicts it (every user sees both kinds of items).
    Parts: a random 70/15/15 split of the samples.

    ``"knowledge"``: click iff the user's and the item's knowledge vectors point the same way
    (positive dot product); the last 30% of items appear only in valid/test (cold items), so
    ids and attributes cannot help -- only the knowledge vectors can.
    """
    rng = np.random.default_rng(seed)
    user = rng.integers(0, n_users, n_samples)
    item = rng.integers(0, n_items, n_samples)
    a = rng.integers(1, 3, n_users)
    b = rng.integers(1, 3, n_items)
    uk = rng.normal(size=(n_users, knowledge_dim)).astype(np.float32)
    ik = rng.normal(size=(n_items, knowledge_dim)).astype(np.float32)
    if rule == "interaction":
        label = (a[user] == b[item]).astype(np.float32)
        part = rng.choice([TRAIN, VALID, TEST], n_samples, p=[0.7, 0.15, 0.15]).astype(np.int8)
    else:
        label = ((uk[user] * ik[item]).sum(1) > 0).astype(np.float32)
        cold = item >= int(n_items * 0.7)
        part = np.where(cold, rng.choice([VALID, TEST], n_samples), TRAIN).astype(np.int8)
    H = 5
    hist_items = rng.integers(0, n_items, (n_samples, H))
    hist_len = rng.integers(0, H + 1, n_samples)
    pad = np.arange(H)[None, :] < (H - hist_len)[:, None]
    hist_items[pad] = n_items
    hist_ratings = np.where(pad, 0, rng.integers(1, 6, (n_samples, H)))
    schema = CTRSchema(n_users, n_items, {"a": 3}, {"b": 3}, n_genres=4, history_len=H)
    genres = rng.integers(0, 4, (n_items, 2))
    data = CTRData(schema, user.astype(np.int64), item.astype(np.int64), label,
                   np.arange(n_samples), hist_items.astype(np.int64),
                   hist_ratings.astype(np.int64), part, a[:, None].astype(np.int64),
                   b[:, None].astype(np.int64), genres.astype(np.int64))
    return data.with_knowledge(ik, uk) if rule == "knowledge" else data


@pytest.fixture(scope="session")
def interaction() -> CTRData:
    return synthetic_ctr("interaction")


@pytest.fixture(scope="session")
def knowledge() -> CTRData:
    return synthetic_ctr("knowledge", knowledge_dim=4)


@pytest.fixture(scope="session")
def ml100k_dataset(ml100k):
    from llmrec.data import load_dataset

    return load_dataset("ml-100k")


@pytest.fixture(scope="session")
def ml100k_ctr(ml100k_dataset):
    from llmrec.ctr import build_ctr_data

    return build_ctr_data(ml100k_dataset)


@pytest.fixture(scope="session")
def tiny_lm_dir(request: pytest.FixtureRequest, tmp_path_factory) -> str:
    """A tiny random causal LM (Llama, hidden 32, 2 layers) with the packaged SmolLM2
    tokenizer and chat template, saved as a Hugging Face folder: what LLM click models are
    tested with (no download; the tokenizer comes from the GGUF conversion cache, converted
    once if missing)."""
    from pathlib import Path

    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from llmrec.lm import load_lm

    cache = Path(request.config.cache.mkdir("llmrec-lm"))
    found = sorted(cache.glob("gguf/*/tokenizer.json"))
    if not found:
        load_lm(cache_dir=cache)
        found = sorted(cache.glob("gguf/*/tokenizer.json"))
    tok = AutoTokenizer.from_pretrained(found[0].parent)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=512, tie_word_embeddings=True,
                      initializer_range=0.5,   # 0.02 makes LoRA learn too slowly for a test
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    out = tmp_path_factory.mktemp("tiny-lm")
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def preference_ctr(n_samples: int = 600, n_users: int = 60, seed: int = 0,
                   shuffle: bool = False, rule: str = "target") -> CTRData:
    """Samples whose label follows a preference rule the prompt shows: items are "red N" or
    "blue N". ``rule="target"``: click iff the target is red (every user likes red);
    ``"user"``: each user likes one colour (history: liked items of it, disliked of the
    other) and clicks iff the target has it -- too hard for a tiny random LM under LoRA in a
    test's budget (AUC 0.45-0.68 in trials), so tests use ``"target"``. ``shuffle``: labels
    permuted (no signal)."""
    rng = np.random.default_rng(seed)
    n_items = 40
    colour = np.arange(n_items) % 2                                     # 0 red, 1 blue
    titles = tuple(f"{'red' if c == 0 else 'blue'} {k}" for k, c in enumerate(colour))
    likes = rng.integers(0, 2, n_users) if rule == "user" else np.zeros(n_users, np.int64)
    user = rng.integers(0, n_users, n_samples)
    item = rng.integers(0, n_items, n_samples)
    H = 4
    hist_items = rng.integers(0, n_items, (n_samples, H))
    hist_ratings = np.where(colour[hist_items] == likes[user][:, None], 5, 1)
    label = (colour[item] == likes[user]).astype(np.float32)
    if shuffle:
        label = rng.permutation(label)
    part = rng.choice([TRAIN, VALID, TEST], n_samples, p=[0.7, 0.1, 0.2]).astype(np.int8)
    schema = CTRSchema(n_users, n_items, {"a": 2}, {"b": 2}, n_genres=2, history_len=H)
    return CTRData(schema, user.astype(np.int64), item.astype(np.int64), label,
                   np.arange(n_samples), hist_items.astype(np.int64),
                   hist_ratings.astype(np.int64), part, np.ones((n_users, 1), np.int64),
                   np.ones((n_items, 1), np.int64), np.ones((n_items, 1), np.int64),
                   item_titles=titles)
