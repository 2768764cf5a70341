"""Every model in the registry passes the shared contract suite."""

import numpy as np
import pytest

from llmrec.models import (BERT4Rec, BPR, GRU4Rec, HSTU, MODELS, AutoGraph, LightGCN, Pop,
                           RLMRec, SASRec)
from llmrec.testing import RecommenderContract

SMALL = dict(embedding_size=32, max_seq_len=20, batch_size=32, patience=50, dropout=0.1)


def test_every_registered_model_has_a_contract_test():
    tested = {cls.model for cls in (TestPop, TestGRU4Rec, TestSASRec, TestBERT4Rec, TestHSTU,
                                    TestBPR, TestLightGCN, TestAutoGraph, TestRLMRec)}
    tested.add("tiger")                 # tests/models/test_tiger.py::TestTIGERContract
    tested.add("lcrec")                 # tests/models/test_lcrec.py::TestLCRecContract
    tested.add("bigrec")                # tests/models/test_bigrec.py::TestBIGRecContract
    assert tested == set(MODELS)


class TestPop(RecommenderContract):
    model = "pop"
    learns_chains = False

    def make_model(self, **overrides):
        return Pop(**overrides)


class TestGRU4Rec(RecommenderContract):
    model = "gru4rec"

    def make_model(self, **overrides):
        return GRU4Rec(**{**SMALL, "epochs": 30, "learning_rate": 5e-3, **overrides})


class TestSASRec(RecommenderContract):
    model = "sasrec"

    def make_model(self, **overrides):
        return SASRec(**{**SMALL, "epochs": 30, "learning_rate": 5e-3, **overrides})


class TestSASRecBCE(TestSASRec):
    def make_model(self, **overrides):
        return SASRec(**{**SMALL, "epochs": 40, "learning_rate": 5e-3, "loss": "bce",
                         **overrides})


class TestSASRecSampled(TestSASRec):
    def make_model(self, **overrides):
        return SASRec(**{**SMALL, "epochs": 30, "learning_rate": 5e-3,
                         "loss": "sampled_softmax", "num_negatives": 8, **overrides})


class TestSASRecPaperBlock(TestSASRec):
    """The authors' block (residuals around normalised inputs) with their sqrt(d) scaling."""

    def make_model(self, **overrides):
        return SASRec(**{**SMALL, "epochs": 30, "learning_rate": 5e-3, "block": "paper",
                         "scale_embeddings": True, **overrides})


class TestHSTU(RecommenderContract):
    model = "hstu"

    def make_model(self, **overrides):
        return HSTU(**{**SMALL, "epochs": 30, "learning_rate": 5e-3, **overrides})


class TestBERT4Rec(RecommenderContract):
    model = "bert4rec"

    def make_model(self, **overrides):
        return BERT4Rec(**{**SMALL, "epochs": 100, "learning_rate": 5e-3, **overrides})


class TestBPR(RecommenderContract):
    """User-based: it cannot order a chain (tests/models/test_graph.py checks what it does
    learn: two user groups with disjoint items)."""

    model = "bpr"
    learns_chains = False

    def make_model(self, **overrides):
        return BPR(**{"embedding_size": 16, "batch_size": 128, "learning_rate": 1e-2,
                      "epochs": 20, **overrides})


class TestLightGCN(TestBPR):
    model = "lightgcn"

    def make_model(self, **overrides):
        return LightGCN(**{"embedding_size": 16, "batch_size": 128, "learning_rate": 1e-2,
                           "epochs": 20, **overrides})


class TestAutoGraph(TestBPR):
    """LightGCN with knowledge factor nodes (random vectors here: the contract is about the
    plumbing; tests/models/test_autograph.py checks what the factors carry)."""

    model = "autograph"

    def make_model(self, **overrides):
        rng = np.random.default_rng(3)
        return AutoGraph(**{"embedding_size": 16, "batch_size": 128, "learning_rate": 1e-2,
                            "epochs": 20, "levels": 2, "codebook_size": 4, **overrides}
                         ).set_knowledge(rng.normal(size=(240, 8)), chain_vectors(30, 8))


class TestAutoGraphOnBPR(TestAutoGraph):
    def make_model(self, **overrides):
        return super().make_model(**{"backbone": "bpr", **overrides})


class TestRLMRec(TestBPR):
    """LightGCN aligned with profile vectors (random here: the contract is the plumbing;
    tests/models/test_rlmrec.py checks what the alignment does)."""

    model = "rlmrec"

    def make_model(self, **overrides):
        rng = np.random.default_rng(4)
        return RLMRec(**{"embedding_size": 16, "batch_size": 128, "learning_rate": 1e-2,
                         "epochs": 20, **overrides}
                      ).set_knowledge(rng.normal(size=(240, 8)), chain_vectors(30, 8))


class TestRLMRecGenerativeOnBPR(TestRLMRec):
    def make_model(self, **overrides):
        return super().make_model(**{"backbone": "bpr", "alignment": "generative",
                                     "mask_ratio": 0.3, **overrides})


def chain_vectors(n_items=30, dim=12, seed=1):
    return np.random.default_rng(seed).normal(size=(n_items, dim)).astype(np.float32)


class TestSASRecTextOnly(TestSASRec):
    """No ID table: items are projections of frozen vectors (cold items can be scored)."""

    def make_model(self, **overrides):
        model = SASRec(**{**SMALL, "epochs": 40, "learning_rate": 5e-3, "item_input": "text",
                          **overrides})
        return model.set_item_vectors(chain_vectors())


class TestGRU4RecIdPlusText(TestGRU4Rec):
    def make_model(self, **overrides):
        return super().make_model(item_input="id+text", **overrides).set_item_vectors(
            chain_vectors())


def test_text_input_needs_one_vector_per_item():
    from llmrec.data import leave_one_out
    from llmrec.testing import chain_interactions
    split = leave_one_out(chain_interactions())
    model = SASRec(item_input="text", epochs=1).set_item_vectors(chain_vectors(n_items=29))
    with pytest.raises(ValueError, match="one vector per item"):
        model.fit(split.train, progress=False)


def test_text_only_model_has_no_per_item_parameters():
    from llmrec.data import leave_one_out
    from llmrec.testing import chain_interactions
    split = leave_one_out(chain_interactions())
    model = SASRec(item_input="text", epochs=1, embedding_size=16, max_seq_len=10)
    model.set_item_vectors(chain_vectors()).fit(split.train, progress=False)
    shapes = [tuple(p.shape) for p in model.module.parameters()]
    assert not any(30 in s for s in shapes)
