"""llmrec: LLM-enhanced recommendation, from data to honest evaluation, on a laptop CPU."""

__version__ = "0.1.0"
