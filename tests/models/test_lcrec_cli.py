"""``llmrec train --model lcrec`` on a 20-user slice of ML-100K (titles from the item file,
all four tasks) with a tiny random Llama: the run folder holds the fine-tuning run and a small
saved model (adapter tensors and code table, no base weights), and ``evaluate`` and
``recommend`` work from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors import safe_open

from llmrec.cli import main
from llmrec.testing import tiny_tokenizer, write_tiny_lm
from llmrec.testing.slices import recbole_slice

pytestmark = pytest.mark.slow


def test_train_evaluate_recommend(ml100k, request, tmp_path: Path, capsys):
    data = recbole_slice(ml100k, tmp_path / "slice", 20, stem="lcrec")
    lm = write_tiny_lm(tmp_path / "lm", tiny_tokenizer(request.config.cache.mkdir("llmrec-lm")))
    run = tmp_path / "run"
    sets = ["model.lm=" + json.dumps(lm), "model.max_steps=3", "model.batch_size=4",
            "model.micro_batch_size=4", "model.id_codebook_size=16", "model.beam_size=10",
            "model.max_seq_len=5", "model.max_title_items=3", "model.ids=\"sequential\""]
    args = ["--quiet", "train", "--model", "lcrec", "--dataset", str(data), "--output",
            str(run)]
    assert main([*args, *[a for s in sets for a in ("--set", s)]]) == 0
    assert (run / "finetune" / "train_log.jsonl").exists()
    meta = json.loads((run / "finetune" / "run.json").read_text())
    assert meta["meta"]["templates"] == ["lcrec_seq@1", "lcrec_item2index@1",
                                         "lcrec_index2item@1", "lcrec_fusion@1"]
    with safe_open(run / "model" / "model.safetensors", "pt") as f:
        sizes = {n: f.get_slice(n).get_shape() for n in f.keys()}
    adapter = [n for n in sizes if n.startswith("lm.")]
    assert "codes" in sizes and adapter
    assert all("lora_" in n or "token" in n for n in adapter), adapter
    # LoRA r=8 on q/v of 2 layers + 3 x 16 code rows of width 32: no base weights saved
    assert sum(int(__import__("math").prod(sizes[n])) for n in adapter) < 10_000
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["test"]["ndcg@10"] <= 1
    capsys.readouterr()
    assert main(["--quiet", "recommend", str(run), "--user", "1", "-n", "5", "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert len(recs) == 5
