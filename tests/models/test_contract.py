"""Every model in the registry passes the shared contract suite."""

from llmrec.models import BERT4Rec, GRU4Rec, MODELS, Pop, SASRec
from llmrec.testing import RecommenderContract

SMALL = dict(embedding_size=32, max_seq_len=20, batch_size=32, patience=50, dropout=0.1)


def test_every_registered_model_has_a_contract_test():
    tested = {cls.model for cls in (TestPop, TestGRU4Rec, TestSASRec, TestBERT4Rec)}
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


class TestBERT4Rec(RecommenderContract):
    model = "bert4rec"

    def make_model(self, **overrides):
        return BERT4Rec(**{**SMALL, "epochs": 100, "learning_rate": 5e-3, **overrides})
