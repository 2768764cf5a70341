"""The config every tokenizer shares: ``levels`` codes per item, ``codebook_size`` values each.

Configs are frozen dataclasses validated on construction; ``to_dict``/``from_dict`` round-trip
through JSON or TOML (tuples become lists and back; an unknown key is a :class:`ConfigError`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any, Self

from ..errors import ConfigError


def check_int(name: str, value: object, minimum: int) -> None:
    """Raise :class:`ConfigError` unless ``value`` is an ``int`` (not ``bool``) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, not {value!r}")


def check_float(name: str, value: object, minimum: float, strict: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a real number >= (or >) ``minimum``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or value < minimum or (strict and value == minimum):  # type: ignore[operator]
        sign = ">" if strict else ">="
        raise ConfigError(f"{name} must be a number {sign} {minimum}, not {value!r}")


@dataclass(frozen=True)
class TokenizerConfig:
    """Fields every tokenizer has.

    - ``levels``: codes per item before collision handling (the disambiguation strategy may
      add one more).
    - ``codebook_size``: values per level (codes run ``0 .. codebook_size-1``).
    - ``seed``: every random choice (k-means init, weights, shuffles) derives from it.
    """

    levels: int = 3
    codebook_size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("levels", self.levels, 1)
        check_int("codebook_size", self.codebook_size, 2)
        check_int("seed", self.seed, 0)
        if self.seed > 2**32 - 1:
            raise ConfigError(f"seed must be in 0..{2**32 - 1}, not {self.seed}")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} field(s) {unknown}; "
                              f"known: {sorted(names)}")
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                  for k, v in data.items()}
        return cls(**values)
