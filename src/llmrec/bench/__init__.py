"""Benchmark runners and report writers."""

from .llmrank import (LLMRankConfig, Parsed, aggregate_rankings, expected_random,
                      parse_ranking, rank_metrics, read_rank_template, run_llmrank)
from .seqrec import compare, significance, significance_text, summarize, summary_table

__all__ = ["LLMRankConfig", "Parsed", "aggregate_rankings", "compare", "expected_random",
           "parse_ranking", "rank_metrics", "read_rank_template", "run_llmrank", "significance",
           "significance_text", "summarize", "summary_table"]
