"""General (collaborative) memory: mined from the training split only, bounded prompt lines."""

from __future__ import annotations

import numpy as np

from llmrec.chat import (CandidateBus, ChatContext, ChatState, GeneralMemory, InteRecAgent,
                         sample_users)
from llmrec.data import Interactions, Split
from llmrec.llm import make_backend


def _split() -> Split:
    """40 users. Items 2 and 3 co-occur in 20 users' training events; items 0 and 1 co-occur
    in 20 users' histories only through their validation (0) and test (1) events."""
    users, items, parts = [], [], []
    for u in range(40):
        train = [2, 3, 4] if u < 20 else [5, 6, 4]
        seq = train + ([0, 1] if u < 20 else [7, 8])
        users += [u] * len(seq)
        items += seq
        parts += [0] * len(train) + [1, 2]
    n = len(users)
    inter = Interactions(np.array(users), np.array(items), np.arange(n), np.full(n, np.nan),
                         40, 9)
    return Split(inter, np.array(parts), "leave_one_out")


def test_pairs_come_from_training_events_only():
    split = _split()
    mem = GeneralMemory.from_train(split.train, min_support=5, min_lift=1.0)
    assert (2, 3) in mem.pairs() and (3, 2) in mem.pairs()
    assert not {(0, 1), (1, 0)} & mem.pairs()
    assert all(0 not in p and 1 not in p for p in mem.pairs())
    # the same miner over all events would have found the held-out pair
    leaky = GeneralMemory.from_train(split.interactions, min_support=5, min_lift=1.0)
    assert (0, 1) in leaky.pairs()
    # item 4 is in every history: lift 1, dropped at min_lift 1.5
    strict = GeneralMemory.from_train(split.train, min_support=5, min_lift=1.5)
    assert (2, 4) not in strict.pairs() and (2, 3) in strict.pairs()
    [(y, n, lift)] = [p for p in strict.partners[2] if p[0] == 3]
    assert n == 20 and lift == 2.0                      # 20 * 40 / (20 * 20)


def test_counts_on_real_data_are_training_counts(world):
    train = world.split.train
    mem = GeneralMemory.from_train(train, min_support=20, min_lift=2.0, per_item=3)
    seqs = [set(train.sequence(u).tolist()) for u in range(train.n_users)]
    both = [set(world.split.train_and_valid().sequence(u).tolist())
            for u in range(train.n_users)]
    differs = 0
    assert mem.partners
    for x, lst in list(mem.partners.items())[:60]:
        assert len(lst) <= 3
        assert [p[2] for p in lst] == sorted((p[2] for p in lst), reverse=True)
        for y, n, lift in lst:
            assert n == sum(1 for s in seqs if x in s and y in s) >= 20 and lift >= 2.0
            differs += n != sum(1 for s in both if x in s and y in s)
    assert differs > 0          # counting validation events too would change the counts


def test_prompt_lines_are_bounded_and_use_the_known_history(world):
    mem = GeneralMemory.from_train(world.split.train)
    cases = {u: (h, t) for u, h, t in world.test_users()}
    [user] = sample_users(world, 1, seed=2)
    history, target = cases[user]
    cat = world.catalog
    lines = mem.lines(history[::-1], cat, limit=3)
    assert 0 < len(lines) <= 3
    seeds = set(history)
    for (x, y, n, _), line in zip(mem.retrieve(history[::-1], 3), lines):
        assert x in seeds and y not in seeds and n >= mem.min_support
        assert line.startswith(f"People who liked {cat.display(x)} also liked {cat.display(y)}")
    # in the agent's prompt, with no LLM call made
    backend = make_backend("openai", base_url="http://127.0.0.1:9/v1", model="none")
    agent = InteRecAgent(backend, general=mem, memory_lines=2)
    ctx = ChatContext(cat, world.retriever, CandidateBus.all_items(cat.n_items), list(history))
    prompt = agent.prompt(ChatState(ctx))[-1]["content"]
    assert prompt.count("People who liked") == 2
    assert "What other users liked" in prompt
    no_mem = InteRecAgent(backend).prompt(ChatState(ctx))[-1]["content"]
    assert "People who liked" not in no_mem
