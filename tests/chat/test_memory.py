"""Entity memory: a real SQLite file, written by one process and read by another; latest
sentiment wins; a second session never re-recommends what the first one had rejected."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from llmrec.chat import EntityMemory, TopKPolicy, TreePolicy, run_episode

WRITER = """
import sys
from llmrec.chat import EntityMemory
with EntityMemory(sys.argv[1]) as m:
    m.record("196", "s1", 1, [("attribute", "genre", "Drama", "like"),
                              ("item", "-", "50", "dislike"), ("item", "-", "181", "dislike")])
    m.record("196", "s2", 1, [("item", "-", "50", "like")])
    m.record("7", "s1", 2, [("attribute", "decade", "1970s", "dislike")])
"""


def test_memory_persists_across_processes_and_the_latest_sentiment_wins(tmp_path):
    path = tmp_path / "memory.sqlite"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", WRITER, str(path)], check=True, env=env, timeout=60)
    with EntityMemory(path) as m:
        assert m.items("196", "dislike") == ["181"] and m.items("196", "like") == ["50"]
        assert m.attributes("196") == {"genre": {"Drama": "like"}}
        assert m.attributes("7") == {"decade": {"1970s": "dislike"}}
        assert m.sessions("196") == ["s1", "s2"] and m.items("nobody", "like") == []
        with pytest.raises(ValueError):
            m.record("196", "s3", 1, [("item", "-", "1", "meh")])
    with EntityMemory(path) as m:                    # the refused entry left nothing behind
        assert m.sessions("196") == ["s1", "s2"]


def test_a_second_session_starts_from_memory(world, tmp_path):
    with EntityMemory(tmp_path / "m.sqlite") as memory:
        misses = 0
        for user, history, target in world.test_users()[:12]:
            one = run_episode(world, TopKPolicy(), user, history, target, max_turns=2,
                              memory=memory, session="s1")
            if one["hit"]:
                continue
            misses += 1
            rejected = set(memory.items(user, "dislike"))
            shown_one = {i for x in one["transcript"] for i in x["items"]}
            assert rejected == shown_one and len(rejected) == 20
            known = memory.attributes(user)
            two = run_episode(world, TreePolicy(), user, history, target, max_turns=3,
                              memory=memory, session="s2")
            shown_two = {i for x in two["transcript"] for i in x["items"]}
            assert shown_two and not shown_two & rejected
            asked = [x["text"] for x in two["transcript"] if x["speaker"] == "agent"]
            if "genre" in known:             # stated in session 1: not asked again
                assert "Which genres are you in the mood for?" not in asked
        assert misses >= 6
