"""Hyper-parameter search with Optuna: TPE sampling, median pruning on per-epoch validation,
a study in SQLite that resumes and can be shared by several processes.

    study folder ($LLMREC_HOME/tune/MODEL-DATASET-HASH/, HASH of the base config + space)
      study.db      the Optuna study (SQLite): every trial, its parameters, per-epoch values
      space.toml    the search space;  base.toml   the config the space is applied to
      trials.csv    one row per trial (number, state, value, seconds, parameters)
      best.toml     the best configuration, a complete run config: llmrec train --config best.toml

Trials read the validation split only (early stopping and the objective, NDCG@10 by default);
the test split is scored once, by training the best configuration as a normal run folder.
Every trial trains with the base config's seed, so a configuration trains identically whatever
its trial number, and the base config itself is queued as the first trial of a new study (the
search always includes the baseline). A pruned trial is recorded as PRUNED with its last
validation value and never counts as the best; a trial whose configuration the model refuses,
or whose loss diverges, is FAIL and the search goes on. An interrupted trial is FAIL; running
the same command again continues until the study holds ``trials`` finished (complete or pruned)
trials.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._io import atomic_write_text, content_hash, corrupt_file, llmrec_home
from ..config import dumps_toml
from ..errors import ConfigError
from ..eval import evaluate
from ..models import MODELS
from ..runs import RunConfig, RunResult, prepare, train_run
from ..train import on_validation
from ._space import SearchSpace

log = logging.getLogger(__name__)
MONITOR = "ndcg@10"


@dataclass
class TuneResult:
    study_dir: Path
    best_value: float
    best_params: dict[str, Any]
    best_trial: int
    best_config: Path
    counts: dict[str, int]
    final: RunResult | None


def apply_values(base: RunConfig, values: dict[str, Any]) -> RunConfig:
    """``base`` with ``{"model.<field>": value}`` applied (checked like any config)."""
    raw = base.to_dict()
    for key, value in values.items():
        section, _, name = key.partition(".")
        raw[section][name] = value
    return RunConfig.from_dict(raw)


def study_folder(base: RunConfig, space: SearchSpace) -> Path:
    digest = content_hash({"base": base.to_dict(), "space": space.to_dict()})
    name = Path(base.data.dataset).name.replace(".", "_")
    return llmrec_home() / "tune" / f"{base.model}-{name}-{digest[:12]}"


def tune(base: RunConfig, space: SearchSpace, trials: int, *, study_dir: str | Path | None = None,
         sampler_seed: int = 0, pruner: Any = None, timeout: float | None = None,
         final_test: bool = True, progress: bool = True) -> TuneResult:
    """Search ``space`` around ``base`` until the study holds ``trials`` finished trials."""
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    if trials < 1:
        raise ConfigError(f"--trials must be >= 1, not {trials}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = Path(study_dir).expanduser() if study_dir else study_folder(base, space)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "space.toml", dumps_toml(space.to_dict()))
    atomic_write_text(folder / "base.toml", dumps_toml(base.to_dict()))
    from sqlalchemy.exc import DatabaseError

    try:
        storage = optuna.storages.RDBStorage(f"sqlite:///{folder / 'study.db'}")
        study = optuna.create_study(
            study_name=folder.name, storage=storage, direction="maximize", load_if_exists=True,
            sampler=optuna.samplers.TPESampler(seed=sampler_seed),
            pruner=pruner or optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=5))
    except DatabaseError as e:            # a damaged study file: name it and the way out
        raise corrupt_file(folder / "study.db", getattr(e, "orig", e),
                           f"delete {folder / 'study.db'} to start the search again") from None
    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    if not study.trials:
        baseline = {p.key: getattr(base.model_config, p.name) for p in space.params}
        if all(_inside(p, baseline[p.key]) for p in space.params):
            study.enqueue_trial(baseline, user_attrs={"memo": "base config"})

    ds, split = prepare(base)
    valid = split.valid_cases()
    done_before = len(study.get_trials(deepcopy=False, states=finished))
    t_start = time.monotonic()
    log.info("tuning %s on %s: %d parameters, %d of %d trials finished, study %s",
             base.model, ds.name, len(space.params), done_before, trials, folder,
             extra={"event": "tune_start", "study": str(folder)})

    def objective(trial: optuna.Trial) -> float:
        values = {p.key: p.suggest(trial) for p in space.params}
        cfg = apply_values(base, values)
        model = MODELS[cfg.model](cfg.model_config)

        def report(epoch: int, score: float) -> None:
            trial.report(score, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {epoch}: {MONITOR} {score:.4f}")

        with on_validation(report):
            model.fit(split.train, valid, progress=False, valid_mask=cfg.eval.mask)
        best = model.fit_info.get(f"best_valid_{MONITOR}")
        if best is None:                            # a model without epochs (popularity)
            best = evaluate(model, valid, ks=(10,), mask=cfg.eval.mask)[MONITOR]
        return float(best)

    def after(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        done = len(study.get_trials(deepcopy=False, states=finished))
        ran = done - done_before
        per = (time.monotonic() - t_start) / max(ran, 1)
        try:
            best = f"{study.best_value:.4f} (trial {study.best_trial.number})"
        except ValueError:
            best = "none yet"
        value = "" if trial.value is None else f" {MONITOR} {trial.value:.4f}"
        log.info("trial %d %s%s | best %s | %d/%d finished | %.0f s/trial | ETA %s",
                 trial.number, trial.state.name.lower(), value, best, done, trials, per,
                 _eta(per * max(trials - done, 0)),
                 extra={"event": "trial", "trial": trial.number, "state": trial.state.name,
                        "value": trial.value, "params": trial.params})

    remaining = trials - done_before
    if remaining > 0:
        study.optimize(objective, n_trials=remaining, timeout=timeout,
                       catch=(ConfigError, FloatingPointError),
                       callbacks=[MaxTrialsCallback(trials, states=finished), after])
    _write_trials(folder / "trials.csv", study)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    counts = {s.name.lower(): len(study.get_trials(deepcopy=False, states=(s,)))
              for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    if not complete:
        raise ConfigError(f"study {folder}: no trial completed ({counts['pruned']} pruned, "
                          f"{counts['fail']} failed); widen the space or raise --trials")
    best = study.best_trial
    best_cfg = apply_values(base, best.params)
    atomic_write_text(folder / "best.toml",
                      f"# best of {len(complete)} completed trials: trial {best.number}, "
                      f"validation {MONITOR} {best.value:.4f}\n" + dumps_toml(best_cfg.to_dict()))
    final = train_run(best_cfg, progress=progress) if final_test else None
    return TuneResult(folder, float(best.value), dict(best.params), best.number,
                      folder / "best.toml", counts, final)


def _inside(p: Any, value: Any) -> bool:
    if p.kind == "categorical":
        return value in p.choices
    return p.low <= value <= p.high


def _eta(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def _write_trials(path: Path, study: Any) -> None:
    trials = study.get_trials(deepcopy=False)
    keys = sorted({k for t in trials for k in t.params})
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["number", "state", MONITOR, "seconds", "last_epoch", *keys])
    for t in trials:
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else ""
        last = max(t.intermediate_values) if t.intermediate_values else ""
        w.writerow([t.number, t.state.name, "" if t.value is None else f"{t.value:.6f}",
                    seconds if seconds == "" else f"{seconds:.1f}", last,
                    *[t.params.get(k, "") for k in keys]])
    atomic_write_text(path, out.getvalue())
