"""LC-Rec learns a sequence it is shown: on chains where the next item is determined by the
last one, a tiny random Llama fine-tuned on the ``seq`` task ranks the true next item first far
more often than chance (and than the same model before fine-tuning)."""

from __future__ import annotations

import numpy as np
import pytest

from llmrec.data import leave_one_out
from llmrec.models import LCRec
from llmrec.testing import chain_interactions, tiny_tokenizer, write_tiny_lm

pytestmark = pytest.mark.slow


def test_lcrec_learns_deterministic_chains(request, tmp_path):
    lm = write_tiny_lm(tmp_path / "lm", tiny_tokenizer(request.config.cache.mkdir("llmrec-lm")),
                       init_std=0.3)
    split = leave_one_out(chain_interactions(n_chains=2, chain_len=6, n_users=60, steps=6))
    opts = dict(lm=lm, tasks=["seq"], ids="random", id_levels=2, id_codebook_size=4,
                beam_size=6, samples_per_user=8, epochs=20, batch_size=16, micro_batch_size=16,
                learning_rate=1e-2, mode="full", chat=False, max_seq_len=1, warmup_steps=5)
    cases = split.test_cases()
    histories = [cases.history(k) for k in range(len(cases))]

    def top1(model: LCRec) -> float:
        return float(np.mean([model.recommend(h, 1).items[0] == cases.target_items[k]
                              for k, h in enumerate(histories)]))

    untrained = top1(LCRec(**{**opts, "max_steps": 1, "learning_rate": 1e-9}).fit(
        split.train, progress=False))
    trained = top1(LCRec(**opts, max_steps=200).fit(split.train, progress=False))
    # 5 of 6 chain items are in a test history, 12 - 5 = 7 candidates: chance is 1/7
    assert trained >= 0.35 and trained >= untrained + 0.2, (trained, untrained)
