"""Time of the torch LLM layer on this machine: load (cached conversion), one LoRA step on
8 sequences of 96 tokens (r=8 on q/v, one micro-batch), and greedy generation.

    python benchmarks/lm_step.py [--threads 2] [--steps 3]

Prints one JSON line. The first run on a machine also converts the packaged GGUF (printed as
``load_seconds``; later runs read the cached conversion)."""

from __future__ import annotations

import argparse
import json
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from llmrec.lm import Example, FinetuneConfig, finetune, load_lm

    start = time.perf_counter()
    lm = load_lm()
    load = time.perf_counter() - start
    words = "the movie was a story about friends who travel far away to find home again".split()
    examples = []
    for k in range(8):       # 96 tokens each: ~88 prompt tokens, ~8 answer tokens
        text = " ".join(words[(k + j) % len(words)] for j in range(200))
        ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"][:88]
        examples.append(Example(lm.tokenizer.decode(ids), "Toy Story (1995)"))
    cfg = FinetuneConfig(batch_size=8, micro_batch_size=8, epochs=args.steps, chat=False,
                         max_seq_len=96, progress=False, log_every=1)
    result = finetune(lm, examples, cfg)
    steps = [b["seconds"] - a["seconds"] for a, b in zip(result.history, result.history[1:])]
    start = time.perf_counter()
    out = lm.generate(lm.chat_text("Name a movie about toys."), 32)
    gen = time.perf_counter() - start
    tokens = len(lm.tokenizer(out, add_special_tokens=False)["input_ids"])
    print(json.dumps({"threads": args.threads, "load_seconds": round(load, 2),
                      "step_seconds": [round(result.history[0]["seconds"], 2)]
                      + [round(s, 2) for s in steps],
                      "tokens_per_step": result.tokens // max(result.steps, 1),
                      "generate_tokens_per_s": round(tokens / gen, 1)}))


if __name__ == "__main__":
    main()
