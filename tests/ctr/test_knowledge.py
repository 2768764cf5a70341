"""Knowledge tables for CTR data: the metadata stand-in covers every item and user, and user
texts never show a title the user rated in a sample (only profile events)."""

from __future__ import annotations

import numpy as np
import pytest

from llmrec.ctr import knowledge_tables
from llmrec.encode import HashingEncoder, item_metadata_texts, user_history_texts
from llmrec.errors import ConfigError


def test_metadata_tables_cover_everything(ml100k_dataset, ml100k_ctr):
    tables = knowledge_tables(ml100k_dataset, ml100k_ctr, "metadata", HashingEncoder(32),
                              progress=False)
    assert tables.item.shape == (1682, 32) and tables.user.shape == (943, 32)
    assert tables.costs["item_coverage"] == tables.costs["user_coverage"] == 1.0
    assert tables.costs["llm_calls"] == 0 and tables.costs["texts"] == 1682 + 943
    np.testing.assert_allclose(np.linalg.norm(tables.user, axis=1), 1.0, atol=1e-3)
    data = tables.attach(ml100k_ctr)
    assert data.has_knowledge and data.schema.knowledge_dim == 32
    with pytest.raises(ConfigError, match="unknown knowledge source"):
        knowledge_tables(ml100k_dataset, ml100k_ctr, "gossip", HashingEncoder(8))


def test_user_texts_never_name_a_sample_item(ml100k_dataset, ml100k_ctr):
    ds, d = ml100k_dataset, ml100k_ctr
    _, texts = user_history_texts(ds, d.profile, max_items=30)
    titles = [t.split(". Genres")[0] for t in item_metadata_texts(ds)[1]]
    for u in range(0, ds.n_users, 37):
        profile_titles = {titles[i] for i in d.profile.sequence(u)}
        shown = {t for t in profile_titles if f'"{t}"' in texts[u]}
        assert shown == profile_titles                      # the profile is shown...
        for i in d.item[d.user == u]:                       # ...and no sample item
            if titles[i] not in profile_titles:
                assert f'"{titles[i]}"' not in texts[u]
