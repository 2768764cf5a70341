"""Conversational recommendation: typed tools, a candidate bus, strategies, a leak-safe
simulated user and the evaluation over them (issue #20).

    >>> from llmrec.chat import ChatWorld, TreePolicy, evaluate
    >>> world = ChatWorld.from_run("runs/sasrec-ml-100k")                   # doctest: +SKIP
    >>> metrics = evaluate(world, TreePolicy(), users=200, max_turns=5, k=10,
    ...                    out="chat-eval/tree")                              # doctest: +SKIP
    >>> metrics["hit"]["5"], metrics["average_turns"], metrics["leaks"]      # doctest: +SKIP

Tools (:data:`TOOLS`, each with ``json_schema()`` / ``openai_schema()`` and ``call(ctx, args)``)
work on a :class:`ChatContext`, whose :class:`CandidateBus` carries the item ids between them.
A :class:`Strategy` maps a :class:`ChatState` to an :data:`Action`
(:class:`Ask` / :class:`Recommend` / :class:`ChitChat`): :class:`TreePolicy`, :class:`TopKPolicy`,
and the LLM's :class:`InteRecAgent` (plan-first, ``InteRecAgent(make_backend("local"))``), which
can read a :class:`GeneralMemory` mined from the training split, :class:`MACRS` (responder
agents, a planner, reflection) and :class:`ToolRec` (the LLM as the user's surrogate choosing
retrieval tools round by round); the three share :class:`JsonCaller`.

A :class:`ChatSession` is one conversation with a person (``llmrec chat``, the web chat panel
of ``llmrec serve``): :func:`understand` reads typed text into the same :class:`UserReply`
the strategies get from the simulated user.
"""

from . import _tools  # noqa: F401  (registers the tools)
from ._bus import CandidateBus
from ._catalog import ATTRIBUTES, Catalog, normalize, title_core
from ._freetext import find_decade, find_genres, understand
from ._general_memory import GeneralMemory
from ._interec import (PROMPT_VERSION, InteRecAgent, native_tools, parse_plan, plan_from_calls,
                       plan_schema)
from ._llmcall import JsonCaller, PlanError, compact_grammar, parse_json
from ._evaluate import (ChatWorld, evaluate, memory_entries, recall, run_episode, sample_users,
                        summarize)
from ._mcp import build_server, conversation_context, served_tool_names
from ._macrs import MACRS
from ._memory import EntityMemory
from ._messages import (QUESTIONS, Action, Ask, ChitChat, Recommend, UserReply, parse_agent,
                        parse_reply, render)
from ._policy import STRATEGIES, ChatState, Strategy, TopKPolicy, TreePolicy, answer_entropy
from ._registry import TOOLS, Tool, ToolError, ToolResult, tool
from ._session import ChatSession, ChatTurn, UnknownUser, user_history
from ._simulator import (CheckedUser, LeakChecker, SimulatedUser, distinctive_words,
                         title_document_frequency)
from ._toolrec import ToolRec
from ._tools import ChatContext, Retriever

STRATEGIES["interec"] = InteRecAgent          # needs a backend: InteRecAgent(make_backend(...))
STRATEGIES["macrs"] = MACRS                    # needs a backend too
STRATEGIES["toolrec"] = ToolRec                # needs a backend too

__all__ = [
    "ATTRIBUTES", "Action", "Ask", "CandidateBus", "Catalog", "ChatContext", "ChatSession",
    "ChatState", "ChatTurn", "UnknownUser", "find_decade", "find_genres", "understand",
    "user_history",
    "ChatWorld", "CheckedUser", "ChitChat", "EntityMemory", "GeneralMemory", "InteRecAgent",
    "JsonCaller", "MACRS", "PROMPT_VERSION", "PlanError", "compact_grammar", "parse_json",
    "native_tools", "parse_plan", "plan_from_calls",
    "plan_schema", "LeakChecker", "QUESTIONS",
    "Recommend", "Retriever", "STRATEGIES", "SimulatedUser", "Strategy", "TOOLS", "Tool",
    "ToolError", "ToolRec", "ToolResult", "TopKPolicy", "TreePolicy", "UserReply",
    "answer_entropy",
    "build_server", "conversation_context", "served_tool_names",
    "distinctive_words", "evaluate", "memory_entries", "normalize", "parse_agent", "parse_reply",
    "recall", "render", "run_episode", "sample_users", "summarize", "title_core",
    "title_document_frequency", "tool",
]
