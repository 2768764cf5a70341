"""Recommenders: one file per model, one contract (:class:`Recommender`), one registry."""

from .autograph import AutoGraph, AutoGraphConfig
from .base import Recommendations, Recommender, load_model
from .bert4rec import BERT4Rec, BERT4RecConfig
from .bigrec import BIGRec, BIGRecConfig
from .bpr import BPR, BPRConfig
from .gru4rec import GRU4Rec, GRU4RecConfig
from .lcrec import LCRec, LCRecConfig
from .hstu import HSTU, HSTUConfig
from .lightgcn import LightGCN, LightGCNConfig
from .pop import Pop
from .rlmrec import RLMRec, RLMRecConfig
from .sasrec import SASRec, SASRecConfig
from .tiger import TIGER, TIGERConfig

MODELS: dict[str, type[Recommender]] = {
    "pop": Pop,
    "gru4rec": GRU4Rec,
    "sasrec": SASRec,
    "bert4rec": BERT4Rec,
    "hstu": HSTU,
    "tiger": TIGER,
    "lcrec": LCRec,
    "bigrec": BIGRec,
    "bpr": BPR,
    "lightgcn": LightGCN,
    "autograph": AutoGraph,
    "rlmrec": RLMRec,
}

__all__ = ["MODELS", "AutoGraph", "AutoGraphConfig", "BERT4Rec", "BERT4RecConfig", "BIGRec",
           "BIGRecConfig", "BPR", "BPRConfig", "GRU4Rec", "GRU4RecConfig", "HSTU", "HSTUConfig",
           "LCRec", "LCRecConfig", "LightGCN", "LightGCNConfig", "Pop",
           "RLMRec", "RLMRecConfig", "Recommendations", "Recommender", "SASRec", "SASRecConfig", "TIGER",
           "TIGERConfig", "load_model"]
