"""Benchmark runners and report writers."""

from .seqrec import compare, significance, significance_text, summarize, summary_table

__all__ = ["compare", "significance", "significance_text", "summarize", "summary_table"]
