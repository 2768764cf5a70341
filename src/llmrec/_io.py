"""Small shared I/O helpers: the llmrec home, atomic writes, content hashes, and checked
reads of the artifacts llmrec wrote earlier (a corrupt one is a :class:`CorruptFileError`
naming the file and the way out, never a traceback)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import CorruptFileError


def llmrec_home() -> Path:
    """Root of every cached artifact: ``$LLMREC_HOME`` or ``~/.cache/llmrec``."""
    home = os.environ.get("LLMREC_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "llmrec"


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal objects give equal strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def content_hash(obj: Any) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (hex)."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def array_hash(*arrays: Any) -> str:
    """SHA-256 (hex) of the bytes of numpy arrays, in order (content keys of cached runs)."""
    import numpy as np

    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


@contextlib.contextmanager
def atomic_directory(path: str | Path, *, keep_existing: bool = False) -> Iterator[Path]:
    """Yield a scratch directory that replaces ``path`` only if the block succeeds. With
    ``keep_existing`` (content-addressed caches: any complete copy is as good), a ``path``
    another process finished in the meantime is kept and the scratch copy dropped."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        if path.exists():
            if keep_existing:
                return
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def corrupt_file(path: str | Path, why: object, fix: str) -> CorruptFileError:
    """The one-line error for an unreadable artifact: ``PATH: corrupt or truncated (why); fix``."""
    why = " ".join(str(why).split())[:200]
    return CorruptFileError(f"{path}: corrupt or truncated ({why}); {fix}")


def read_json_file(path: str | Path, fix: str, *, kind: type = dict,
                   required: bool = True) -> Any:
    """The JSON value in ``path`` (of type ``kind``); a :class:`CorruptFileError` naming the
    file and ``fix`` when it cannot be read or parsed, or is missing (with
    ``required=False`` a missing file raises FileNotFoundError: the caller says what that
    means)."""
    path = Path(path)
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        if not required:
            raise
        raise corrupt_file(path, "missing", fix) from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise corrupt_file(path, e, fix) from None
    if not isinstance(value, kind):
        raise corrupt_file(path, f"expected a JSON {kind.__name__}", fix)
    return value


def read_npy(path: str | Path, fix: str):
    """The array in the ``.npy`` file ``path`` (no pickle); a :class:`CorruptFileError`
    naming the file and ``fix`` when it is missing, truncated or not an array file."""
    import numpy as np

    path = Path(path)
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise corrupt_file(path, "missing", fix) from None
    except (OSError, ValueError, EOFError) as e:
        raise corrupt_file(path, e, fix) from None
