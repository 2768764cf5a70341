"""``llmrec mcp``: the chat tools over the real MCP protocol (the SDK's stdio client talking to
the server in a subprocess), on a real ML-100K run."""

from __future__ import annotations

import os
import sys

import anyio
import pytest

pytest.importorskip("mcp")

from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402


def text_of(result) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "text", None))


def ids_shown(result) -> list[str]:
    return [ln[1:ln.index("]")] for ln in text_of(result).splitlines()[1:]]


def test_an_mcp_client_lists_the_tools_and_runs_a_conversation(chat_run, world):
    from llmrec.chat import TOOLS, served_tool_names

    user, history, target = world.test_users()[0]
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "llmrec", "--quiet", "mcp", str(chat_run),
                                      "--user", user],
        env={**os.environ, "OMP_NUM_THREADS": "1"})

    async def conversation():
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                out = {"listed": await s.list_tools(),
                       "retrieved": await s.call_tool("retrieve_candidates", {"n": 200}),
                       "searched": await s.call_tool("search_items", {"genres": ["Comedy"]}),
                       "shown": await s.call_tool("show_candidates", {"n": 100}),
                       "failed": await s.call_tool("search_items",
                                                   {"genres": ["No Such Genre"]}),
                       "bad_args": await s.call_tool("show_candidates", {"n": "many"})}
                first = ids_shown(out["shown"])[0]
                out["noted"] = await s.call_tool("feedback", {"item_id": first,
                                                              "sentiment": "rejected"})
                out["after"] = await s.call_tool("show_candidates", {"n": 100})
                return out

    out = anyio.run(conversation)
    tools = {t.name: t for t in out["listed"].tools}
    assert set(tools) == set(served_tool_names())
    # the schema the client sees is the one the tool derives from its signature
    schema = tools["search_items"].input_schema
    assert set(schema["properties"]) == set(TOOLS["search_items"].json_schema()["properties"])

    assert not out["retrieved"].is_error and "after: 200" in text_of(out["retrieved"])
    assert not out["searched"].is_error
    after = int(text_of(out["searched"]).rsplit("after: ", 1)[1].rstrip("."))
    assert 0 < after < 200
    shown = ids_shown(out["shown"])
    assert len(shown) == min(after, 100)
    cat = world.catalog
    for raw in shown:                        # every candidate is an unseen comedy
        i = cat.index(raw)
        assert "Comedy" in cat.values("genre", i) and i not in history
    # a failed tool and bad arguments answer isError with a reason; the bus is unchanged
    assert out["failed"].is_error and "candidates unchanged" in text_of(out["failed"])
    assert out["bad_args"].is_error
    assert not out["noted"].is_error and "rejected" in text_of(out["noted"])
    assert ids_shown(out["after"])[:len(shown) - 1] == shown[1:]    # the rest keep their order
    assert shown[0] not in ids_shown(out["after"])


def test_mcp_refuses_an_unknown_user_in_one_line(chat_run):
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "llmrec", "mcp", str(chat_run), "--user",
                           "no-such-user"], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no-such-user" in lines[0] and "Traceback" not in proc.stderr
