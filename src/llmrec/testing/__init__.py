"""Test helpers shipped with llmrec: the recommender contract suite and synthetic data."""

from .contract import RecommenderContract, chain_interactions

__all__ = ["RecommenderContract", "chain_interactions"]
