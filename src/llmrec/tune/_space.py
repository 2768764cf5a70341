"""A search space declared as data (TOML), checked before any trial runs.

One table per tuned option, named ``model.<field>`` (a field of the model's config)::

    [model.learning_rate]
    type = "float"          # float | int | categorical
    low = 1e-4
    high = 1e-2
    log = true              # float/int: sample on a log scale

    [model.num_layers]
    type = "int"
    low = 1
    high = 4

    [model.embedding_size]
    type = "categorical"
    choices = [32, 64, 128]

A typo (``model.learnig_rate``), an unknown ``type``, ``low > high`` or a value the model's
config refuses is one line naming the table, before the study starts.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import from_dict, read_toml
from ..errors import ConfigError

KINDS = ("float", "int", "categorical")


@dataclass(frozen=True)
class Param:
    name: str                      # "learning_rate" (the model config field)
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    @property
    def key(self) -> str:
        return f"model.{self.name}"

    def suggest(self, trial: Any) -> Any:
        """The value an Optuna trial draws for this parameter."""
        if self.kind == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log,
                                       step=self.step)
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log,
                                     step=int(self.step or 1))
        return trial.suggest_categorical(self.key, list(self.choices))

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, (), False)}


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...]

    def to_dict(self) -> dict[str, Any]:
        return {p.key: p.to_dict() for p in self.params}


def _number(where: str, raw: dict[str, Any], key: str) -> float:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: {key} must be a number, not {value!r}")
    return value


def parse_space(raw: dict[str, Any], config_class: type, where: str = "space") -> SearchSpace:
    """Check ``raw`` (a parsed space TOML) against ``config_class`` (the model's config)."""
    fields = {f.name for f in dataclasses.fields(config_class)}
    params = []
    if set(raw) - {"model"}:
        section = sorted(set(raw) - {"model"})[0]
        raise ConfigError(f"{where}: [{section}] cannot be tuned; tables are named "
                          "[model.<option>]")
    tables = raw.get("model", {})
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"{where}: no [model.<option>] table; nothing to tune")
    for name, spec in tables.items():
        at = f"{where}: [model.{name}]"
        if name not in fields:
            close = difflib.get_close_matches(name, sorted(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{at}: {config_class.__name__} has no option {name!r}{hint}")
        if name == "seed":
            raise ConfigError(f"{at}: the seed is not a hyper-parameter (set it with --seed)")
        if not isinstance(spec, dict):
            raise ConfigError(f"{at}: expected a table with a type, not {spec!r}")
        unknown = sorted(set(spec) - {"type", "low", "high", "log", "step", "choices"})
        if unknown:
            raise ConfigError(f"{at}: unknown key {unknown[0]!r}; keys are type, low, high, "
                              "log, step, choices")
        kind = spec.get("type")
        if kind not in KINDS:
            raise ConfigError(f"{at}: type must be one of {', '.join(KINDS)}, not {kind!r}")
        if kind == "categorical":
            choices = spec.get("choices")
            if not isinstance(choices, list) or not choices:
                raise ConfigError(f"{at}: categorical needs a non-empty list of choices")
            params.append(Param(name, kind, choices=tuple(choices)))
            continue
        low, high = _number(at, spec, "low"), _number(at, spec, "high")
        if low > high:
            raise ConfigError(f"{at}: low {low} is above high {high}")
        log = bool(spec.get("log", False))
        if log and low <= 0:
            raise ConfigError(f"{at}: a log scale needs low > 0, not {low}")
        step = spec.get("step")
        if kind == "int" and not all(float(v).is_integer() for v in (low, high)):
            raise ConfigError(f"{at}: int bounds must be whole numbers")
        params.append(Param(name, kind, low, high, log, step))
    space = SearchSpace(tuple(params))
    _check_values(space, config_class, where)
    return space


def _check_values(space: SearchSpace, config_class: type, where: str) -> None:
    """Every bound and choice must be a value the model's config accepts on its own."""
    for p in space.params:
        values = p.choices if p.kind == "categorical" else (p.low, p.high)
        for v in values:
            if p.kind == "int":
                v = int(v)
            try:
                from_dict(config_class, {p.name: v}, "model")
            except ConfigError as e:
                raise ConfigError(f"{where}: [model.{p.name}] value {v!r} is refused by the "
                                  f"model: {e}") from None


def load_space(path: str | Path, config_class: type) -> SearchSpace:
    path = Path(path).expanduser()
    return parse_space(read_toml(path), config_class, where=str(path))
