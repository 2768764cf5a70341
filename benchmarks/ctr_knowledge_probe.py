"""Why does (or doesn't) knowledge lift CTR AUC? Linear probes on ML-100K CTR samples.

Each probe is a logistic regression trained on the training samples of the CTR split and
scored by test AUC (all samples, and the rare-item slice). Feature sets:

- ``item text`` / ``user text`` / ``both texts``: the knowledge vectors alone (the metadata
  stand-in: item metadata text, user profile text of the profile events).
- ``user profile mean rating``, ``item train CTR`` (target-encoded on the training samples,
  smoothed), ``both stats``: two scalars a recommender gets from IDs for free.
- ``stats + texts``: what the texts add on top of the two statistics.

If the texts alone beat chance but add nothing on top of the statistics the ID embeddings
already learn, the backbones cannot be expected to gain from them.

    python benchmarks/ctr_knowledge_probe.py [--encoder minilm|hashing] [--split user]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from llmrec._table import format_table
from llmrec.ctr import CTRDataConfig, auc, build_ctr_data
from llmrec.ctr import knowledge_tables
from llmrec.data import load_dataset
from llmrec.encode import ENCODERS


def probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
          steps: int = 300, weight_decay: float = 1e-4) -> np.ndarray:
    """Logistic regression (Adam, full batch, standardised inputs): test scores."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    xt = torch.from_numpy(((x_train - mu) / sd).astype(np.float32))
    xs = torch.from_numpy(((x_test - mu) / sd).astype(np.float32))
    y = torch.from_numpy(y_train.astype(np.float32))
    torch.manual_seed(0)
    lin = torch.nn.Linear(xt.shape[1], 1)
    opt = torch.optim.Adam(lin.parameters(), lr=0.05, weight_decay=weight_decay)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(lin(xt).squeeze(-1), y).backward()
        opt.step()
    with torch.no_grad():
        return lin(xs).squeeze(-1).numpy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--encoder", choices=["minilm", "hashing"], default="minilm")
    p.add_argument("--split", choices=["user", "chronological"], default="user")
    p.add_argument("--rare-items", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(1)
    ds = load_dataset("ml-100k")
    data = build_ctr_data(ds, CTRDataConfig(split=args.split))
    tables = knowledge_tables(ds, data, "metadata", ENCODERS[args.encoder](), progress=False)
    train, test = data.train, data.test
    # two statistics: the user's mean profile rating, the item's smoothed training CTR
    prof = data.profile
    mean_rating = np.bincount(prof.user, prof.rating, data.schema.n_users) \
        / np.maximum(np.bincount(prof.user, minlength=data.schema.n_users), 1)
    clicks = np.bincount(train.item, train.label, data.schema.n_items)
    shows = np.bincount(train.item, minlength=data.schema.n_items)
    prior = train.label.mean()
    item_ctr = (clicks + 10 * prior) / (shows + 10)

    def feats(d, names):
        cols = {"item text": tables.item[d.item], "user text": tables.user[d.user],
                "user profile mean rating": mean_rating[d.user][:, None],
                "item train CTR": item_ctr[d.item][:, None]}
        return np.concatenate([cols[n] for n in names], axis=1)

    sets = {"item text": ["item text"], "user text": ["user text"],
            "both texts": ["item text", "user text"],
            "user profile mean rating": ["user profile mean rating"],
            "item train CTR": ["item train CTR"],
            "both stats": ["user profile mean rating", "item train CTR"],
            "stats + texts": ["user profile mean rating", "item train CTR", "item text",
                              "user text"]}
    rare = shows[test.item] < args.rare_items
    rows = []
    for name, cols in sets.items():
        s = probe(feats(train, cols), train.label, feats(test, cols))
        rows.append([name, sum(feats(test.take(np.arange(1)), cols).shape[1:]),
                     auc(test.label, s), auc(test.label[rare], s[rare])])
    print(f"linear probes, ML-100K CTR split {args.split!r}, encoder {args.encoder}: "
          f"{len(train):,} train / {len(test):,} test samples ({int(rare.sum())} rare-item)")
    print(format_table(["features", "dims", "test AUC", "rare-item AUC"], rows))


if __name__ == "__main__":
    main()
