"""``llmrec knowledge generate`` stopped by SIGTERM and by SIGINT (Ctrl-C), with the packaged
local LLM (SmolLM2-135M, tiny templates) in real subprocesses: the calls in flight are
finished and stored, it says how many calls were done and how to resume, exits 143 / 130;
the same command then completes only the missing records."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from importlib import resources
from pathlib import Path

import pytest
import tomli_w

N = 8                # items and users each: 16 records
TINY = {"item": {"max_tokens": 32, "words_per_factor": 2},
        "user": {"max_tokens": 24, "words_per_factor": 2, "params": {"history_items": 3}}}


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> Path:
    """The packaged templates with tiny outputs (as tests/knowledge does)."""
    folder = tmp_path_factory.mktemp("tiny-templates")
    packaged = resources.files("llmrec.knowledge") / "templates"
    for name, changes in TINY.items():
        raw = tomllib.loads((packaged / f"{name}.toml").read_text(encoding="utf-8"))
        changes = dict(changes)
        raw["params"] = {**raw.get("params", {}), **changes.pop("params", {})}
        raw.update(changes)
        (folder / f"{name}.toml").write_text(tomli_w.dumps(raw))
    return folder


def rows(store: Path) -> dict[str, str]:
    """key -> status of every record (empty before the schema exists)."""
    if not store.exists():
        return {}
    db = sqlite3.connect(store, timeout=30)
    try:
        return dict(db.execute("SELECT key, status FROM records"))
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()


def one_core() -> None:
    """Run the child on one core: llama.cpp's default thread count is then 1."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def start(store: Path, templates: Path, *threads: str) -> subprocess.Popen:
    args = ["-q", "knowledge", "generate", "--dataset", "ml-100k", "--limit", str(N),
            "--factors", "genre,mood", "--templates", str(templates), "--slots", "1",
            "--store", str(store), *threads]
    return subprocess.Popen([sys.executable, "-m", "llmrec", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                            env=os.environ, preexec_fn=one_core)


def interrupt_after(proc: subprocess.Popen, store: Path, records: int,
                    sig: signal.Signals) -> tuple[str, str, dict[str, str]]:
    deadline = time.monotonic() + 300
    while sum(s == "ok" for s in rows(store).values()) < records:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"fewer than {records} records after 300 s"
        time.sleep(0.1)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    return out, err, rows(store)


def calls_done(err: str) -> tuple[int, int]:
    m = re.search(r"llmrec: interrupted after (\d+) of (\d+) calls; run the same command to "
                  r"resume", err)
    assert m, err
    return int(m[1]), int(m[2])


def test_sigterm_and_sigint_stop_cleanly_and_the_same_command_resumes(ml100k, templates,
                                                                      tmp_path):
    store = tmp_path / "k.sqlite"
    first = start(store, templates, "--threads", "1")
    out, err, after_first = interrupt_after(first, store, 2, signal.SIGTERM)
    assert first.returncode == 128 + signal.SIGTERM, err
    assert ", 1 slots, 1 threads" in out and "None" not in out
    done, total = calls_done(err)
    assert total == 2 * N
    ok_first = sum(s == "ok" for s in after_first.values())
    # every call it counts is a stored record (a record failed for now is retried later)
    assert 2 <= ok_first <= done <= len(after_first) < total
    assert "Traceback" not in err

    second = start(store, templates)            # no --threads: the default, one core here
    out, err, after_second = interrupt_after(second, store, ok_first + 2, signal.SIGINT)
    assert second.returncode == 128 + signal.SIGINT, err
    assert ", 1 slots, 1 threads" in out            # what llama.cpp uses, not "None"
    done2, total2 = calls_done(err)
    assert total2 == total - ok_first               # what was still missing
    ok_second = sum(s == "ok" for s in after_second.values())
    assert 2 <= ok_second - ok_first <= done2 <= len(after_second) - ok_first
    assert all(after_second[k] == s for k, s in after_first.items() if s == "ok")

    third = start(store, templates, "--threads", "1")
    out, err = third.communicate(timeout=600)
    assert third.returncode == 0, err
    assert f"items {N}/{N}, users {N}/{N} with knowledge" in out
    final = rows(store)
    assert len(final) == 2 * N and set(final.values()) == {"ok"}
    db = sqlite3.connect(store)
    runs = db.execute("SELECT finished_at, summary FROM runs ORDER BY id").fetchall()
    dup = db.execute("SELECT COUNT(*) - COUNT(DISTINCT kind || entity) FROM records").fetchone()
    db.close()
    assert dup == (0,) and len(runs) == 3
    assert all(finished is not None for finished, _ in runs)   # interrupted runs closed too
    last = json.loads(runs[-1][1])["stats"]
    assert sum(last["cached"].values()) == ok_second           # only the missing ones
    assert sum(last["calls"].values()) >= 2 * N - ok_second
    assert sum(last["ok"].values()) == 2 * N - ok_second
