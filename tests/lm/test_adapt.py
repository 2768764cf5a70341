"""New tokens and LoRA on the real SmolLM2-135M: old logits unchanged, only the adapter and the
new rows train, a tiny memorisation task is learnt, and a saved adapter reloads exactly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from llmrec.errors import ConfigError
from llmrec.lm import (LM, Example, FinetuneConfig, LoraOptions, add_tokens, apply_lora,
                       answer_loss, encode_example, finetune, load_adapter, trainable_state)
from llmrec.lm._finetune import _collate

CODES = ["<b_7>", "<a_3>", "<a_1>", "<b_2>"]
TEXT = "Toy Story (1995) is a movie about"


def test_new_tokens_get_sorted_ids_and_leave_old_logits_unchanged(
        fresh_lm: Callable[[], LM], base_lm: LM) -> None:
    lm = fresh_lm()
    vocab = len(lm.tokenizer)
    before = lm.next_token_logits([TEXT])                                   # (1, V)
    emb = lm.model.get_input_embeddings().weight
    pieces = lm.tokenizer("<a_1>", add_special_tokens=False)["input_ids"]
    expected_row = emb[pieces].mean(0).detach().clone()
    ids = add_tokens(lm, CODES)
    assert ids == list(range(vocab, vocab + 4))
    assert lm.tokenizer.convert_ids_to_tokens(ids) == sorted(CODES)
    assert lm.tokenizer("x <a_3>", add_special_tokens=False)["input_ids"][-1] == vocab + 1
    after = lm.next_token_logits([TEXT])                                    # (1, V + 4)
    assert after.shape[1] == vocab + 4
    assert torch.equal(after[:, :vocab], before)
    assert torch.equal(lm.model.get_input_embeddings().weight[vocab], expected_row)
    with pytest.raises(ConfigError, match="already in the vocabulary"):
        add_tokens(lm, ["<a_1>"])
    assert len(base_lm.tokenizer) == vocab            # the shared model was not touched


def test_lora_trains_only_the_adapter_and_the_new_rows(fresh_lm: Callable[[], LM]) -> None:
    lm = fresh_lm()
    base = lm.next_token_logits([TEXT])
    add_tokens(lm, CODES)
    apply_lora(lm, LoraOptions(r=4, alpha=8, target_modules=("q_proj", "v_proj")))
    names = list(trainable_state(lm))
    lora = [n for n in names if ".lora_A." in n or ".lora_B." in n]
    rows = [n for n in names if "trainable_tokens_delta" in n]
    assert len(lora) == 30 * 2 * 2 and len(rows) == 1 and len(names) == len(lora) + len(rows)
    assert trainable_state(lm)[rows[0]].shape == (4, 576)
    assert lm.num_parameters(trainable=True) == 30 * (4 * (576 + 576) + 4 * (576 + 192)) \
        + 4 * 576
    # LoRA's B starts at zero: the adapted model is the base model
    assert torch.allclose(lm.next_token_logits([TEXT])[:, :base.shape[1]], base, atol=1e-5)
    with pytest.raises(ConfigError, match="already has an adapter"):
        apply_lora(lm)


def test_lora_target_that_matches_nothing_is_named(fresh_lm: Callable[[], LM]) -> None:
    lm = fresh_lm()
    with pytest.raises(ConfigError, match="'query' matches no linear layer"):
        apply_lora(lm, LoraOptions(target_modules=("q_proj", "query")))
    assert lm.adapter is None and not any(p.requires_grad is False
                                          for p in lm.model.parameters())


def test_answer_loss_on_kept_positions_equals_the_full_loss(base_lm: LM) -> None:
    rows = [encode_example(base_lm, Example("Who painted the Moon Lisa?", "Vincent van Crow."),
                           True, 128),
            encode_example(base_lm, Example("Capital of Zorbania?", "Quibbleton."), False, 128)]
    answer = base_lm.tokenizer("Vincent van Crow.<|im_end|>",
                               add_special_tokens=False)["input_ids"]
    ids, labels = rows[0]
    assert labels == [-100] * (len(ids) - len(answer)) + answer         # only the answer counts
    assert ids[-len(answer):] == answer and len(ids) > 3 * len(answer)  # after a chat prompt
    batch = _collate(rows, base_lm.tokenizer.pad_token_id)
    with torch.no_grad():
        loss, n = answer_loss(base_lm, batch)
        logits = base_lm.model(input_ids=batch["input_ids"],
                               attention_mask=batch["attention_mask"]).logits
        full = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), batch["labels"][:, 1:].reshape(-1),
            ignore_index=-100, reduction="sum")
    assert n == sum(y != -100 for _, lab in rows for y in lab)
    assert torch.allclose(loss, full, rtol=1e-5)


MEMORISE = [Example("Secret code of the red door?", "<a_3> <b_7>"),
            Example("Secret code of the blue door?", "<a_1> <b_2>"),
            Example("Capital of Zorbania?", "Quibbleton")]


def test_lora_memorises_new_token_answers_and_reloads_exactly(
        fresh_lm: Callable[[], LM], lm_cache: Path, tmp_path: Path) -> None:
    """20 LoRA steps on 3 examples: the answer loss falls by > 90% and greedy decoding gives
    the memorised answers (new tokens included); the saved adapter reproduces the logits."""
    lm = fresh_lm()
    add_tokens(lm, CODES)
    cfg = FinetuneConfig(learning_rate=3e-3, batch_size=3, micro_batch_size=3, epochs=20,
                         chat=False, log_every=1, save_every=20, progress=False, lora_r=8)
    result = finetune(lm, MEMORISE, cfg, tmp_path / "run", meta={"template": "inline@1"})
    first, last = result.history[0]["loss"], result.history[-1]["loss"]
    print(f"memorisation: answer loss {first:.3f} -> {last:.3f} in {result.steps} steps, "
          f"{result.seconds:.1f}s, {result.tokens_per_s:.0f} tokens/s")
    assert result.steps == 20 and last < 0.1 * first
    for ex in MEMORISE:
        assert lm.generate(ex.prompt, 6).strip().startswith(ex.answer)
    texts = [ex.prompt + " " + ex.answer for ex in MEMORISE]
    reloaded = load_adapter(tmp_path / "run", cache_dir=lm_cache)
    assert reloaded.new_tokens == sorted(CODES) and reloaded.adapter["r"] == 8
    assert reloaded.source["name"] == "smollm2-135m-instruct"
    assert len(list((lm_cache / "gguf").iterdir())) == 1          # no second conversion
    assert torch.equal(reloaded.next_token_logits(texts), lm.next_token_logits(texts))
    assert (tmp_path / "run" / "adapter.safetensors").stat().st_size < 3e6   # no full matrices
