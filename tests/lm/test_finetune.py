"""The fine-tuning loop: gradient accumulation equals one big batch, a killed run resumes to
the same tensors as an uninterrupted one, the schedule and the data order are as documented."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from llmrec.errors import ConfigError
from llmrec.lm import (LM, Example, FinetuneConfig, finetune, lr_at, step_examples,
                       trainable_parameters, trainable_state)

DATA = [Example("Red door code?", "<a_3>"), Example("Blue door code?", "<a_1>"),
        Example("Capital of Zorbania?", "Quibbleton"), Example("Moon Lisa painter?", "Crow")]


class Killed(Exception):
    pass


def test_warmup_then_cosine_schedule() -> None:
    cfg = FinetuneConfig(learning_rate=1e-3, min_learning_rate=1e-4, warmup_steps=2)
    assert [lr_at(cfg, s, 10) for s in (0, 1)] == [5e-4, 1e-3]
    assert lr_at(cfg, 2, 10) == pytest.approx(1e-3)
    assert lr_at(cfg, 6, 10) == pytest.approx(1e-4 + 0.9e-3 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert lr_at(cfg, 10, 10) == pytest.approx(1e-4)
    with pytest.raises(ConfigError, match="not a multiple"):
        FinetuneConfig(batch_size=6, micro_batch_size=4)


def test_each_epoch_sees_every_example_once_in_a_seeded_order() -> None:
    cfg = FinetuneConfig(batch_size=4, seed=7)
    epochs = [np.concatenate([step_examples(10, e * 3 + i, cfg) for i in range(3)])
              for e in range(2)]
    assert all(sorted(e.tolist()) == list(range(10)) for e in epochs)
    assert epochs[0].tolist() != epochs[1].tolist()
    assert step_examples(10, 4, cfg).tolist() == step_examples(10, 4, cfg).tolist()


def test_gradient_accumulation_equals_one_big_batch(fresh_lm: Callable[[], LM]) -> None:
    """One step of 4 examples as 1 micro-batch of 4 or 2 of 2: the same gradient (the loss is
    the mean over all answer tokens of the step, not a mean of micro-batch means)."""
    grads = []
    for micro in (4, 2):
        lm = fresh_lm()
        cfg = FinetuneConfig(batch_size=4, micro_batch_size=micro, max_steps=1, chat=False,
                             learning_rate=1e-3, progress=False, lora_r=4)
        finetune(lm, DATA, cfg)
        grads.append({n: p.grad.clone() for n, p in trainable_parameters(lm)})
    assert grads[0].keys() == grads[1].keys()
    assert max(float(g.abs().max()) for g in grads[0].values()) > 1e-3    # a real gradient
    for k in grads[0]:
        torch.testing.assert_close(grads[0][k], grads[1][k], rtol=1e-4, atol=1e-7)


def test_a_killed_run_resumes_to_the_uninterrupted_result(fresh_lm: Callable[[], LM],
                                                          tmp_path: Path) -> None:
    """4 steps over 2 epochs with LoRA dropout (so the RNG state matters): killed after step
    2 and resumed, the trainable tensors and the log equal an uninterrupted run's."""
    cfg = FinetuneConfig(batch_size=2, micro_batch_size=1, epochs=2, chat=False,
                         learning_rate=1e-3, warmup_steps=1, lora_r=4, lora_dropout=0.1,
                         save_every=1, log_every=1, progress=False)
    whole = fresh_lm()
    done = finetune(whole, DATA, cfg, tmp_path / "whole")
    assert done.steps == 4 and done.resumed_from is None

    def kill(step: int, record: dict) -> None:
        if step == 2:
            raise Killed
    with pytest.raises(Killed):
        finetune(fresh_lm(), DATA, cfg, tmp_path / "cut", on_step=kill)
    resumed_lm = fresh_lm()
    resumed = finetune(resumed_lm, DATA, cfg, tmp_path / "cut")
    assert resumed.resumed_from == 2 and resumed.steps == 4
    a, b = trainable_state(whole), trainable_state(resumed_lm)
    assert all(torch.equal(a[k], b[k]) for k in a)
    logs = [[json.loads(x)["loss"] for x in (tmp_path / d / "train_log.jsonl").read_text()
             .splitlines()] for d in ("whole", "cut")]
    assert len(logs[0]) == 4 and logs[0] == logs[1]
    # the same folder with other settings is refused, not silently mixed
    with pytest.raises(ConfigError, match="another model, data or configuration"):
        finetune(resumed_lm, DATA, FinetuneConfig(**{**cfg.__dict__, "learning_rate": 2e-3}),
                 tmp_path / "cut")
    # max_time stops at a step boundary with a checkpoint
    stopped = finetune(resumed_lm, DATA, FinetuneConfig(**{**cfg.__dict__, "max_time": 1e-9}),
                       tmp_path / "timed")
    assert stopped.stopped == "max_time" and stopped.steps == 0
    assert (tmp_path / "timed" / "checkpoint.safetensors").is_file()
