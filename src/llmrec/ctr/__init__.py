"""CTR prediction with optional LLM knowledge: samples and features from rated data, DeepFM,
DCNv2 and DIN, KAR's hybrid-expert knowledge adapter, and AUC / logloss / GAUC."""

from ._base import CTRConfig, CTRModel, CTRModule, load_ctr_model
from ._data import (TEST, TRAIN, VALID, CTRData, CTRDataConfig, CTRSchema, build_ctr_data,
                    ctr_store_name, history_index, load_ctr_dataset, next_item_data,
                    profile_split, training_part)
from ._fit import fit_and_test
from ._knowledge import KnowledgeTables, knowledge_tables
from ._layers import Dice, FeatureEmbedding
from ._metrics import auc, ctr_metrics, gauc, grouped_auc, logloss
from .dcnv2 import DCNv2, DCNv2Config
from .deepfm import DeepFM, DeepFMConfig
from .din import DIN, DINConfig
from ._llm import LLMCTRConfig, preference_prompt, sample_examples, yes_probability
from .kar import HybridExpertAdapter
from .reclora import GatedLoRALinear, RecLoRA, RecLoRAConfig
from .tallrec import TALLRec, TALLRecConfig

CTR_MODELS: dict[str, type[CTRModel]] = {"deepfm": DeepFM, "dcnv2": DCNv2, "din": DIN}
# LLM click models (prompts of titles -> P(Yes)): trained on a few samples (``llmrec bench
# fewshot``); kept apart because a CPU cannot fit them on the whole CTR training set
LLM_CTR_MODELS: dict[str, type[CTRModel]] = {"tallrec": TALLRec, "reclora": RecLoRA}

__all__ = ["CTRConfig", "CTRData", "CTRDataConfig", "CTRModel", "CTRModule", "CTRSchema",
           "CTR_MODELS", "DCNv2", "DCNv2Config", "DIN", "DINConfig", "DeepFM", "DeepFMConfig",
           "Dice", "FeatureEmbedding", "HybridExpertAdapter", "KnowledgeTables", "LLMCTRConfig",
           "LLM_CTR_MODELS", "GatedLoRALinear", "RecLoRA", "RecLoRAConfig", "TALLRec", "TALLRecConfig", "preference_prompt",
           "sample_examples", "yes_probability", "TEST", "TRAIN",
           "VALID", "auc", "build_ctr_data", "ctr_metrics", "ctr_store_name", "fit_and_test",
           "gauc", "grouped_auc", "history_index", "knowledge_tables", "load_ctr_dataset",
           "load_ctr_model", "logloss", "next_item_data", "profile_split", "training_part"]
