"""``llmrec lm check [--lm PATH]``: load the torch LLM (the packaged GGUF, a Hugging Face
folder or a hub name), report what was loaded and a greedy answer to a prompt."""

from __future__ import annotations

import argparse

from .._table import format_table
from ._common import positive_int, print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lm", help="the torch LLM layer (fine-tuning base models)")
    verbs = p.add_subparsers(dest="verb", required=True)
    c = verbs.add_parser("check", help="load a causal LM into torch and answer one prompt")
    c.add_argument("--lm", default=None, metavar="PATH",
                   help="a Hugging Face model folder, a .gguf file or a hub name (org/model); "
                   "default: the packaged SmolLM2-135M-Instruct GGUF")
    c.add_argument("--prompt", default="Name three classic science-fiction movies.")
    c.add_argument("--max-new-tokens", type=positive_int, default=32)
    c.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if "
                   "available, else cpu)")
    c.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"])
    c.add_argument("--threads", type=positive_int, default=None, help="torch threads")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    import time

    import torch

    from ..lm import load_lm

    if args.threads:
        torch.set_num_threads(args.threads)
    lm = load_lm(args.lm, device=args.device, dtype=args.dtype)
    text = lm.chat_text(args.prompt)
    start = time.perf_counter()
    answer = lm.generate(text, args.max_new_tokens)
    seconds = time.perf_counter() - start
    out = {"model": lm.name, "source": lm.source, "parameters": lm.num_parameters(),
           "device": str(lm.device), "load_seconds": round(lm.load_seconds, 2),
           "prompt": args.prompt, "answer": answer, "generate_seconds": round(seconds, 2)}
    if args.json:
        print_json(out)
        return 0
    print(format_table(["", "value"], [
        ["model", lm.name], ["kind", str(lm.source["kind"])],
        ["parameters", f"{out['parameters'] / 1e6:.1f}M"], ["device", out["device"]],
        ["loaded in", f"{out['load_seconds']:.1f} s"],
        ["generated in", f"{seconds:.1f} s"]]))
    print(f"\n> {args.prompt}\n{answer.strip()}")
    return 0
