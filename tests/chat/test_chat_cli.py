"""``llmrec chat`` as a real subprocess fed through a pipe, on a real ML-100K run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

ROW = re.compile(r"^\s+(\d+)\s{2}(\S+)\s{2}(.+?)\s{2,}(\d{4}|-)\s{2}(.*)$")


def chat(run, *args: str, lines: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmrec", "--quiet", "chat", str(run), *args],
                          input="".join(x + "\n" for x in lines), capture_output=True,
                          text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def tables(stdout: str) -> list[list[str]]:
    """Item ids of every recommendation table printed, in order."""
    out: list[list[str]] = []
    for line in stdout.splitlines():
        if line.startswith("  #  item"):
            out.append([])
        elif out and (m := ROW.match(line)):
            out[-1].append(m.group(2))
    return out


def test_a_piped_conversation_recommends_what_was_asked_for(chat_run, world):
    proc = chat(chat_run, "--user", "196", lines=["I want a comedy", "from the 90s", "/quit"])
    assert proc.returncode == 0, proc.stderr
    shown = tables(proc.stdout)
    assert shown and len(shown[-1]) == 5, proc.stdout
    cat = world.catalog
    for item in shown[-1]:
        i = cat.index(item)
        assert "Comedy" in cat.values("genre", i) and 1990 <= cat.years[i] <= 1999, item
    assert "(understood: genre = Comedy)" in proc.stdout
    assert proc.stdout.rstrip().endswith("agent> Bye!")
    assert "Traceback" not in proc.stderr


def test_memory_carries_rejections_to_the_next_session(chat_run, world, tmp_path):
    from llmrec.chat import EntityMemory

    db = tmp_path / "memory.sqlite"
    one = chat(chat_run, "--user", "196", "--memory", str(db),
               lines=["a comedy", "from the 90s", "no, none of those", "/quit"])
    assert one.returncode == 0, one.stderr
    first, second = tables(one.stdout)[-2:]
    with EntityMemory(db) as memory:
        assert set(memory.items("196", "dislike")) == set(first)
        assert memory.attributes("196") == {"genre": {"Comedy": "like"},
                                            "decade": {"1990s": "like"}}
    # a new session (ended by end of input): it remembers the wishes, never re-offers
    two = chat(chat_run, "--user", "196", "--memory", str(db), lines=["what else?"])
    assert two.returncode == 0, two.stderr
    assert "Last time you liked: genre Comedy; decade 1990s" in two.stdout
    assert "the 5 movies you turned down before" in two.stdout
    offered = [i for t in tables(two.stdout) for i in t]
    assert offered and not set(offered) & set(first)
    cat = world.catalog
    assert all("Comedy" in cat.values("genre", cat.index(i)) for i in offered)


def test_bad_input_is_one_line_and_ctrl_c_ends_cleanly(chat_run, capsys):
    from llmrec.cli import main

    # in-process (the same main() as the command; no interpreter start-up)
    assert main(["-q", "chat", str(chat_run), "--user", "no-such-user"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "user 'no-such-user' is not a test user" in err
    assert main(["-q", "chat", str(chat_run), "--memory"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--memory" in err

    proc = subprocess.Popen([sys.executable, "-m", "llmrec", "--quiet", "chat", str(chat_run)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        assert proc.stdout.readline().startswith("agent> Hi!")   # waiting for the user now
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "agent> Bye!" in out and "Traceback" not in err
