"""Benchmark runners and report writers."""

from .seqrec import compare, summarize, summary_table

__all__ = ["compare", "summarize", "summary_table"]
