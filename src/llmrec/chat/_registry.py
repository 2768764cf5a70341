"""Typed tools with JSON schemas derived from their signatures (``@tool``, :data:`TOOLS`).

A tool is a plain Python function ``f(ctx: ChatContext, a: int, b: str | None = None) -> str``
whose docstring's first paragraph is the tool's description and whose ``Args:`` section
documents each argument. The input schema is a Pydantic model built from the signature (the
context parameter, found by its name ``ctx``, is left out), as the MCP SDK's ``func_metadata``
does; :meth:`Tool.openai_schema` gives an OpenAI function-calling entry. Arguments may come as
a JSON object text, and a list argument as JSON text (some clients send them that way). The same objects serve
the rule-based policies, an LLM loop and an MCP server.

:meth:`Tool.call` validates the arguments (a JSON string is accepted too), runs the function and
returns a :class:`ToolResult` of short text. A failure (bad arguments, an unknown genre, an
empty result) restores the candidate bus and says so: "... failed: why; candidates unchanged
(n)".
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_type_hints

TOOLS: dict[str, Tool] = {}


class ToolError(Exception):
    """A tool cannot do what was asked (the message is shown to the caller)."""


@dataclass(frozen=True)
class ToolResult:
    tool: str
    ok: bool
    text: str
    data: dict[str, Any] = field(default_factory=dict)


def _arg_docs(doc: str) -> tuple[str, dict[str, str]]:
    """(description, {arg: text}) from a Google-style docstring."""
    head, _, rest = doc.partition("Args:")
    description = " ".join(head.strip().split("\n\n")[0].split())
    args: dict[str, str] = {}
    name = None
    for line in rest.splitlines():
        m = re.match(r"\s{4,}(\w+):\s*(.*)", line)
        if m and len(line) - len(line.lstrip()) <= 8:
            name = m.group(1)
            args[name] = m.group(2).strip()
        elif name and line.strip():
            args[name] += " " + line.strip()
    return description, args


@dataclass
class Tool:
    name: str
    description: str
    fn: Callable[..., str]
    params: list[str]
    input_model: Any                       # a pydantic model class

    def json_schema(self) -> dict[str, Any]:
        schema = self.input_model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        return schema

    def openai_schema(self) -> dict[str, Any]:
        return {"type": "function", "function": {
            "name": self.name, "description": self.description,
            "parameters": self.json_schema()}}

    def call(self, ctx: Any, arguments: dict[str, Any] | str | None = None) -> ToolResult:
        """Validate ``arguments`` and run the tool on ``ctx``; never raises for bad input."""
        from pydantic import ValidationError

        bus = ctx.bus
        snap = bus.snapshot()
        before = len(bus)
        try:
            if isinstance(arguments, str):
                arguments = json.loads(arguments or "{}")
            if not isinstance(arguments, (dict, type(None))):
                raise ValueError("arguments must be a JSON object")
            args = self.input_model.model_validate(_unquote(arguments or {}))
            text = self.fn(ctx, **{p: getattr(args, p) for p in self.params})
        except (ToolError, KeyError, ValidationError, ValueError) as e:
            bus.restore(snap)
            why = (f"bad arguments ({e.error_count()} problem(s): "
                   f"{'; '.join(_short(x) for x in e.errors())})"
                   if isinstance(e, ValidationError) else str(e).strip("'\""))
            ctx.calls.append((self.name, before, before, False))
            return ToolResult(self.name, False,
                              f"{self.name} failed: {why}; candidates unchanged ({before})")
        ctx.calls.append((self.name, before, len(bus), True))
        return ToolResult(self.name, True, text, {"before": before, "after": len(bus)})


def _unquote(arguments: dict[str, Any]) -> dict[str, Any]:
    """Some clients send a list or object argument as JSON text: parse those first."""
    out = dict(arguments)
    for k, v in out.items():
        if isinstance(v, str) and v.strip()[:1] in ("[", "{"):
            try:
                out[k] = json.loads(v)
            except ValueError:
                pass                        # an ordinary string that starts with a bracket
    return out


def _short(err: dict[str, Any]) -> str:
    where = ".".join(str(x) for x in err.get("loc", ())) or "arguments"
    return f"{where}: {err.get('msg', 'invalid')}"


def tool(fn: Callable[..., str]) -> Callable[..., str]:
    """Register ``fn`` in :data:`TOOLS` under its name, with a schema from its signature."""
    from pydantic import ConfigDict, Field, create_model

    sig = inspect.signature(fn)
    hints = get_type_hints(fn)
    description, docs = _arg_docs(inspect.getdoc(fn) or "")
    if not description:
        raise TypeError(f"tool {fn.__name__} needs a docstring (its description)")
    fields: dict[str, Any] = {}
    params = []
    for name, p in sig.parameters.items():
        if name == "ctx":
            continue
        if name.startswith("_"):
            raise TypeError(f"tool {fn.__name__}: parameter {name!r} starts with '_'")
        if name not in docs:
            raise TypeError(f"tool {fn.__name__}: argument {name!r} is not documented")
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[name] = (hints[name], Field(default, description=docs[name]))
        params.append(name)
    model = create_model(f"{fn.__name__}_args", __config__=ConfigDict(extra="forbid"), **fields)
    TOOLS[fn.__name__] = Tool(fn.__name__, description, fn, params, model)
    return fn
