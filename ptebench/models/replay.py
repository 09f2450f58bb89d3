"""The replay model: answers an episode's calls with what a recorded run's model answered.

    models:
      - {id: gpt-4o, provider: replay, card: gpt-4o, options: {run: runs/nightly-1}}

Give the model the **same id** as in the recorded run (episode ids are derived from it, so
the same experiment plans the same episodes) and its card (so FLOPs and cost are counted as
they were). Each episode's i-th call gets the recorded episode's i-th response — choices,
usage, finish reasons — and a call the recording ended with an error fails the same way.
Uses: re-score a run after a scorer fix without paying for a model again, and test parser or
scaffold changes against recorded real outputs. The sandbox actions and the scorer run for
real; with a deterministic task the replay reproduces the recorded scores exactly.

A call the recording lacks (the episode was not recorded, or the scaffold now asks for more
calls, another role or more samples) is a ``ModelError`` naming the episode, the call index
and what differs: that episode ends as ``error`` and the rest go on.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ptebench.errors import ConfigError, ModelError
from ptebench.models.base import (
    EpisodeBinding,
    GenerateRequest,
    GenerateResponse,
    ModelConfig,
)
from ptebench.models.transcript import Transcript
from ptebench.registry import register


def _store(run: Path) -> Any:
    # The recording is a run folder, read through the results store's transcript reader.
    from ptebench.results.transcript import TranscriptStore

    return TranscriptStore(run)


@register("model", "replay")
class ReplayModel:
    """Plays back a recorded run's responses, per episode, in call order."""

    def __init__(self, config: ModelConfig) -> None:
        run = config.options.get("run")
        if not isinstance(run, str) or not run:
            raise ConfigError(f"model {config.id!r} (replay): set options.run to the folder "
                              "of the recorded run")
        self.config = config
        self.run = Path(run)
        self.store = _store(self.run)
        if not self.store.exists():
            raise ConfigError(f"model {config.id!r} (replay): {self.store.path}: missing: "
                              "options.run must name a run folder recorded with transcripts")
        self.lock = asyncio.Lock()
        """Serialises reads of the one SQLite connection the run's episodes share."""

    def bind(self, binding: EpisodeBinding) -> EpisodeReplay:
        return EpisodeReplay(self, binding.episode_id)

    def transcript(self, episode_id: str) -> Transcript | None:
        from ptebench.results.transcript import TranscriptError

        try:
            return self.store.get(episode_id)
        except TranscriptError as e:
            if "no transcript for episode" in str(e):
                return None
            raise ModelError(f"replay of {self.run}: {e}") from e

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        raise ModelError(f"replay model {self.config.id!r} answers only the episodes of a run "
                         "(it must be bound to an episode by the runner)")

    async def aclose(self) -> None:
        self.store.close()


class EpisodeReplay:
    """One episode's recorded calls, answered in order."""

    def __init__(self, parent: ReplayModel, episode_id: str) -> None:
        self.parent = parent
        self.episode_id = episode_id
        self._t: Transcript | None = None
        self._loaded = False
        self._next = 0

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        if not self._loaded:
            async with self.parent.lock:
                self._t = self.parent.transcript(self.episode_id)
            self._loaded = True
        i = self._next
        self._next += 1
        where = f"replay of {self.parent.run}: episode {self.episode_id}, call {i}"
        t = self._t
        if t is None:
            raise ModelError(f"{where}: the recording has no such episode")
        if i >= len(t.calls):
            raise ModelError(f"{where}: the recording has only {len(t.calls)} calls "
                             f"(the scaffold asks for a {request.role!r} call more)")
        rec = t.calls[i]
        if rec.role != request.role:
            raise ModelError(f"{where}: the scaffold asks for a {request.role!r} call, the "
                             f"recording has a {rec.role!r} call")
        if rec.error is not None:
            raise ModelError(rec.error)
        resp = t.response(i)
        assert resp is not None
        if len(resp.choices) < request.n:
            raise ModelError(f"{where}: the scaffold asks for {request.n} samples, the "
                             f"recording has {len(resp.choices)}")
        return resp.model_copy(update={"retries": 0, "prompt_sent": None})
