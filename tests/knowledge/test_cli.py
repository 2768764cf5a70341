"""``llmrec knowledge`` in real subprocesses: kill -9 mid-run, resume, show, stats, errors."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

N = 5   # items and users each: 10 records


def llmrec(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmrec", *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=os.environ)


def generate_args(store: Path, templates: Path) -> list[str]:
    return ["-q", "knowledge", "generate", "--dataset", "ml-100k", "--limit", str(N),
            "--factors", "genre,mood", "--templates", str(templates), "--threads", "1",
            "--slots", "2", "--store", str(store)]


def ok_rows(store: Path) -> dict[str, tuple]:
    if not store.exists():
        return {}
    db = sqlite3.connect(store, timeout=30)
    try:
        return {r[0]: r[1:] for r in db.execute(
            "SELECT key, output, attempts, updated_at FROM records WHERE status = 'ok'")}
    except sqlite3.OperationalError:      # the schema is not there yet
        return {}
    finally:
        db.close()


@pytest.fixture(scope="module")
def resumed_store(ml100k, tiny_templates,
                  tmp_path_factory) -> tuple[Path, dict, subprocess.CompletedProcess]:
    """A generation killed with SIGKILL after 3 records, then run again to the end."""
    store = tmp_path_factory.mktemp("kill") / "k.sqlite"
    args = generate_args(store, tiny_templates)
    proc = subprocess.Popen([sys.executable, "-m", "llmrec", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ)
    deadline = time.monotonic() + 240
    try:
        while len(ok_rows(store)) < 3:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no records after 240 s"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    before = ok_rows(store)
    again = llmrec(*generate_args(store, tiny_templates))
    return store, before, again


def test_kill9_loses_no_completed_record_and_the_next_run_resumes(resumed_store) -> None:
    store, before, again = resumed_store
    assert 3 <= len(before) < 2 * N
    assert again.returncode == 0, again.stderr
    after = ok_rows(store)
    assert len(after) == 2 * N
    assert all(after[k] == v for k, v in before.items())      # kept, not redone
    db = sqlite3.connect(store)
    dup = db.execute("SELECT COUNT(*) - COUNT(DISTINCT kind || entity) FROM records").fetchone()
    runs = db.execute("SELECT summary FROM runs ORDER BY id").fetchall()
    db.close()
    assert dup == (0,)
    last = json.loads(runs[-1][0])["stats"]
    assert sum(last["cached"].values()) == len(before)
    assert sum(last["ok"].values()) == 2 * N - len(before)
    assert "items 5/5, users 5/5 with knowledge" in again.stdout


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """``llmrec ARGS`` in this process (the CLI is a thin layer): (status, stdout, stderr)."""
    from llmrec.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_show_and_stats(resumed_store, capsys) -> None:
    store = str(resumed_store[0])
    code, out, err = cli(capsys, "knowledge", "show", "--item", "1", "--store", store, "--prompt")
    assert code == 0, err
    assert "item 1  [item@2, smollm2-135m-instruct, item:1" in out
    assert "Movie: Toy Story (1995)" in out and "\ngenre:" in out
    code, out, _ = cli(capsys, "knowledge", "show", "--user", "1", "--store", store)
    assert code == 0 and "user 1 (individual)" in out
    code, out, _ = cli(capsys, "knowledge", "stats", "--store", store)
    assert code == 0
    assert "item" in out and "LLM calls" in out and "runs" in out


def test_cli_errors_are_one_line_with_status_2(resumed_store, tmp_path, capsys) -> None:
    store = str(resumed_store[0])
    code, _, err = cli(capsys, "knowledge", "show", "--item", "99999", "--store", store)
    assert code == 2
    assert err.strip() == f"llmrec: error: no knowledge for item 99999 in {store}"
    code, _, err = cli(capsys, "knowledge", "stats", "--store", str(tmp_path / "none.sqlite"))
    assert code == 2 and "no knowledge store at" in err
    code, _, err = cli(capsys, "-q", "knowledge", "generate", "--backend", "openai",
                       "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--factors",
                       "genre,mood", "--limit", "1", "--store", str(tmp_path / "k.sqlite"))
    assert code == 2
    assert "cannot reach http://127.0.0.1:9/v1: connection refused" in err
    assert len(err.strip().splitlines()) == 1


def test_ctr_profile_knowledge_feeds_the_ctr_task(ml100k, tiny_templates, llmrec_home) -> None:
    """`--history ctr-profile` writes its own store, whose user prompts show profile events
    only, and the CTR knowledge tables read exactly that store."""
    from llmrec.ctr import build_ctr_data, knowledge_tables
    from llmrec.data import Preprocessing, load_dataset
    from llmrec.encode import HashingEncoder
    from llmrec.knowledge import KnowledgeStore

    ds = load_dataset("ml-100k", preprocessing=Preprocessing())
    data = build_ctr_data(ds)
    with pytest.raises(Exception, match="--history ctr-profile"):
        knowledge_tables(ds, data, "knowledge", HashingEncoder(dim=16), progress=False)
    bad = llmrec("knowledge", "generate", "--history", "ctr-profile", "--set", "data.user_core=2")
    assert bad.returncode == 2 and "do not apply" in bad.stderr
    done = llmrec("-q", "knowledge", "generate", "--dataset", "ml-100k", "--history",
                  "ctr-profile", "--limit", "3", "--factors", "genre,mood", "--templates",
                  str(tiny_templates), "--threads", "1", "--slots", "2")
    assert done.returncode == 0, done.stderr
    store_path = llmrec_home / "knowledge" / "ml-100k-ctr-profile30.sqlite"
    assert str(store_path) in done.stdout
    profile = data.profile
    titles = ds.item_features["title"].to_list()
    ambiguous = {i for i, t in enumerate(titles) if any(j != i and t in o
                                                         for j, o in enumerate(titles))}
    with KnowledgeStore(store_path) as store:
        users = store.export("individual")
        assert len(users) == 3
        for raw in users:
            u = ds.users.index(raw)
            allowed = set(profile.item[profile.user == u].tolist())
            prompt = "\n".join(m["content"] for m in store.get_user(raw, "individual").prompt)
            shown = {i for i, t in enumerate(titles) if f"{t} (" in prompt} - ambiguous
            assert shown and shown <= allowed, (raw, shown - allowed)
    tables = knowledge_tables(ds, data, "knowledge", HashingEncoder(dim=16), progress=False)
    assert tables.costs["item_coverage"] == round(3 / ds.n_items, 4)
    assert tables.costs["user_coverage"] == round(3 / ds.n_users, 4)
    assert tables.costs["llm_calls"] >= 6                 # 3 items + 3 users (factors given)
