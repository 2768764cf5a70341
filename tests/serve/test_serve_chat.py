"""Chat sessions of ``llmrec serve`` over real HTTP on 127.0.0.1 (a real uvicorn server; a real
``--workers 2`` process for the shared session store)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from .conftest import LiveServer, free_port


def chat_app(artifacts, tmp_path: Path, **config):
    from llmrec.serve import create_app

    cfg = replace(artifacts.config, chat_store=str(tmp_path / "chat.sqlite"), **config)
    return create_app(replace(artifacts, config=cfg))


def check_cards(ds, items: list[dict], genre: str, decade: int) -> None:
    """Every card is an item of the data set with ``genre`` from ``decade`` (checked against
    the data set, not the card)."""
    titles, feats = ds.item_titles(), ds.item_features
    for card in items:
        i = ds.items.index(card["item_id"])
        assert card["title"] == titles[i]
        assert genre in feats["genres"][i] and decade <= feats["year"][i] < decade + 10, card


def test_a_conversation_over_http(artifacts, tmp_path):
    ds = artifacts.dataset
    with LiveServer(chat_app(artifacts, tmp_path)) as server, httpx.Client(
            base_url=server.url, timeout=30) as http:
        start = http.post("/chat", json={"user_id": "1"})
        assert start.status_code == 201, start.text
        sid = start.json()["session_id"]
        assert "movies you rated" in start.json()["text"]
        http.post(f"/chat/{sid}", json={"message": "I want a comedy"}).raise_for_status()
        r = http.post(f"/chat/{sid}", json={"message": "from the 90s"}).json()
        if r["kind"] != "recommend":              # the policy may still ask something
            r = http.post(f"/chat/{sid}", json={"message": "don't know"}).json()
        assert r["kind"] == "recommend" and len(r["items"]) == 5
        assert r["wishes"] == {"genre": ["Comedy"], "decade": ["1990s"]}
        check_cards(ds, r["items"], "Comedy", 1990)
        seen = {ds.items.ids[i] for i in ds.history("1")}
        assert not seen & {c["item_id"] for c in r["items"]}
        again = http.post(f"/chat/{sid}", json={"message": "no, something else"}).json()
        assert again["reply_kind"] == "reject" and len(again["items"]) == 5
        assert not {c["item_id"] for c in again["items"]} & {c["item_id"] for c in r["items"]}
        check_cards(ds, again["items"], "Comedy", 1990)
        # an anonymous session is another conversation
        other = http.post("/chat").json()
        assert other["session_id"] != sid and other["wishes"] == {}

        assert http.delete(f"/chat/{sid}").json() == {"session_id": sid, "deleted": True}
        gone = http.post(f"/chat/{sid}", json={"message": "hello"})
        assert gone.status_code == 404 and gone.json() == {
            "error": "unknown or expired chat session", "field": "session_id"}
        assert http.delete(f"/chat/{sid}").status_code == 404


def test_bad_chat_requests_get_the_one_error_shape(artifacts, tmp_path):
    with LiveServer(chat_app(artifacts, tmp_path, api_key="k3y")) as server, httpx.Client(
            base_url=server.url, timeout=30) as http:
        assert http.post("/chat").status_code == 401                   # the key policy
        http.headers["X-API-Key"] = "k3y"
        sid = http.post("/chat").json()["session_id"]
        cases = [
            (http.post("/chat", json={"user_id": "no-such-user"}), 404, "user_id"),
            (http.post("/chat", json={"user": "1"}), 422, "user"),
            (http.post("/chat", content=b"{oops", headers={"content-type":
                                                           "application/json"}), 400, "body"),
            (http.post("/chat", content=b"hi", headers={"content-type": "text/plain"}), 415,
             "content-type"),
            (http.post(f"/chat/{sid}", json={}), 422, "message"),
            (http.post(f"/chat/{sid}", json={"message": ""}), 422, "message"),
            (http.post(f"/chat/{sid}", json={"message": "   "}), 422, "message"),
            (http.post(f"/chat/{sid}", json={"message": "x" * 501}), 422, "message"),
            (http.post(f"/chat/{sid}", json={"message": 5}), 422, "message"),
            (http.post("/chat/" + "z" * 65, json={"message": "hi"}), 422, "session_id"),
            (http.put(f"/chat/{sid}", json={"message": "hi"}), 405, "method"),
        ]
        for r, status, field in cases:
            assert (r.status_code, r.json()["field"]) == (status, field), r.text
            assert r.json()["error"]


def test_session_caps_turn_cap_and_idle_expiry(artifacts, tmp_path):
    app = chat_app(artifacts, tmp_path, chat_max_sessions=2, chat_max_turns=2,
                   chat_idle_seconds=1.5)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        a, b = (http.post("/chat").json()["session_id"] for _ in range(2))
        http.post(f"/chat/{a}", json={"message": "a drama"}).raise_for_status()   # a is newer
        c = http.post("/chat").json()["session_id"]          # the cap: b, least recent, goes
        assert http.post(f"/chat/{b}", json={"message": "hi"}).status_code == 404
        assert app.state.chat.store.count() == 2
        last = http.post(f"/chat/{a}", json={"message": "from the 80s"}).json()
        assert last["done"] and last["turns_left"] == 0 and "last of" in last["text"]
        over = http.post(f"/chat/{a}", json={"message": "more"})
        assert over.status_code == 409 and over.json()["field"] == "session_id"
        time.sleep(1.7)                                      # idle longer than allowed
        assert http.post(f"/chat/{c}", json={"message": "hi"}).status_code == 404


def test_two_apps_on_one_store_continue_each_others_sessions(artifacts, tmp_path):
    """What ``--workers N`` needs: any process may get a session's next message."""
    with LiveServer(chat_app(artifacts, tmp_path)) as one, \
            LiveServer(chat_app(artifacts, tmp_path)) as two:
        sid = httpx.post(one.url + "/chat", json={"user_id": "2"}).json()["session_id"]
        httpx.post(f"{two.url}/chat/{sid}", json={"message": "a comedy"}).raise_for_status()
        r = httpx.post(f"{one.url}/chat/{sid}", json={"message": "from the 90s"}).json()
        assert r["wishes"] == {"genre": ["Comedy"], "decade": ["1990s"]} and r["turn"] == 2


def _children(pid: int) -> set[int]:
    path = f"/proc/{pid}/task/{pid}/children"
    return {int(x) for x in open(path).read().split()} if os.path.exists(path) else set()


def test_sessions_outlive_the_workers_of_a_multi_worker_server(serve_run, artifacts, tmp_path):
    """``llmrec serve --workers 2``: a session started, both workers SIGKILLed and replaced,
    the conversation goes on (its state was never in a worker's memory)."""
    (tmp_path / "serve.toml").write_text(f'chat_store = "{tmp_path / "chat.sqlite"}"\n'
                                         'encoder = "hashing"\n')
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "llmrec", "-q", "serve", str(serve_run), "--port", str(port),
         "--config", str(tmp_path / "serve.toml"), "--workers", "2"],
        env={**os.environ, "TMPDIR": str(tmp_path)}, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def ready(old: set[int]) -> set[int]:
        deadline = time.monotonic() + 120
        while True:
            kids = _children(server.pid) - old
            try:
                if len(kids) == 2 and httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    return kids
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.communicate()[1]
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)

    try:
        first = ready(set())
        sid = httpx.post(url + "/chat", json={"user_id": "3"}).json()["session_id"]
        httpx.post(f"{url}/chat/{sid}", json={"message": "a comedy"}).raise_for_status()
        for pid in first:
            os.kill(pid, signal.SIGKILL)
        ready(first)                                  # two new workers, none of the old
        r = httpx.post(f"{url}/chat/{sid}", json={"message": "from the 90s"}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["wishes"] == {"genre": ["Comedy"], "decade": ["1990s"]}
        if r.json()["items"]:
            check_cards(artifacts.dataset, r.json()["items"], "Comedy", 1990)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def test_the_store_location_and_its_errors(artifacts, tmp_path):
    from llmrec.errors import ConfigError
    from llmrec.serve._chat import open_store

    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    bad = replace(artifacts, config=replace(artifacts.config,
                                            chat_store=str(blocked / "chat.sqlite")))
    with pytest.raises(ConfigError, match="chat_store") as e:
        open_store(bad)
    assert str(blocked / "chat.sqlite") in str(e.value) and "\n" not in str(e.value)
    # a run folder where nothing can be created (here: a file in its place, which stops root
    # too): the server still starts, sessions go to a temporary file named after the process
    from llmrec.runs import LoadedRun

    r = artifacts.run
    run = LoadedRun(blocked, r.config, r.dataset, r.split, r.model)
    store = open_store(replace(artifacts, run=run))
    assert store.path.name == f"llmrec-chat-{os.getpid()}.sqlite" and store.count() == 0
    store.path.unlink()


def test_concurrent_messages_to_one_session_are_not_lost(artifacts, tmp_path):
    """Two servers (two event loops, two SQLite connections) on one store, ten messages to one
    session at once: each turn is read-modify-write in one transaction, none is lost."""
    from concurrent.futures import ThreadPoolExecutor

    with LiveServer(chat_app(artifacts, tmp_path)) as one, \
            LiveServer(chat_app(artifacts, tmp_path)) as two:
        sid = httpx.post(one.url + "/chat", json={"user_id": "4"}).json()["session_id"]
        urls = [f"{(one, two)[k % 2].url}/chat/{sid}" for k in range(10)]
        with ThreadPoolExecutor(10) as pool:
            answers = list(pool.map(lambda u: httpx.post(u, json={"message": "a drama"},
                                                         timeout=60), urls))
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
        assert sorted(a.json()["turn"] for a in answers) == list(range(1, 11))
        assert sorted(a.json()["turns_left"] for a in answers) == list(range(10, 20))


def test_chat_memory_carries_a_users_wishes_and_rejections_to_the_next_session(artifacts,
                                                                              tmp_path):
    ds = artifacts.dataset
    with LiveServer(chat_app(artifacts, tmp_path, chat_memory=True)) as server, httpx.Client(
            base_url=server.url, timeout=30) as http:
        sid = http.post("/chat", json={"user_id": "5"}).json()["session_id"]
        http.post(f"/chat/{sid}", json={"message": "a comedy from the 90s"}).raise_for_status()
        shown = http.post(f"/chat/{sid}", json={"message": "something else"}).json()["items"]
        r = http.post(f"/chat/{sid}", json={"message": "no, none of those"}).json()
        assert r["reply_kind"] == "reject" and shown
        turned_down = {c["item_id"] for c in shown}
        http.delete(f"/chat/{sid}")
        again = http.post("/chat", json={"user_id": "5"}).json()
        assert "Last time you liked: genre Comedy; decade 1990s" in again["text"]
        assert again["wishes"] == {"genre": ["Comedy"], "decade": ["1990s"]}
        assert again["items"] and not turned_down & {c["item_id"] for c in again["items"]}
        check_cards(ds, again["items"], "Comedy", 1990)
        # another user, and an anonymous session, start from nothing
        assert http.post("/chat", json={"user_id": "6"}).json()["wishes"] == {}
        assert http.post("/chat").json()["wishes"] == {}
    assert (tmp_path / "memory.sqlite").exists()
