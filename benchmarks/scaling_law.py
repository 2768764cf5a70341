"""Performance law: NDCG@10 against model size and training-data size, SASRec and HSTU.

    python benchmarks/scaling_law.py --dataset ml-100k --models sasrec,hstu
    python benchmarks/scaling_law.py --dataset ml-100k --sizes 16,32,64,128 --fractions 0.25,0.5,1

Model size: ``embedding_size`` in --sizes (depth, heads and everything else from the frozen
config benchmarks/configs/DATASET/MODEL.toml), all training users. Data size: the training
sequences of a seeded random fraction of the users (--fractions) at the frozen size; the
validation and test cases stay those of ALL users (each user's history is still the input at
evaluation), so every point is scored on the same test set, full ranking, seen items masked.

Each point is one training run (early stopping on validation NDCG@10); finished points are kept
in results.json in --output and skipped when the command is run again (resume after a kill).
Fits, per model and axis, the power law ``NDCG@10 = a * x^b`` by least squares in log-log
space (x = trained parameters, or training interactions) and draws scaling.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from llmrec._io import atomic_write_text, llmrec_home, write_json
from llmrec._table import format_table
from llmrec.eval import evaluate
from llmrec.models import MODELS
from llmrec.runs import load_config, prepare

HERE = Path(__file__).parent


def train_point(model_name: str, dataset: str, size: int | None, fraction: float, seed: int,
                sets: list[str]) -> dict:
    config = HERE / "configs" / dataset / f"{model_name}.toml"
    extra = [f"model.seed={seed}"] + ([f"model.embedding_size={size}"] if size else [])
    cfg = load_config(config if config.exists() else None, model=model_name, dataset=dataset,
                      sets=[*sets, *extra])
    ds, split = prepare(cfg)
    train = split.train
    if fraction < 1:
        rng = np.random.default_rng(seed)
        users = rng.choice(train.n_users, size=max(1, round(fraction * train.n_users)),
                           replace=False)
        keep = np.zeros(train.n_users, dtype=bool)
        keep[users] = True
        train = train.select(keep[train.user])
    model = MODELS[cfg.model](cfg.model_config)
    t0 = time.perf_counter()
    model.fit(train, split.valid_cases(), progress=False, valid_mask=cfg.eval.mask)
    seconds = time.perf_counter() - t0
    test = evaluate(model, split.test_cases(), ks=(10,), mask=cfg.eval.mask)
    params = sum(p.numel() for p in model.module.parameters() if p.requires_grad)
    return {"model": model_name, "embedding_size": cfg.model_config.embedding_size,
            "fraction": fraction, "seed": seed, "params": int(params),
            "train_interactions": int(len(train)), "test_ndcg@10": test["ndcg@10"],
            "test_recall@10": test["recall@10"],
            "best_valid_ndcg@10": model.fit_info.get("best_valid_ndcg@10"),
            "best_epoch": model.fit_info.get("best_epoch"), "train_seconds": round(seconds, 1)}


def power_law(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(a, b, r2) of y = a * x^b fitted in log-log space."""
    lx, ly = np.log(x), np.log(y)
    b, la = np.polyfit(lx, ly, 1)
    pred = la + b * lx
    ss = ((ly - ly.mean()) ** 2).sum()
    r2 = 1 - ((ly - pred) ** 2).sum() / ss if ss > 0 else float("nan")
    return float(np.exp(la)), float(b), float(r2)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dataset", default="ml-100k")
    p.add_argument("--models", default="sasrec,hstu")
    p.add_argument("--sizes", default="16,32,64,128", help="embedding sizes (all users)")
    p.add_argument("--fractions", default="0.25,0.5,1", help="user fractions (frozen size)")
    p.add_argument("--seeds", default="42")
    p.add_argument("--set", dest="sets", action="append", default=[])
    p.add_argument("--output", help="default: $LLMREC_HOME/bench/scaling-DATASET")
    args = p.parse_args()
    out = Path(args.output) if args.output else llmrec_home() / "bench" / f"scaling-{args.dataset}"
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else []
    done = {(r["model"], r["axis"], r["size_key"], r["fraction"], r["seed"]) for r in results}
    sizes = [int(s) for s in args.sizes.split(",")]
    fractions = [float(f) for f in args.fractions.split(",")]
    points = []
    for model in args.models.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            points += [(model, "size", s, 1.0, seed) for s in sizes]
            points += [(model, "data", None, f, seed) for f in fractions if f < 1]
    for model, axis, size, fraction, seed in points:
        key = (model, axis, size or 0, fraction, seed)
        if key in done:
            continue
        t0 = time.perf_counter()
        record = {"axis": axis, "size_key": size or 0,
                  **train_point(model, args.dataset, size, fraction, seed, args.sets)}
        results.append(record)
        done.add(key)
        write_json(path, results)
        print(f"{model} {axis} size={size} fraction={fraction} seed={seed}: test ndcg@10 "
              f"{record['test_ndcg@10']:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    report(results, out, args)
    return 0


def report(results: list[dict], out: Path, args: argparse.Namespace) -> None:
    rows, fits = [], []
    for model in dict.fromkeys(r["model"] for r in results):
        mine = [r for r in results if r["model"] == model]
        full = [r for r in mine if r["axis"] == "size"]
        frozen_d = next((r["embedding_size"] for r in mine if r["axis"] == "data"), None)
        data = [r for r in mine if r["axis"] == "data"] + [
            r for r in full if r["embedding_size"] == frozen_d]
        for axis, pts, x_key in (("params", full, "params"),
                                 ("train interactions", data, "train_interactions")):
            if len(pts) < 2:
                continue
            x = np.array([r[x_key] for r in pts], float)
            y = np.array([r["test_ndcg@10"] for r in pts], float)
            a, b, r2 = power_law(x, y)
            fits.append({"model": model, "axis": axis, "a": a, "b": b, "r2": r2,
                         "points": [[float(u), float(v)] for u, v in sorted(zip(x, y))]})
        for r in sorted(mine, key=lambda r: (r["axis"], r["params"], r["fraction"])):
            rows.append([model, r["axis"], r["embedding_size"], f"{r['fraction']:.2f}",
                         r["params"], r["train_interactions"], f"{r['test_ndcg@10']:.4f}",
                         f"{r['test_recall@10']:.4f}", r["best_epoch"],
                         f"{r['train_seconds']:.0f}"])
    table = format_table(["model", "axis", "d", "users", "params", "train inter.",
                          "ndcg@10", "recall@10", "best epoch", "train s"], rows, markdown=True)
    fit_table = format_table(["model", "x", "a", "b (exponent)", "R²"],
                             [[f["model"], f["axis"], f"{f['a']:.4g}", f"{f['b']:+.4f}",
                               f"{f['r2']:.3f}"] for f in fits], markdown=True)
    write_json(out / "fits.json", fits)
    command = "python benchmarks/scaling_law.py " + " ".join(sys.argv[1:])
    atomic_write_text(out / "report.md", f"Command: `{command}`\n\n{table}\n\n"
                      f"Fitted NDCG@10 = a * x^b:\n\n{fit_table}\n")
    print(table)
    print()
    print(fit_table)
    plot(fits, out / "scaling.png")
    print(f"\n{out / 'report.md'}\n{out / 'scaling.png'}")


def plot(fits: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_names = list(dict.fromkeys(f["axis"] for f in fits))
    fig, axes = plt.subplots(1, max(1, len(axes_names)), figsize=(5 * len(axes_names), 4),
                             squeeze=False)
    for ax, name in zip(axes[0], axes_names):
        for f in (f for f in fits if f["axis"] == name):
            x, y = np.array(f["points"]).T
            line = ax.plot(x, y, "o", label=f"{f['model']} (b={f['b']:+.3f})")[0]
            grid = np.geomspace(x.min(), x.max(), 50)
            ax.plot(grid, f["a"] * grid ** f["b"], "-", color=line.get_color(), alpha=0.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(name)
        ax.set_ylabel("test NDCG@10")
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
