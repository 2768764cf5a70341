"""Train / validation / test splits and the evaluation cases built from them.

A split labels every event of a :class:`Interactions` with a part: 0 train, 1 valid, 2 test.
Along each user's time-ordered sequence the part never decreases, so the history given to a
model (everything labelled before the target's part) never contains the target or anything
after it. :meth:`Split.__post_init__` checks this invariant on every split it builds.

- ``leave_one_out``: last event -> test, second last -> valid, the rest -> train. Users with
  fewer than 3 events keep all of them in train (they are never evaluated).
- ``temporal``: two global cut points in time chosen so that roughly ``valid_fraction`` and
  ``test_fraction`` of all events fall after them. A user's targets are all their distinct
  items inside the part; users with no training events are evaluated from an empty history
  (the cold-start path of every model).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, DataError
from ._interactions import Interactions

TRAIN, VALID, TEST = 0, 1, 2


@dataclass(frozen=True, eq=False)
class EvalCases:
    """What a model sees and what it must find, for a batch of users.

    Case ``k`` is user ``users[k]``, whose input history (time order) is
    ``history_items[history_indptr[k]:history_indptr[k+1]]`` and whose targets are
    ``target_items[target_indptr[k]:target_indptr[k+1]]`` (distinct items).
    """

    users: np.ndarray
    history_indptr: np.ndarray
    history_items: np.ndarray
    target_indptr: np.ndarray
    target_items: np.ndarray
    n_items: int

    def __len__(self) -> int:
        return len(self.users)

    def history(self, k: int) -> np.ndarray:
        return self.history_items[self.history_indptr[k]:self.history_indptr[k + 1]]

    def targets(self, k: int) -> np.ndarray:
        return self.target_items[self.target_indptr[k]:self.target_indptr[k + 1]]

    def histories(self, start: int = 0, stop: int | None = None) -> list[np.ndarray]:
        stop = len(self) if stop is None else stop
        return [self.history(k) for k in range(start, stop)]

    def subset(self, index: np.ndarray) -> EvalCases:
        """The cases at positions ``index`` (in that order)."""
        index = np.asarray(index, dtype=np.int64)
        h = [self.history(k) for k in index]
        t = [self.targets(k) for k in index]
        return EvalCases(self.users[index], _indptr(h), _concat(h), _indptr(t), _concat(t),
                         self.n_items)


def _indptr(parts: list[np.ndarray]) -> np.ndarray:
    out = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=out[1:])
    return out


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.int32) if parts else np.zeros(0, np.int32)


@dataclass(frozen=True, eq=False)
class Split:
    """Interactions plus a part label per event; see the module docstring."""

    interactions: Interactions
    part: np.ndarray
    kind: str
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        part = np.ascontiguousarray(self.part, dtype=np.int8)
        if len(part) != len(self.interactions):
            raise ValueError("one part label per event is needed")
        inter = self.interactions
        same_user = inter.user[1:] == inter.user[:-1]
        if np.any(same_user & (part[1:] < part[:-1])):
            raise AssertionError("split leaks: a user's part decreases along their history")
        part.setflags(write=False)
        object.__setattr__(self, "part", part)

    @property
    def train(self) -> Interactions:
        return self.interactions.select(self.part == TRAIN)

    @property
    def valid(self) -> Interactions:
        return self.interactions.select(self.part == VALID)

    @property
    def test(self) -> Interactions:
        return self.interactions.select(self.part == TEST)

    def train_and_valid(self) -> Interactions:
        """Training events plus validation events: the history used for the test cases."""
        return self.interactions.select(self.part <= VALID)

    def cases(self, target_part: int) -> EvalCases:
        """Evaluation cases whose targets lie in ``target_part`` (VALID or TEST)."""
        inter = self.interactions
        hist = inter.select(self.part < target_part)
        tgt = inter.select(self.part == target_part)
        users = np.flatnonzero(np.diff(tgt.indptr) > 0)
        h = [hist.sequence(u) for u in users]
        t = []
        for u in users:
            items = tgt.sequence(u)
            _, first = np.unique(items, return_index=True)
            t.append(items[np.sort(first)])
        return EvalCases(users.astype(np.int32), _indptr(h), _concat(h), _indptr(t), _concat(t),
                         inter.n_items)

    def valid_cases(self) -> EvalCases:
        return self.cases(VALID)

    def test_cases(self) -> EvalCases:
        return self.cases(TEST)

    def summary(self) -> dict:
        counts = np.bincount(self.part, minlength=3)
        return {"kind": self.kind, **self.params, "train": int(counts[0]),
                "valid": int(counts[1]), "test": int(counts[2])}


def leave_one_out(inter: Interactions) -> Split:
    lengths = inter.lengths()
    pos = inter.positions()
    n = lengths[inter.user]
    part = np.zeros(len(inter), dtype=np.int8)
    evaluated = n >= 3
    part[evaluated & (pos == n - 1)] = TEST
    part[evaluated & (pos == n - 2)] = VALID
    return Split(inter, part, "leave_one_out")


def temporal_split(inter: Interactions, valid_fraction: float = 0.1,
                   test_fraction: float = 0.1) -> Split:
    if not (0 < valid_fraction < 1 and 0 < test_fraction < 1
            and valid_fraction + test_fraction < 1):
        raise ConfigError("temporal split needs 0 < valid_fraction, test_fraction and their "
                          f"sum < 1 (got {valid_fraction}, {test_fraction})")
    ts = np.sort(inter.timestamp)
    t_test = ts[int(len(ts) * (1 - test_fraction))]
    t_valid = ts[int(len(ts) * (1 - test_fraction - valid_fraction))]
    if t_valid == t_test:
        raise DataError("temporal split: the validation period is empty (too many events share "
                        "one timestamp); choose other fractions")
    part = np.where(inter.timestamp >= t_test, TEST,
                    np.where(inter.timestamp >= t_valid, VALID, TRAIN)).astype(np.int8)
    return Split(inter, part, "temporal", {"valid_from": int(t_valid), "test_from": int(t_test)})


SPLITS = {"leave_one_out": leave_one_out, "temporal": temporal_split}


def make_split(inter: Interactions, kind: str = "leave_one_out", **params) -> Split:
    try:
        fn = SPLITS[kind]
    except KeyError:
        raise ConfigError(f"unknown split {kind!r}; choose one of {sorted(SPLITS)}") from None
    return fn(inter, **params)
