"""Results: the episode store, the CEG estimator, reports, comparisons and run history.

``ptebench.results.load(path)`` is the entry point for analysis: a run folder (or its
episodes.jsonl) → a pandas DataFrame, one row per episode.
"""

from ptebench.results.store import load, load_episodes

__all__ = ["load", "load_episodes"]
