"""LLM knowledge: item facts and user preferences per factor, in a resumable SQLite store.

KAR/REKI factorization prompting (the scenario's factors first, then one prompt per item and
per user), individual or collective (clustered) user extraction, and LIBER incremental updates
(partition summaries folded into a profile). Templates are versioned TOML files in
``templates/``. User prompts see only the training part of the split.

    >>> from llmrec.knowledge import KnowledgeConfig, KnowledgeStore, generate_knowledge
    >>> from llmrec.llm import make_backend
    >>> llm = make_backend("local", parallel=4, threads=1)                   # doctest: +SKIP
    >>> summary = generate_knowledge(dataset, split, llm, KnowledgeConfig(mode="individual"))
    >>> store = KnowledgeStore(summary.store)
    >>> store.get_item("1").text, store.get_user("196").text
    >>> texts = store.export("item")          # {item id: text}, for the encoder stage
"""

from ._collective import behaviour_vectors, cluster_users
from ._facts import ItemFacts, display_titles
from ._generate import MODES, KnowledgeConfig, KnowledgeSummary, generate_knowledge
from ._history import LeakError, Rendered, TrainHistory
from ._runner import Interrupted, Job, Runner, RunStats
from ._store import KnowledgeStore, Record, default_store_path, stored_item_knowledge
from ._templates import (CONSTRAINTS, MalformedOutput, Template, load_templates,
                         read_template, read_template_fields)

__all__ = [
    "CONSTRAINTS", "MODES", "Interrupted", "ItemFacts", "Job", "KnowledgeConfig", "KnowledgeStore",
    "KnowledgeSummary", "LeakError", "MalformedOutput", "Record", "Rendered", "RunStats",
    "Runner", "Template", "TrainHistory", "behaviour_vectors", "cluster_users",
    "default_store_path", "display_titles", "generate_knowledge", "load_templates",
    "read_template", "read_template_fields", "stored_item_knowledge",
]
