"""Typed configs: dataclasses validated on construction, read from and written to TOML.

Every model has a config dataclass in its own file; :func:`from_dict` builds one from plain data
(TOML, JSON, CLI overrides) and refuses unknown keys and wrong types with one clear line.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

import tomli_w

from .errors import ConfigError

T = TypeVar("T")


def _check(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin is Literal:
        if value not in typing.get_args(hint):
            choices = ", ".join(repr(a) for a in typing.get_args(hint))
            raise ConfigError(f"{where} must be one of {choices}, not {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, not {value!r}")
        (item,) = typing.get_args(hint)[:1] or (Any,)
        return origin(_check(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, not {value!r}")
        return dict(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, not {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not (isinstance(value, int) or
                                           (isinstance(value, float) and value.is_integer())):
            raise ConfigError(f"{where} must be an integer, not {value!r}")
        return int(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, not {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, not {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        return from_dict(hint, value, where)
    return value


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build the dataclass ``cls`` from ``data``, checking every key and type."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    prefix = f"{where}." if where else ""
    if unknown:
        raise ConfigError(f"unknown option '{prefix}{unknown[0]}'; "
                          f"options are: {', '.join(sorted(fields))}")
    kwargs = {k: _check(v, hints[k], f"{prefix}{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where or cls.__name__}: {e}") from None


def added_option(default: Any) -> Any:
    """A config field added after run folders existed: :func:`to_dict` leaves it out while it
    holds ``default`` (which must keep the earlier behaviour), so the resolved configs, and
    with them the run hashes, of earlier runs stay what they were."""
    return dataclasses.field(default=default, metadata={"added": True})


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain data (lists for tuples, no None values: TOML has no null; no
    :func:`added_option` at its default)."""
    def kept(v: Any, f: dataclasses.Field) -> bool:
        value = getattr(v, f.name)
        return value is not None and not (f.metadata.get("added") and value == f.default)

    def clean(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: clean(getattr(v, f.name)) for f in dataclasses.fields(v)
                    if kept(v, f)}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if x is not None}
        return v
    return clean(cfg)


def read_toml(path: str | Path, fix: str | None = None) -> dict[str, Any]:
    """The TOML file ``path`` as a dict. A missing or invalid file is a ConfigError naming
    it; with ``fix`` (a file llmrec wrote, e.g. a run's ``config.toml``) an unreadable one is
    a CorruptFileError that also says the way out."""
    from ._io import corrupt_file

    path = Path(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a TOML file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as e:
        if fix:
            raise corrupt_file(path, f"invalid TOML: {e}", fix) from None
        why = e.strerror if isinstance(e, OSError) else e
        raise ConfigError(f"{path}: invalid TOML ({why})") from None


def dumps_toml(data: dict[str, Any]) -> str:
    return tomli_w.dumps(data)


def require_positive(cfg: Any, *names: str) -> None:
    """Raise ConfigError unless each named numeric field is > 0 and finite (TOML has nan and
    inf)."""
    for name in names:
        value = getattr(cfg, name)
        if not 0 < value < float("inf"):
            raise ConfigError(f"{name} must be > 0, not {getattr(cfg, name)!r}")


SEED_MAX = 2**32 - 1            # numpy's and torch's seeds: 0 .. 2**32 - 1


def require_seed(cfg: Any, *names: str) -> None:
    """Raise ConfigError unless each named field is a seed numpy and torch accept."""
    for name in names:
        value = getattr(cfg, name)
        if value is not None and not 0 <= value <= SEED_MAX:
            raise ConfigError(f"{name} must be in 0..{SEED_MAX}, not {value!r}")


def require_non_negative(cfg: Any, *names: str) -> None:
    """Raise ConfigError unless each named numeric field is >= 0 and finite."""
    for name in names:
        value = getattr(cfg, name)
        if not 0 <= value < float("inf"):
            raise ConfigError(f"{name} must be >= 0, not {getattr(cfg, name)!r}")


def require_fraction(cfg: Any, *names: str) -> None:
    for name in names:
        if not 0.0 <= getattr(cfg, name) < 1.0:
            raise ConfigError(f"{name} must be in [0, 1), not {getattr(cfg, name)!r}")
