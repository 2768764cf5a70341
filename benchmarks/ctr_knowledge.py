"""KAR knowledge augmentation on ML-100K CTR: DeepFM, DCNv2 and DIN with and without
knowledge vectors, 3 seeds -- the script behind ``llmrec bench knowledge``.

Frozen configuration and expected figures (filled in from the run recorded below).

    python benchmarks/ctr_knowledge.py                      # = llmrec bench knowledge
    python benchmarks/ctr_knowledge.py --split chronological
    python benchmarks/ctr_knowledge.py --encoder hashing    # string-overlap lower bound
    python benchmarks/ctr_knowledge.py --models deepfm --option "knowledge_kinds=['item']" \
        --output /tmp/item-only                             # ablation: item knowledge only
"""

from __future__ import annotations

import argparse
import os
import tomllib

from llmrec.ctr._bench import KnowledgeBenchConfig, run_knowledge_bench, summary_table
from llmrec.ctr._data import CTRDataConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="deepfm,dcnv2,din")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--source", choices=["metadata", "knowledge"], default="metadata")
    p.add_argument("--encoder", choices=["minilm", "hashing"], default="minilm")
    p.add_argument("--split", choices=["user", "chronological"], default="user")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--output", help="report folder")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="model option for every run (TOML value), e.g. knowledge_kinds=['item']")
    args = p.parse_args()
    options = {}
    for item in args.option:
        key, _, value = item.partition("=")
        options[key.strip()] = tomllib.loads(f"v = {value}")["v"]
    cfg = KnowledgeBenchConfig(models=tuple(args.models.split(",")),
                               seeds=tuple(range(42, 42 + args.seeds)), source=args.source,
                               encoder=args.encoder, data=CTRDataConfig(split=args.split),
                               epochs=args.epochs, model_options=options)
    report = run_knowledge_bench(cfg, args.output, command="python benchmarks/ctr_knowledge.py")
    print(f"{report['title']} -- knowledge: {report['knowledge']['label']}")
    print(summary_table(report["summary"], report["knowledge"]["costs"], markdown=False))
    print(f"\nload average {os.getloadavg()[0]:.1f}; report: {'  '.join(report['paths'])}")


if __name__ == "__main__":
    main()
