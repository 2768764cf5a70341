"""Run folders: train a configured model on a configured split, evaluate it, keep everything.

A run is fully determined by its resolved config (data, model, evaluation); its folder is named
by the config's SHA-256 (default ``$LLMREC_HOME/runs/MODEL-DATASET-HASH``) and holds::

    config.toml          the resolved config (every default written out)
    run.json             config hash, data fingerprint, split sizes, versions, status
    train_log.jsonl      one line per epoch;  log.jsonl: every log record of the run
    checkpoint.safetensors / best.safetensors   resumable training state (no pickle)
    model/               the trained model (model.json + model.safetensors)
    metrics.json         {"valid": {...}, "test": {...}, "test_unmasked": {...},
                          "split_hash": ..., "train_seconds": ..., "best_epoch": ..., ...};
                         each part holds accuracy (ndcg@K, recall@K, hit@K, mrr@K) and
                         beyond-accuracy metrics (coverage@K, gini@K, novelty@K, arp@K, ild@K,
                         ild_vec@K; see :mod:`llmrec.eval`)
    metrics.md           the same as a table
    per_user/            per-user metrics of every part (Parquet, raw user ids) for paired
                         significance tests (`llmrec compare`); see :mod:`llmrec.eval._per_user`

Training the same config again is a cache hit; an interrupted run resumes from its checkpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import platform
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from . import __version__
from ._io import (atomic_write_text, content_hash, corrupt_file, llmrec_home, read_json_file,
                  write_json)
from ._log import log_to
from ._saved import run_fix
from ._table import format_table
from .config import (added_option, dumps_toml, from_dict, read_toml, require_fraction,
                     require_positive, to_dict)
from .data import REGISTRY, Dataset, Preprocessing, Split, load_dataset, make_split
from .errors import ConfigError, CorruptFileError, DataError, LlmrecError, UnknownUserError
from .eval import BEYOND, DEFAULT_KS, Catalogue, evaluate, write_per_user
from .models import MODELS, Recommender, load_model
from .train import ModelConfig, barrier, init_from_env, is_main

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    """Which data, how it is preprocessed and split (see :class:`~llmrec.data.Preprocessing`)."""

    dataset: str = "ml-100k"
    format: str = "auto"
    columns: dict[str, str] = field(default_factory=dict)   # column mapping for CSV/Parquet
    min_rating: float | None = None
    dedup: Literal["first", "last", "none"] = "first"
    user_core: int = 5
    item_core: int = 5
    split: Literal["leave_one_out", "temporal"] = "leave_one_out"
    valid_fraction: float = 0.1     # temporal split only
    test_fraction: float = 0.1      # temporal split only
    ties: Literal["file", "random"] = added_option("file")
    # how a CSV/TSV file is read (llmrec.data.formats.tabular) and its item/user side files
    sep: str | None = added_option(None)
    encoding: str = added_option("utf-8")
    items: str | None = added_option(None)
    item_columns: dict[str, str] | None = added_option(None)
    users: str | None = added_option(None)
    user_columns: dict[str, str] | None = added_option(None)
    # "file": the rows' order is the time order; a run on data without timestamps records it
    time_order: Literal["timestamp", "file"] = added_option("timestamp")

    def __post_init__(self) -> None:
        if self.split == "temporal":
            require_fraction(self, "valid_fraction", "test_fraction")

    def preprocessing(self) -> Preprocessing:
        return Preprocessing(self.min_rating, self.dedup, self.user_core, self.item_core,
                             self.ties, self.time_order)

    def read_options(self) -> dict[str, Any]:
        """The reader options of a path (``load_dataset(**options)``) that are set."""
        options = {"columns": self.columns, "separator": self.sep, "items": self.items,
                   "item_columns": self.item_columns, "users": self.users,
                   "user_columns": self.user_columns}
        if self.encoding != "utf-8":
            options["encoding"] = self.encoding
        return {k: v for k, v in options.items() if v}


@dataclass
class EvalConfig:
    ks: tuple[int, ...] = DEFAULT_KS
    mask: Literal["history", "none"] = "history"
    batch_size: int = 512

    def __post_init__(self) -> None:
        require_positive(self, "batch_size")
        if not self.ks or any(k < 1 for k in self.ks):
            raise ConfigError(f"ks must be cut-offs >= 1, not {list(self.ks)}")


@dataclass
class RunConfig:
    model: str
    model_config: ModelConfig
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        raw = dict(raw)
        unknown = sorted(set(raw) - {"data", "model", "eval"})
        if unknown:
            raise ConfigError(f"unknown config section {unknown[0]!r}; sections are data, "
                              "model, eval")
        model = dict(raw.get("model", {}))
        name = model.pop("name", None)
        if name is None:
            raise ConfigError("no model chosen: set [model] name or pass --model")
        if name not in MODELS:
            raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
        return cls(name, from_dict(MODELS[name].config_class, model, "model"),
                   from_dict(DataConfig, raw.get("data"), "data"),
                   from_dict(EvalConfig, raw.get("eval"), "eval"))

    def to_dict(self) -> dict[str, Any]:
        return {"data": to_dict(self.data), "model": {"name": self.model,
                                                      **to_dict(self.model_config)},
                "eval": to_dict(self.eval)}

    def hash(self) -> str:
        return content_hash(self.to_dict())


def set_option(raw: dict[str, Any], assignment: str) -> None:
    """Apply ``section.key=value`` (value parsed as TOML, else taken as a string)."""
    import tomllib

    key, sep, value = assignment.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or not name:
        raise ConfigError(f"--set expects SECTION.KEY=VALUE, not {assignment!r}")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    raw.setdefault(section, {})[name] = parsed


def load_config(path: str | Path | None = None, *, model: str | None = None,
                dataset: str | None = None, sets: list[str] = ()) -> RunConfig:
    """A run config from an optional TOML file, then CLI-style overrides."""
    raw: dict[str, Any] = read_toml(path) if path else {}
    if model:
        raw.setdefault("model", {})["name"] = model
    if dataset:
        raw.setdefault("data", {})["dataset"] = dataset
    for assignment in sets:
        set_option(raw, assignment)
    return RunConfig.from_dict(raw)


def fingerprint(ds: Dataset) -> str:
    h = hashlib.sha256()
    inter = ds.interactions
    for arr in (inter.user, inter.item, inter.timestamp):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(f"{ds.n_users}/{ds.n_items}".encode())
    return h.hexdigest()


def prepare(cfg: RunConfig) -> tuple[Dataset, Split]:
    d = cfg.data
    ds = load_dataset(d.dataset, format=d.format, preprocessing=d.preprocessing(),
                      **d.read_options())
    if d.split == "temporal" and ds.meta.get("time_order") == "file":
        why = ("data.time_order is 'file'" if ds.meta.get("timestamps")
               else "it has no timestamp column")
        raise DataError(f"{d.dataset}: a global temporal split needs timestamps and {why}; "
                        "use split = \"leave_one_out\" (file order per user)")
    params = ({"valid_fraction": d.valid_fraction, "test_fraction": d.test_fraction}
              if d.split == "temporal" else {})
    return ds, make_split(ds.interactions, d.split, **params)


def resolve_time_order(cfg: RunConfig) -> tuple[RunConfig, tuple[Dataset, Split] | None]:
    """The config a run records: ``data.time_order = "file"`` when the data has no timestamps.

    Registered data sets all have timestamps (nothing to load); for a path the data is
    loaded (and returned, so the run does not load it again). Without timestamps and
    without an explicit ``time_order = "file"``, one warning says that file order is used
    as time order. Data with timestamps keeps its config, and so its run hash, unchanged.
    """
    if cfg.data.dataset in REGISTRY or cfg.data.time_order == "file":
        return cfg, None
    data = prepare(cfg)
    if data[0].meta.get("timestamps", True):
        return cfg, data
    log.warning("%s: no timestamp column: file order is used as time order (recorded as "
                "data.time_order = \"file\" in the run's config)", cfg.data.dataset)
    return replace(cfg, data=replace(cfg.data, time_order="file")), data


def default_run_dir(cfg: RunConfig) -> Path:
    name = Path(cfg.data.dataset).name.replace(".", "_")
    return llmrec_home() / "runs" / f"{cfg.model}-{name}-{cfg.hash()[:12]}"


def _other_mask(mask: str) -> tuple[str, str]:
    return ("none", "test_unmasked") if mask == "history" else ("history", "test_masked")


def split_hash(ds: Dataset, split: Split) -> str:
    """SHA-256 naming the data and the split: runs with equal hashes are evaluated on the same
    users and the same targets, so their per-user metrics can be paired."""
    h = hashlib.sha256(fingerprint(ds).encode())
    h.update(json.dumps(split.summary(), sort_keys=True).encode())
    h.update(np.ascontiguousarray(split.part).tobytes())
    return h.hexdigest()


def catalogue(ds: Dataset | None, split: Split, model: Recommender | None = None) -> Catalogue:
    """Item facts for beyond-accuracy metrics: training popularity, genres (where the data set
    has a ``genres`` column), and the model's item embeddings (where it has them)."""
    genres = None
    if ds is not None and "genres" in ds.item_features.columns:
        genres = ds.item_features["genres"].to_list()
        if genres and not isinstance(genres[0], (list, type(None))):
            genres = None                           # not a list column: no genre sets
    train = split.train
    return Catalogue.from_training(train.user, train.item, train.n_items, genres,
                                   None if model is None else model.item_embeddings())


def score_run_per_user(model: Recommender, split: Split, cfg: EvalConfig,
                       ds: Dataset | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Metrics of every part (valid, test, test under the other mask) and, per part, the raw
    user indices and per-user metric arrays: ``(metrics, {part: (users, {metric: (U,)})})``."""
    valid, test = split.valid_cases(), split.test_cases()
    cat = catalogue(ds, split, model)
    t0 = time.perf_counter()
    parts = {"test": evaluate(model, test, cfg.ks, cfg.mask, cfg.batch_size, per_case=True,
                              catalogue=cat)}
    seconds = time.perf_counter() - t0
    other, key = _other_mask(cfg.mask)
    parts["valid"] = evaluate(model, valid, cfg.ks, cfg.mask, cfg.batch_size, per_case=True,
                              catalogue=cat)
    parts[key] = evaluate(model, test, cfg.ks, other, cfg.batch_size, per_case=True,
                          catalogue=cat)
    users = {"test": test.users, "valid": valid.users, key: test.users}
    per_user = {p: (users[p], parts[p].pop("per_case")) for p in ("valid", "test", key)}
    metrics = {p: parts[p] for p in ("valid", "test", key)}
    metrics["eval_seconds"] = round(seconds, 3)
    if ds is not None:
        metrics["split_hash"] = split_hash(ds, split)
    return metrics, per_user


def score_run(model: Recommender, split: Split, cfg: EvalConfig,
              ds: Dataset | None = None) -> dict[str, Any]:
    return score_run_per_user(model, split, cfg, ds)[0]


def save_per_user(run_dir: Path, ds: Dataset, split: Split, cfg: EvalConfig,
                  per_user: dict[str, Any]) -> Path:
    """Write ``per_user/`` (raw user ids) for the parts :func:`score_run_per_user` returned."""
    parts = {p: (ds.users.ids[np.asarray(u)], m) for p, (u, m) in per_user.items()}
    return write_per_user(run_dir / "per_user", parts, {
        "split_hash": split_hash(ds, split), "data_fingerprint": fingerprint(ds),
        "mask": cfg.mask, "ks": list(cfg.ks)})


def metrics_table(metrics: dict[str, Any], ks: tuple[int, ...], markdown: bool = False) -> str:
    parts = [p for p in ("valid", "test", "test_unmasked", "test_masked") if p in metrics]
    names = [f"{m}@{k}" for k in ks for m in ("ndcg", "recall", "mrr")]
    rows = [[p, *[metrics[p][n] for n in names]] for p in parts]
    table = format_table(["split", *names], rows, markdown=markdown)
    beyond = [b for b in BEYOND if any(f"{b}@{k}" in metrics[p] for p in parts for k in ks)]
    if not beyond:
        return table
    rows = [[p, k, *[metrics[p].get(f"{b}@{k}") for b in beyond]] for p in parts for k in ks]
    return table + "\n\n" + format_table(["split", "K", *beyond], rows, markdown=markdown)


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]
    cached: bool


def write_run_info(run_dir: Path, cfg: RunConfig, ds: Dataset, split: Split) -> None:
    """``config.toml`` and ``run.json`` (what the run is and which data it saw)."""
    atomic_write_text(run_dir / "config.toml", dumps_toml(cfg.to_dict()))
    write_json(run_dir / "run.json", {
        "config_hash": cfg.hash(), "model": cfg.model, "dataset": ds.name,
        "data_fingerprint": fingerprint(ds), "n_users": ds.n_users, "n_items": ds.n_items,
        "split": split.summary(), "seed": cfg.model_config.seed, "llmrec": __version__,
        "torch": torch.__version__, "python": platform.python_version(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def train_run(cfg: RunConfig, output: str | Path | None = None, *, force: bool = False,
              progress: bool = True) -> RunResult:
    """Train, evaluate and save one run (see the module docstring). Under ``torchrun`` every
    rank trains its shard (:mod:`llmrec.train`); rank 0 alone writes the run folder and scores
    the test split, and the other ranks return a result with empty ``metrics``."""
    main = not init_from_env() or is_main()
    cfg, data = resolve_time_order(cfg)
    run_dir = Path(output).expanduser() if output else default_run_dir(cfg)
    cfg_hash = cfg.hash()
    info_path = run_dir / "run.json"
    fix = run_fix(run_dir)
    if info_path.exists():
        try:
            info = read_json_file(info_path, fix)
        except CorruptFileError:
            if not force:
                raise
            info = {"config_hash": cfg_hash}         # --force rewrites it
        if info.get("config_hash") != cfg_hash:
            raise ConfigError(f"{run_dir} holds a run of another configuration; choose another "
                              "--output or remove that folder")
        if (run_dir / "metrics.json").exists() and not force:
            metrics = read_json_file(run_dir / "metrics.json",
                                     f"delete it to evaluate the run again, or {fix}")
            return RunResult(run_dir, metrics, True)
    if force and main:
        for name in ("checkpoint.safetensors", "best.safetensors", "train_log.jsonl",
                     "metrics.json", "metrics.md"):
            (run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(run_dir / "per_user", ignore_errors=True)
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    with log_to(run_dir / "log.jsonl") if main else contextlib.nullcontext():
        try:
            ds, split = data or prepare(cfg)
        except BaseException:
            if created:                  # a data error leaves no half-made run folder behind
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        if main:
            write_run_info(run_dir, cfg, ds, split)
        barrier()
        log.info("training %s on %s (%d users, %d items, %s)", cfg.model, ds.name, ds.n_users,
                 ds.n_items, split.summary(), extra={"event": "start", "run_dir": str(run_dir)})
        model = MODELS[cfg.model](cfg.model_config)
        if hasattr(model, "prepare"):      # inputs from the data set itself (autograph: vectors)
            model.prepare(ds, split)
        t0 = time.perf_counter()
        model.fit(split.train, split.valid_cases(), run_dir=run_dir, progress=progress,
                  valid_mask=cfg.eval.mask)
        wall = time.perf_counter() - t0
        if not main:
            return RunResult(run_dir, {}, False)
        model.save(run_dir / "model")
        metrics, per_user = score_run_per_user(model, split, cfg.eval, ds)
        save_per_user(run_dir, ds, split, cfg.eval, per_user)
        metrics.update(model=cfg.model, dataset=ds.name, seed=cfg.model_config.seed,
                       config_hash=cfg_hash, mask=cfg.eval.mask,
                       train_seconds=model.fit_info.get("train_seconds", round(wall, 2)),
                       best_epoch=model.fit_info.get("best_epoch", 0),
                       seconds_to_best=model.fit_info.get("seconds_to_best", round(wall, 2)),
                       epochs_run=model.fit_info.get("epochs_run", 0),
                       resumed_from=model.fit_info.get("resumed_from"))
        write_json(run_dir / "metrics.json", metrics)
        atomic_write_text(run_dir / "metrics.md",
                          f"# {cfg.model} on {ds.name}\n\n"
                          f"{metrics_table(metrics, cfg.eval.ks, markdown=True)}\n")
        log.info("test ndcg@10 %.4f", metrics["test"].get("ndcg@10", float("nan")),
                 extra={"event": "done", "test": metrics["test"]})
    return RunResult(run_dir, metrics, False)


@dataclass
class LoadedRun:
    run_dir: Path
    config: RunConfig
    dataset: Dataset
    split: Split
    model: Recommender


def open_run(run_dir: str | Path) -> LoadedRun:
    """Load a finished run with its data, checking the data did not change since training."""
    run_dir = Path(run_dir).expanduser()
    if not (run_dir / "config.toml").exists() or not (run_dir / "model").exists():
        raise LlmrecError(f"{run_dir}: not a finished llmrec run (config.toml or model/ missing)")
    fix = run_fix(run_dir)
    cfg = RunConfig.from_dict(read_toml(run_dir / "config.toml", fix))
    try:
        info = read_json_file(run_dir / "run.json", fix, required=False)
    except FileNotFoundError:
        raise LlmrecError(f"{run_dir}: not a finished llmrec run (run.json missing)") from None
    if not isinstance(info.get("data_fingerprint"), str):
        raise corrupt_file(run_dir / "run.json", "no data_fingerprint", fix)
    ds, split = prepare(cfg)
    if fingerprint(ds) != info["data_fingerprint"]:
        raise LlmrecError(f"{run_dir}: the data of {cfg.data.dataset!r} changed since this run "
                          "was trained; retrain it")
    return LoadedRun(run_dir, cfg, ds, split, load_model(run_dir / "model"))


def evaluate_run(run_dir: str | Path, mask: str | None = None,
                 ks: tuple[int, ...] | None = None) -> dict[str, Any]:
    """Recompute a run's metrics. With the run's own mask and cut-offs this also (re)writes its
    ``per_user/`` files, which is how runs trained before they existed are upgraded."""
    run = open_run(run_dir)
    cfg = run.config.eval
    own = (mask is None or mask == cfg.mask) and (ks is None or tuple(ks) == tuple(cfg.ks))
    if not own:
        cfg = EvalConfig(ks or cfg.ks, mask or cfg.mask, cfg.batch_size)
    metrics, per_user = score_run_per_user(run.model, run.split, cfg, run.dataset)
    if own:
        folder = save_per_user(run.run_dir, run.dataset, run.split, cfg, per_user)
        log.info("per-user metrics written to %s", folder)
    return metrics


def recommend_user(run: LoadedRun, user_id: str, n: int = 10,
                   exclude_seen: bool = True) -> list[dict[str, Any]]:
    """Top-``n`` items for a known user from everything they did (train, valid and test)."""
    if user_id not in run.dataset.users:
        raise UnknownUserError(f"user {user_id!r} is not in {run.dataset.name} "
                               f"({run.dataset.n_users} users, e.g. "
                               f"{', '.join(run.dataset.users.ids[:3])})")
    history = run.dataset.history(user_id)
    recs = run.model.recommend(history, n, exclude_seen=exclude_seen,
                               user=run.dataset.users.index(user_id))
    titles = run.dataset.item_titles()
    return [{"rank": r + 1, "item_id": run.dataset.items.id(i), "title": titles[i],
             "score": float(s)} for r, (i, s) in enumerate(zip(recs.items, recs.scores))]
