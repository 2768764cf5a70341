"""Text -> vectors: the encoder interface, the packaged sentence encoder, a content-addressed
float16 vector cache, and text sources (item metadata, user histories, LLM knowledge)."""

from ._base import Encoder, normalize
from ._cache import VectorCache
from ._encode import Vectors, default_encoder, encode_texts
from ._hashing import HashingEncoder
from .sentence import EncoderUnavailable, SentenceTransformerEncoder
from .texts import (item_metadata_texts, knowledge_costs, knowledge_store_exists, knowledge_texts,
                    user_history_texts)

ENCODERS = {"minilm": SentenceTransformerEncoder, "hashing": HashingEncoder}

__all__ = ["ENCODERS", "Encoder", "EncoderUnavailable", "HashingEncoder",
           "SentenceTransformerEncoder", "Vectors", "VectorCache", "default_encoder",
           "encode_texts", "item_metadata_texts", "knowledge_costs", "knowledge_store_exists",
           "knowledge_texts",
           "normalize", "user_history_texts"]
