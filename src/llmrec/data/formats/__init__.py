"""Readers for the data formats llmrec understands, and format auto-detection.

Each reader module has ``detect(path) -> bool`` and ``read(path, **options) -> RawData``.
:func:`read_path` picks one by name or by detection, in the order of :data:`FORMATS`.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from ...errors import ConfigError, DataError
from . import amazon, movielens, recbole, tabular
from ._common import RawData
from ._text import check_encoding, parse_separator

FORMATS: dict[str, ModuleType] = {
    "recbole": recbole,
    "movielens": movielens,
    "amazon": amazon,
    "tabular": tabular,  # last: it goes by file extension alone
}


def detect_format(path: Path) -> str:
    for name, module in FORMATS.items():
        if module.detect(path):
            return name
    raise DataError(f"{path}: cannot tell the data format; pass --format "
                    f"({', '.join(FORMATS)})")


def read_path(path: str | Path, format: str = "auto", **options: object) -> RawData:
    """Read a file or folder in a supported format (``format="auto"`` detects it)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if format == "auto":
        format = detect_format(path)
    try:
        module = FORMATS[format]
    except KeyError:
        raise ConfigError(f"unknown data format {format!r}; choose one of "
                          f"{', '.join(FORMATS)}") from None
    if format != "tabular":
        tabular_only = [k for k, v in options.items() if v and k in tabular.OPTIONS]
        if tabular_only:
            raise ConfigError(f"{path}: option {tabular_only[0]!r} applies to CSV/TSV/Parquet "
                              f"files (the tabular format), not to the {format} format")
    return module.read(path, **options)


__all__ = ["FORMATS", "RawData", "detect_format", "read_path"]
