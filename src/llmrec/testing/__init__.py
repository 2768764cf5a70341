"""Test helpers shipped with llmrec: the recommender contract suite and synthetic data."""

from .contract import RecommenderContract, chain_interactions
from .tiny_lm import tiny_tokenizer, write_tiny_lm

__all__ = ["RecommenderContract", "chain_interactions", "tiny_tokenizer", "write_tiny_lm"]
