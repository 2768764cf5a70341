"""The leakage rule: no prompt about a user names an item held out (valid/test) for that user.

Brute force on the real ML-100K (every individual, cluster and partition prompt the generator
would send) and a hypothesis property on random data sets and splits. Held-out items are
computed here from ``split.part`` directly, not with the code under test. No LLM is needed:
the prompts are built exactly as ``generate_knowledge`` builds them.
"""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmrec.data import Split, build_dataset, leave_one_out, temporal_split
from llmrec.knowledge import KnowledgeConfig, LeakError, Rendered, TrainHistory, load_templates
from llmrec.knowledge._cascade import Cascade
from llmrec.knowledge._generate import _Plan

FACTORS = ("genre", "mood")


def held_out(split: Split) -> list[set[int]]:
    """Per user: items in their valid/test part that are not also in their training part."""
    inter = split.interactions
    train = [set() for _ in range(inter.n_users)]
    other = [set() for _ in range(inter.n_users)]
    for u, i, p in zip(inter.user.tolist(), inter.item.tolist(), split.part.tolist()):
        (train if p == 0 else other)[u].add(i)
    return [o - t for o, t in zip(other, train)]


def user_prompts(ds, split, n_clusters: int, partition_size: int):
    """(prompt text, the users it is about) for every user-side prompt of the three modes."""
    plan = _Plan(ds, KnowledgeConfig(factors=FACTORS), load_templates(), {"model": "none"})
    history = TrainHistory(ds, split, "movie")
    users = history.users_with_history()
    out = [(j.fields["history"], [u]) for u, j in zip(users, plan.individual_jobs(history,
                                                                                  users))]
    jobs, groups = plan.cluster_jobs(history, users) if n_clusters else ([], [])
    out += [(j.fields["summary"], list(g)) for j, g in zip(jobs, groups)]
    cascade = Cascade(plan, history, users, partition_size, store=None)
    for job in cascade.partition_jobs():
        _, u, _ = cascade.meta[job.key]
        out.append((job.fields["partition"], [u]))
    return out


def assert_no_held_out_titles(ds, split, prompts, hidden: list[set[int]] | None = None) -> int:
    """Check every prompt; returns how many (title, prompt) checks were ambiguous (skipped).
    ``hidden``: the items no prompt about user u may name (default: held out by ``split``)."""
    titles = ds.item_features["title"].to_list()
    years = ds.item_features["year"].to_list()
    shown = [f"{t} ({y})" if y else t for t, y in zip(titles, years)]
    hidden = held_out(split) if hidden is None else hidden
    ambiguous = {i for i, t in enumerate(shown)
                 if any(j != i and t in s for j, s in enumerate(shown))}
    skipped = 0
    for text, users in prompts:
        for u in users:
            for i in hidden[u]:
                if i in ambiguous:
                    skipped += 1
                elif shown[i] in text:
                    raise AssertionError(f"held-out item {shown[i]!r} of user {u} in:\n{text}")
    return skipped


@pytest.mark.slow
def test_no_prompt_names_a_held_out_item_on_ml100k(ml100k_split) -> None:
    ds, split = ml100k_split
    prompts = user_prompts(ds, split, n_clusters=32, partition_size=20)
    kinds = len(prompts)
    assert kinds > ds.n_users + 32                       # individual + clusters + partitions
    skipped = assert_no_held_out_titles(ds, split, prompts)
    hidden = held_out(split)
    checked = sum(len(hidden[u]) for _, us in prompts for u in us)
    assert skipped < 0.02 * checked                       # title-in-title cases are rare


@pytest.mark.slow
def test_ctr_profile_prompts_never_name_a_ctr_sample(ml100k) -> None:
    """Knowledge for the CTR task (``--history ctr-profile``): no prompt about a user names an
    item that is one of that user's CTR samples (train, valid or test) -- the samples taken
    from the CTR data itself, not from the split under test."""
    from llmrec.ctr import build_ctr_data, profile_split
    from llmrec.data import Preprocessing, load_dataset

    ds = load_dataset("ml-100k", preprocessing=Preprocessing())
    data = build_ctr_data(ds)
    samples: list[set[int]] = [set() for _ in range(ds.n_users)]
    for u, i in zip(data.user.tolist(), data.item.tolist()):
        samples[u].add(i)
    split = profile_split(ds)
    assert int((split.part == 0).sum()) == data.meta["profile_events"]
    prompts = user_prompts(ds, split, n_clusters=32, partition_size=20)
    assert len(prompts) > ds.n_users + 32
    skipped = assert_no_held_out_titles(ds, split, prompts, hidden=samples)
    checked = sum(len(samples[u]) for _, us in prompts for u in us)
    assert checked > 50_000 and skipped < 0.02 * checked


def test_a_prompt_naming_a_held_out_item_is_refused(ml100k_split) -> None:
    ds, split = ml100k_split
    history = TrainHistory(ds, split)
    u = int(history.users_with_history()[0])
    test_item = int(split.interactions.sequence(u)[-1])
    with pytest.raises(LeakError, match="held-out item"):
        history.check([u], Rendered("...", (test_item,)))
    with pytest.raises(TypeError, match="needs a Split"):
        TrainHistory(ds, split.train)                   # an Interactions is not accepted


@st.composite
def datasets(draw):
    n_users, n_items = draw(st.integers(2, 6)), draw(st.integers(4, 14))
    rows = []
    for u in range(n_users):
        items = draw(st.lists(st.integers(0, n_items - 1), min_size=1, max_size=10,
                              unique=True))
        for k, i in enumerate(items):
            rows.append((f"u{u}", f"i{i}", float(draw(st.integers(1, 5))),
                         draw(st.integers(0, 30)) if draw(st.booleans()) else k))
    inter = pl.DataFrame(rows, schema=["user_id", "item_id", "rating", "timestamp"],
                         orient="row")
    items = pl.DataFrame({"item_id": [f"i{i}" for i in range(n_items)],
                          "title": [f"Film{i:02d}x" for i in range(n_items)],
                          "year": [1990 + i for i in range(n_items)],
                          "genres": [["Drama"] if i % 2 else ["Comedy"]
                                     for i in range(n_items)]})
    ds = build_dataset("synthetic", inter, items)
    if draw(st.booleans()):
        return ds, leave_one_out(ds.interactions)
    try:
        return ds, temporal_split(ds.interactions, 0.2, 0.2)
    except Exception:  # noqa: BLE001 - too few distinct timestamps for a temporal split
        return ds, leave_one_out(ds.interactions)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets(), st.integers(1, 3), st.integers(1, 4))
def test_property_no_held_out_item_in_any_prompt(data, n_clusters, partition_size) -> None:
    ds, split = data
    prompts = user_prompts(ds, split, n_clusters, partition_size)
    assert assert_no_held_out_titles(ds, split, prompts) == 0
