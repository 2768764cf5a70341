"""The candidate bus (InteRecAgent, Huang et al. 2023, "Recommender AI Agent").

One object holds the current candidate item indices (and, where a retrieval model scored them,
their scores). Tools read it, narrow or replace it and push it back, so item lists pass between
tools by reference and never fill an LLM prompt; what the LLM sees is a count. Each change is
logged as ``(tool, count)``. A tool that fails restores the snapshot it took, so the bus is
unchanged (see :meth:`CandidateBus.snapshot`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class CandidateBus:
    """Current candidates: ``items`` (item indices, best first when ``scores`` is set)."""

    items: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    scores: np.ndarray | None = None           # (len(items),) or None when unscored
    log: list[tuple[str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.items = np.asarray(self.items, dtype=np.int64)

    @classmethod
    def all_items(cls, n_items: int) -> CandidateBus:
        """The whole catalogue, unscored (InteRecAgent's starting state)."""
        return cls(np.arange(n_items, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.items)

    def set(self, tool: str, items: np.ndarray, scores: np.ndarray | None = None) -> None:
        """Replace the candidates (``scores`` aligned with ``items``) and log the step."""
        items = np.asarray(items, dtype=np.int64)
        if scores is not None and len(scores) != len(items):
            raise ValueError("one score per candidate is needed")
        self.items, self.scores = items, None if scores is None else np.asarray(scores)
        self.log.append((tool, len(items)))

    def keep(self, tool: str, mask: np.ndarray) -> None:
        """Narrow to the candidates where ``mask`` is true (order and scores kept)."""
        mask = np.asarray(mask, dtype=bool)
        self.set(tool, self.items[mask], None if self.scores is None else self.scores[mask])

    def top(self, k: int) -> np.ndarray:
        """The first ``k`` candidates (by score when scored, else in bus order)."""
        if self.scores is None:
            return self.items[:k]
        order = np.argsort(-self.scores, kind="stable")[:k]
        return self.items[order]

    def snapshot(self) -> tuple[np.ndarray, np.ndarray | None, int]:
        return self.items, self.scores, len(self.log)

    def restore(self, snap: tuple[np.ndarray, np.ndarray | None, int]) -> None:
        self.items, self.scores, n = snap
        del self.log[n:]

    def describe(self) -> str:
        """Short text for a prompt: the count and where it came from."""
        last = f" (last step: {self.log[-1][0]})" if self.log else ""
        state = "ranked" if self.scores is not None else "unranked"
        return f"{len(self)} {state} candidates on the bus{last}"
