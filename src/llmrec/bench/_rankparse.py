"""LLMRank's answer parser, bootstrap aggregation and candidate-based metrics (pure functions).

Candidates are shown to the LLM as ``[1] Title (year)`` ... ``[n] Title (year)`` and the answer
is read back into *presented positions* (0-based), in the order the LLM ranked them:

1. a JSON answer (``{"ranking": [3, 1, ...]}`` or a bare list) is read as candidate numbers;
2. otherwise, per line (a one-line answer is cut at commas/semicolons), the first of:
   bracketed numbers ``[7]``; a candidate title (normalised: lower case, no year, no
   punctuation, "Matrix, The" -> "the matrix"; an exact substring first, then a close fuzzy
   match, difflib ratio >= ``FUZZY_CUTOFF``); a bare number, only if the line holds nothing
   but numbers (``"7, 3, 12"``) -- so "1. Heat (1995)" is Heat, not candidate 1.

Repeats keep their first place; numbers outside ``1..n`` are counted as ``invalid``. An answer
naming no candidate gives an empty list (counted by the caller, never raised).
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FUZZY_CUTOFF = 0.85
_YEAR = re.compile(r"\(\s*\d{4}\s*\)")
_ARTICLE = re.compile(r"^(.*), (the|a|an|les|la|le|il|das|der|die|el)$")
_BRACKET = re.compile(r"\[\s*(\d{1,4})\s*\]")
_NUMBER = re.compile(r"\d{1,4}")
_NUMBERS_ONLY = re.compile(r"^[\s\d,;.)(\[\]#:-]*$")
_LEAD = re.compile(r"^\s*(?:[-*\u2022#]+|\d{1,3}[.):]|rank\s*\d+[.):]?)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Parsed:
    """Presented positions the answer ranked, best first (distinct), and the count of numbers
    that named no candidate."""

    order: tuple[int, ...]
    invalid: int = 0


def normalise_title(title: str) -> str:
    """``"Matrix, The (1999)"`` -> ``"the matrix"``."""
    t = _YEAR.sub(" ", title.lower()).strip()
    t = " ".join(t.split())
    m = _ARTICLE.match(t)
    if m:
        t = f"{m.group(2)} {m.group(1)}"
    t = re.sub(r"[^\w ]+", " ", t)
    return " ".join(t.split())


def parse_ranking(text: str, titles: Sequence[str]) -> Parsed:
    """The ranking an answer gives over ``titles`` (the candidates as presented)."""
    n = len(titles)
    order: list[int] = []
    invalid = 0

    def take(number: int) -> None:
        nonlocal invalid
        if 1 <= number <= n:
            if number - 1 not in order:
                order.append(number - 1)
        else:
            invalid += 1

    data = _json(text)
    if data is not None:
        for v in data:
            if isinstance(v, bool) or not isinstance(v, (int, str)):
                invalid += 1
            elif isinstance(v, int) or v.strip().strip("[]").isdigit():
                take(int(v) if isinstance(v, int) else int(v.strip().strip("[]")))
            else:
                pos = match_title(v, titles)
                if pos is None:
                    invalid += 1
                elif pos not in order:
                    order.append(pos)
        return Parsed(tuple(order), invalid)
    norm = [normalise_title(t) for t in titles]
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) == 1:
        lines = re.split(r"[,;]", lines[0])
    for line in lines:
        brackets = _BRACKET.findall(line)
        if brackets:
            for b in brackets:
                take(int(b))
            continue
        found = _titles_in(line, norm)
        if found:
            for pos in found:
                if pos not in order:
                    order.append(pos)
            continue
        if _NUMBERS_ONLY.match(line):
            for num in _NUMBER.findall(line):
                take(int(num))
    return Parsed(tuple(order), invalid)


def match_title(text: str, titles: Sequence[str]) -> int | None:
    """The presented position whose title ``text`` names (exact normalised, then fuzzy)."""
    found = _titles_in(text, [normalise_title(t) for t in titles])
    return found[0] if found else None


def _titles_in(line: str, norm: Sequence[str]) -> list[int]:
    """Positions of the titles a line names, in the order they appear in it."""
    text = normalise_title(_LEAD.sub("", line))
    if not text:
        return []
    hits: list[tuple[int, int]] = []          # (where in the line, position)
    for pos, t in enumerate(norm):
        if t and re.search(rf"(?<!\w){re.escape(t)}(?!\w)", text):
            hits.append((text.index(t), pos))
    # a title that is part of a longer matched title ("heat" in "heat wave") does not count
    hits = [(w, p) for w, p in hits
            if not any(p != q and norm[p] in norm[q] and w2 <= w < w2 + len(norm[q])
                       for w2, q in hits)]
    if hits:
        return [p for _, p in sorted(hits)]
    close = difflib.get_close_matches(text, list(norm), n=1, cutoff=FUZZY_CUTOFF)
    return [list(norm).index(close[0])] if close else []


def _json(text: str) -> list | None:
    """A JSON list (bare, or the first list value of an object), else None."""
    s = text.strip()
    if s.startswith("```"):
        s = s.strip("`").removeprefix("json").strip()
    if not s.startswith(("[", "{")):
        return None
    try:
        data = json.loads(s)
    except ValueError:
        return None
    if isinstance(data, dict):
        data = next((v for v in data.values() if isinstance(v, list)), None)
    if isinstance(data, list) and not all(isinstance(v, list) for v in data):
        return data
    return None


# -- bootstrapping ---------------------------------------------------------------------------
def aggregate_rankings(rankings: Sequence[Sequence[int]], n: int, fallback: Sequence[int],
              method: str = "borda") -> list[int]:
    """One final order of candidates ``0..n-1`` from B rankings (each: candidate indices,
    best first, possibly partial). ``borda``: rank r earns n - r points; ``rr``: 1 / (r + 1);
    a candidate a ranking does not name earns 0 from it. Ties (e.g. all unnamed) keep the
    ``fallback`` order (the retrieval model's)."""
    if method not in ("borda", "rr"):
        raise ValueError(f"aggregation must be 'borda' or 'rr', not {method!r}")
    points = np.zeros(n)
    for ranking in rankings:
        for r, c in enumerate(ranking):
            points[c] += (n - r) if method == "borda" else 1.0 / (r + 1)
    tie = {c: i for i, c in enumerate(fallback)}
    return sorted(range(n), key=lambda c: (-points[c], tie[c]))


# -- candidate-based metrics -----------------------------------------------------------------
def rank_metrics(rank: int, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Metrics of one user whose single positive sits at 0-based ``rank`` of the list:
    ndcg@10 (1 / log2(rank + 2) inside the top 10), recall@k (= hit@k with one positive), mrr."""
    out = {"ndcg@10": 1.0 / math.log2(rank + 2) if rank < 10 else 0.0}
    for k in ks:
        out[f"recall@{k}"] = float(rank < k)
    out["mrr"] = 1.0 / (rank + 1)
    return out


def mean_metrics(ranks: Sequence[int], ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Per-user :func:`rank_metrics` averaged over users."""
    if not ranks:
        return {}
    rows = [rank_metrics(r, ks) for r in ranks]
    return {k: float(np.mean([row[k] for row in rows])) for k in rows[0]}


def expected_random(n: int, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """The metrics of a uniformly random order of ``n`` candidates (exact expectation)."""
    return {k: float(np.mean([rank_metrics(r, ks)[k] for r in range(n)]))
            for k in rank_metrics(0, ks)}
