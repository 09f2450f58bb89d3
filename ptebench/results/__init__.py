"""Results: the episode store, the CEG estimator, reports, comparisons and run history.

``ptebench.results.load(path)`` is the entry point for analysis: a run folder (or its
episodes.jsonl) → a pandas DataFrame, one row per episode. ``load_transcript(path,
episode_id)`` gives one episode's whole conversation (``ptebench.results.transcript``).
"""

from ptebench.models.transcript import Transcript, TranscriptAction, TranscriptCall
from ptebench.results.store import load, load_episodes
from ptebench.results.transcript import TranscriptError, iter_transcripts, load_transcript

__all__ = [
    "Transcript", "TranscriptAction", "TranscriptCall", "TranscriptError", "iter_transcripts",
    "load", "load_episodes", "load_transcript",
]
