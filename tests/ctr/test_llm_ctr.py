"""LLM click models (TALLRec, RecLoRA) on a tiny random Llama with the SmolLM2 tokenizer:
prompts hold only earlier history, a preference rule is learnt (shuffled labels are not),
RecLoRA's gate gives users different effective weights, save/load predicts identically."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmrec.ctr import (GatedLoRALinear, RecLoRA, TALLRec, auc, load_ctr_model,
                        sample_examples)
from llmrec.errors import ConfigError, DataError
from llmrec.lm import load_prompt_template

from .conftest import preference_ctr

FAST = dict(learning_rate=1e-2, batch_size=8, micro_batch_size=8, lora_r=4, threads=1,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                            "down_proj"])


def test_prompts_name_only_events_before_the_sample(ml100k_dataset, ml100k_ctr):
    """Every history item a prompt names was rated by that user strictly before the sample;
    liked/disliked follow the history's ratings; the sample's own label is never shown."""
    data = ml100k_ctr.take(np.random.default_rng(0).choice(len(ml100k_ctr), 400, replace=False))
    inter = ml100k_dataset.interactions
    when = {(int(u), int(i)): float(t) for u, i, t in zip(inter.user, inter.item, inter.timestamp)}
    template = load_prompt_template("preference")
    examples = sample_examples(data, template, "movie")
    named = 0
    for k, ex in enumerate(examples):
        *hist, target = ex.items
        assert target == data.item[k] and ex.user == data.user[k]
        for item in hist:
            assert when[(ex.user, item)] < data.timestamp[k]
            named += 1
        real = data.hist_items[k][data.hist_items[k] != data.schema.n_items]
        assert list(hist) == real[-10:].tolist()
        liked = {data.item_titles[i] for i, r in zip(data.hist_items[k], data.hist_ratings[k])
                 if i != data.schema.n_items and r >= 4}
        line = ex.prompt.splitlines()[0]
        assert all(t in line for t in liked if t in {data.item_titles[i] for i in hist})
        assert ex.answer == ("Yes" if data.label[k] else "No")
    assert named > 1000


def test_models_refuse_data_without_titles(tiny_lm_dir):
    from dataclasses import replace

    data = replace(preference_ctr(50), item_titles=None)
    with pytest.raises(DataError, match="item titles"):
        TALLRec(lm=tiny_lm_dir).fit(data.train, progress=False)
    with pytest.raises(ConfigError, match="init"):
        TALLRec(init="zeros")


@pytest.fixture(scope="module")
def learned(tiny_lm_dir):
    data = preference_ctr(300)
    model = TALLRec(lm=tiny_lm_dir, epochs=3, **FAST).fit(data.train, progress=False)
    return data, model


def test_tallrec_learns_a_preference_rule(learned):
    data, model = learned
    assert auc(data.test.label, model.predict(data.test)) > 0.8


def test_tallrec_shuffled_labels_stay_near_chance(tiny_lm_dir):
    data = preference_ctr(300, shuffle=True)
    model = TALLRec(lm=tiny_lm_dir, epochs=2, **FAST).fit(data.train, progress=False)
    assert abs(auc(data.test.label, model.predict(data.test)) - 0.5) < 0.12


def test_tallrec_save_load_and_batching_predict_identically(learned, tmp_path):
    data, model = learned
    test = data.test.take(np.arange(30))
    p = model.predict(test)
    np.testing.assert_allclose(model.predict(test, batch_size=1), p, atol=1e-5)
    model.save(tmp_path / "m")
    np.testing.assert_allclose(load_ctr_model(tmp_path / "m").predict(test), p, atol=1e-6)


def test_random_init_control_has_other_weights(tiny_lm_dir):
    data = preference_ctr(40)
    a = TALLRec(lm=tiny_lm_dir).build(data.schema).lm.model
    b = TALLRec(lm=tiny_lm_dir, init="random", seed=3).build(data.schema).lm.model
    wa = a.get_input_embeddings().weight
    wb = b.get_input_embeddings().weight
    assert wa.shape == wb.shape and not torch.allclose(wa, wb)


def test_reclora_gate_mixes_per_user_and_round_trips(tiny_lm_dir, tmp_path):
    data = preference_ctr(120)
    model = RecLoRA(lm=tiny_lm_dir, epochs=1, num_experts=3, similar=2, recent=1,
                    **FAST).fit(data.train, progress=False)
    test = data.test.take(np.arange(24))
    users = model.user_vectors(test)
    g = model.gate_weights(users).detach()                                    # (B, K)
    assert torch.allclose(g.sum(1), torch.ones(len(g)))
    layer = next(m for m in model.lm.model.modules() if isinstance(m, GatedLoRALinear))
    a, b = g.argmax(0)[0], g.argmin(0)[0]          # the samples leaning most / least on 0
    wa, wb = layer.delta_weight(g[a]), layer.delta_weight(g[b])
    assert wa.norm() > 0 and (wa - wb).norm() / wa.norm() > 1e-3
    # retrieval: the `recent` latest history items are always shown
    keep = model.retrieve(test, 0)
    real = np.flatnonzero(test.hist_items[0] != test.schema.n_items)
    assert real[-1] in keep and len(keep) <= 3
    p = model.predict(test)
    model.save(tmp_path / "r")
    np.testing.assert_allclose(load_ctr_model(tmp_path / "r").predict(test), p, atol=1e-6)


@pytest.mark.parametrize("args, message", [
    (["--models", "din,gpt"], "unknown few-shot model 'gpt'"),
    (["--sizes", "64,many"], "--sizes must be comma-separated integers"),
])
def test_bench_fewshot_bad_input_gives_one_line(args, message, tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "llmrec", "bench", "fewshot", *args,
                           "--output", str(tmp_path)], capture_output=True, text=True)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1 and message in lines[0], proc.stderr
