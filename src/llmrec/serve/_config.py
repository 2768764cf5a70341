"""The service's configuration: channels, weights, limits, ranking, security.

Read from an optional TOML file (``llmrec serve RUN --config serve.toml``) with the same checks
as every llmrec config (unknown keys and wrong types are refused with one line)::

    weights = { sequential = 1.0, ann = 0.5, popularity = 0.1 }
    candidates = 100          # per channel, before fusion
    item_vectors = "text"     # ANN space: "text" (encoded knowledge / metadata) or "model"
    encoder = "minilm"        # "minilm" (packaged sentence encoder) or "hashing"
    index = "auto"            # "flat" (exact), "hnsw" (FAISS, approximate), "auto": flat up to
                              # 10,000 items (exact and faster there), else hnsw
    ranker = "auto"           # "auto": CTR model if the run has one and ranker_weight > 0
    ranker_weight = 0.3       # blend of the CTR score with the fused retrieval score
    diversity = 0.0           # default MMR strength, 0 = off (a request may set its own)
    max_body_bytes = 1000000  # request bodies over this get 413 (bytes counted as they arrive)
    body_timeout = 10.0       # seconds for a whole request body to arrive, else 408
    batch_window_ms = 2.0     # longest wait to batch concurrent forwards; 0 = no batching
    chat_strategy = "tree"    # chat sessions (POST /chat): "tree", "topk" or "off"
    chat_max_sessions = 1000  # live chat sessions; one more evicts the least recently active
    chat_max_turns = 20       # agent turns per chat session
    chat_idle_seconds = 1800  # a chat session without a message this long expires
    chat_memory = false       # true: known users' entity memory across chat sessions
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..config import from_dict, read_toml
from ..errors import ConfigError

CHANNELS = ("sequential", "ann", "popularity")
# index = "auto": exact search up to this many items (one matrix-vector product: about 70 us
# for 1,349 x 384 on one core, against 160-220 us for FAISS HNSW with an id selector)
EXACT_MAX_ITEMS = 10_000


@dataclass
class ServeConfig:
    weights: dict[str, float] = field(default_factory=lambda: {
        "sequential": 1.0, "ann": 0.5, "popularity": 0.1})
    candidates: int = 100
    item_vectors: Literal["text", "model"] = "text"
    encoder: Literal["minilm", "hashing"] = "minilm"
    index: Literal["auto", "hnsw", "flat"] = "auto"
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    prestore_users: bool = True      # score known users' stored histories once, at load
    prestore_max_mb: int = 1024      # ... unless users x items x 4 bytes is larger
    ann_history: int = 20            # most recent history items that form the ANN query
    ranker: Literal["auto", "fused", "ctr"] = "auto"
    # final = (1 - w) * minmax(fused) + w * minmax(ctr) over the candidates (w = 1: CTR order).
    # None: 0 for "auto" (an untuned CTR model is not used: on ML-100K the rating-trained DIN
    # served NDCG@10 0.019 against 0.096 for the retrieval model alone; see
    # docs/results/serving-quality.md), 1 for "ctr". `llmrec tune-serving` writes a tuned value.
    ranker_weight: float | None = None
    diversity: float = 0.0
    max_n: int = 100
    max_history: int = 1000
    max_body_bytes: int = 1_000_000
    body_timeout: float = 10.0       # seconds for a whole request body to arrive, else 408
    explanation_chars: int = 160
    batch_window_ms: float = 2.0     # micro-batching of concurrent forwards (see _batch.py)
    batch_max: int = 32
    api_key: str | None = None       # set from --api-key-env; never written to disk
    # chat sessions (POST /chat, see _chat.py): the strategy ("off": no chat routes), items
    # per recommendation, the caps, and the SQLite file shared by the workers
    chat_strategy: Literal["tree", "topk", "off"] = "tree"
    chat_k: int = 5
    chat_max_sessions: int = 1000    # one more evicts the least recently active
    chat_max_turns: int = 20         # agent turns per session
    chat_idle_seconds: float = 1800.0
    chat_max_message: int = 500      # characters per message
    chat_store: str | None = None    # default RUN_DIR/serve-state/chat.sqlite
    chat_memory: bool = False        # known users' entity memory across sessions (memory.sqlite)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.weights) - set(CHANNELS))
        if unknown:
            raise ConfigError(f"weights.{unknown[0]}: unknown channel; channels are "
                              f"{', '.join(CHANNELS)}")
        for name, w in self.weights.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not w >= 0 \
                    or w == float("inf"):
                raise ConfigError(f"weights.{name} must be a number >= 0, not {w!r}")
        self.weights = {c: float(self.weights.get(c, 0.0)) for c in CHANNELS}
        if not any(self.weights.values()):
            raise ConfigError("weights: at least one channel needs a weight > 0")
        for name in ("candidates", "hnsw_m", "hnsw_ef_search", "ann_history", "max_n",
                     "max_history", "max_body_bytes", "explanation_chars",
                     "prestore_max_mb", "batch_max", "chat_k", "chat_max_sessions",
                     "chat_max_turns", "chat_max_message"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, not {getattr(self, name)}")
        if not 0 < self.body_timeout <= 3600:
            raise ConfigError(f"body_timeout must be in (0, 3600] seconds, not "
                              f"{self.body_timeout}")
        if not 0 < self.chat_idle_seconds <= 7 * 86400:
            raise ConfigError(f"chat_idle_seconds must be in (0, 604800], not "
                              f"{self.chat_idle_seconds}")
        if not 0.0 <= self.batch_window_ms <= 100.0:
            raise ConfigError(f"batch_window_ms must be in [0, 100], not {self.batch_window_ms}")
        if self.ranker_weight is not None and not 0.0 <= self.ranker_weight <= 1.0:
            raise ConfigError(f"ranker_weight must be in [0, 1], not {self.ranker_weight}")
        if not 0.0 <= self.diversity <= 1.0:
            raise ConfigError(f"diversity must be in [0, 1], not {self.diversity}")

    def index_kind(self, n_items: int) -> str:
        """The ANN search in force for ``n_items`` items: "flat" or "hnsw" (see ``index``)."""
        if self.index != "auto":
            return self.index
        return "flat" if n_items <= EXACT_MAX_ITEMS else "hnsw"

    @property
    def ctr_weight(self) -> float:
        """The blend weight in force (see ``ranker_weight``)."""
        if self.ranker == "fused":
            return 0.0
        if self.ranker_weight is not None:
            return self.ranker_weight
        return 1.0 if self.ranker == "ctr" else 0.0

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> ServeConfig:
        raw: dict[str, Any] = read_toml(path) if path else {}
        raw.update({k: v for k, v in overrides.items() if v is not None})
        return from_dict(cls, raw, "serve")


def parse_weights(text: str) -> dict[str, float]:
    """``"sequential=1,ann=0.5"`` -> mapping (channels left out get weight 0)."""
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ConfigError(f"--weights expects CHANNEL=NUMBER[,...] with channels "
                              f"{', '.join(CHANNELS)}; not {text!r}")
    return out
