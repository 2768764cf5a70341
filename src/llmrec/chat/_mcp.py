"""The chat tools as a Model Context Protocol server (``llmrec mcp RUN``).

Any MCP client (an IDE assistant, Claude Desktop, an agent framework) can then search the
catalogue, retrieve and rank candidates with the trained model, look items up and exclude
items -- the same :data:`~llmrec.chat.TOOLS` objects the rule-based strategies and the
evaluation call, with the same JSON schemas (derived once from each tool's signature), over
the official SDK's :class:`mcp.server.mcpserver.MCPServer`.

One server process is one conversation: it holds one :class:`ChatContext` whose candidate bus
starts as the whole catalogue. ``user`` (a raw user id of the run's data) gives the tools that
user's known history -- training and validation events, never the test item -- so retrieval is
personal and seen items can be excluded. Two tools exist only here, because an MCP client sees
no bus: ``show_candidates`` lists the current candidates with titles, and ``feedback`` records
what the person said about an item (liked items join the retrieval history, rejected ones are
excluded).

A tool that fails answers with ``isError`` and the tool's one-line reason; the bus is unchanged.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal, get_type_hints


from ..errors import LlmrecError
from ._bus import CandidateBus
from ._registry import TOOLS, Tool
from ._tools import ChatContext


def _tool_error(message: str) -> Exception:
    """The SDK's ToolError: the client gets ``isError`` and the message (any other exception
    counts as a crash and its text is withheld)."""
    from mcp.server.mcpserver.exceptions import ToolError

    return ToolError(message)


def _mcp_function(tool: Tool, ctx: ChatContext) -> Any:
    """A function with the tool's own parameters (no ``ctx``) that calls it on ``ctx``; the
    MCP SDK reads the schema from its signature and annotations."""
    hints = get_type_hints(tool.fn)
    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints[name])
              for name, p in inspect.signature(tool.fn).parameters.items() if name != "ctx"]

    def call(**arguments: Any) -> str:
        result = tool.call(ctx, arguments)
        if not result.ok:
            raise _tool_error(result.text)
        return result.text

    call.__name__ = tool.name
    call.__doc__ = tool.description
    call.__signature__ = inspect.Signature(params, return_annotation=str)  # type: ignore
    call.__annotations__ = {p.name: hints[p.name] for p in params} | {"return": str}
    return call


def conversation_context(world: Any, user: str | None = None) -> ChatContext:
    """A fresh conversation over ``world`` (:class:`~llmrec.chat.ChatWorld`), for ``user``
    (raw id; its known history: everything before its test item) or anonymous."""
    history: list[int] = []
    if user is not None:
        known = {u: h for u, h, _ in world.test_users()}
        if user not in known:
            raise LlmrecError(f"--user {user!r} is not a test user of {world.dataset.name} "
                              f"(e.g. {', '.join(list(known)[:3])})")
        history = list(known[user])
    cat = world.catalog
    return ChatContext(cat, world.retriever, CandidateBus.all_items(cat.n_items), history)


def build_server(world: Any, user: str | None = None) -> Any:
    """An :class:`mcp.server.mcpserver.MCPServer` exposing every chat tool on one
    conversation over ``world``; run it with ``server.run("stdio")``."""
    try:
        from mcp.server.mcpserver import MCPServer
    except ImportError:
        raise LlmrecError("the MCP server needs the mcp package: pip install 'llmrec[mcp]'") \
            from None
    ctx = conversation_context(world, user)
    cat = ctx.catalog
    server = MCPServer(
        name="llmrec",
        instructions=(f"Recommend items of {world.dataset.name} ({cat.n_items} items) in a "
                      "conversation. Candidates live on a bus that the tools narrow and rank; "
                      "call show_candidates to see them. "
                      + (f"The person is user {user}." if user else "The person is anonymous.")))
    for tool in TOOLS.values():
        server.add_tool(_mcp_function(tool, ctx), name=tool.name, description=tool.description)

    def show_candidates(n: int = 10) -> str:
        """The current candidates, best first: item id, title, year and score.

        Args:
            n: how many to show (1-100)
        """
        if not 1 <= n <= 100:
            raise _tool_error(f"n must be between 1 and 100, got {n}")
        bus = ctx.bus
        if not len(bus):
            return "no candidates"
        top = bus.top(n)
        score = (dict(zip(bus.items.tolist(), bus.scores.tolist()))
                 if bus.scores is not None else {})
        lines = [f"{bus.describe()}; showing {len(top)}:"]
        for i in top.tolist():
            s = f"  score {score[i]:.3f}" if i in score else ""
            lines.append(f"[{cat.item_ids[i]}] {cat.display(i)}{s}")
        return "\n".join(lines)

    def feedback(item_id: str, sentiment: Literal["liked", "rejected"]) -> str:
        """Record what the person said about an item: liked items join the history that
        retrieval uses, rejected items are taken off the candidates and never retrieved again.

        Args:
            item_id: the item's raw id
            sentiment: "liked" or "rejected"
        """
        try:
            i = cat.index(item_id)
        except KeyError:
            raise _tool_error(f"unknown item id {item_id!r}") from None
        if sentiment == "liked":
            ctx.rejected.discard(i)
            if i not in ctx.liked:
                ctx.liked.append(i)
        else:
            if i in ctx.liked:
                ctx.liked.remove(i)
            ctx.rejected.add(i)
        before = len(ctx.bus)
        ctx.bus.keep("feedback", ctx.bus.items != i)
        return (f"Noted: {sentiment} {cat.display(i)}. Before: {before} candidates, "
                f"after: {len(ctx.bus)}.")

    server.add_tool(show_candidates)
    server.add_tool(feedback)
    return server


def served_tool_names() -> list[str]:
    """The tools an ``llmrec mcp`` server lists."""
    return [*TOOLS, "show_candidates", "feedback"]


__all__ = ["build_server", "conversation_context", "served_tool_names"]

