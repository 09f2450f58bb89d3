"""The results store: an append-only episode log plus the run manifest.

A run folder holds
* ``episodes.jsonl`` — one ``Episode`` per line, written when the episode finishes, flushed and
  fsynced before the episode counts as recorded, so a killed run loses at most the episodes
  not yet acknowledged (never a recorded one); episodes that finish together share one
  write and one fsync (``append_many``, driven by ``ptebench.results.commit.GroupCommit``);
* ``run.json`` — the ``RunManifest``, replaced atomically (write, fsync, rename);
* ``transcripts.sqlite`` — each episode's transcript, committed before its episode line
  (``ptebench.results.transcript``).

A line torn by a crash mid-write is detected on reopening and cut off before appending.
``load(path)`` gives a pandas DataFrame, one row per episode.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from ptebench.errors import UserError
from ptebench.models.transcript import Transcript
from ptebench.records import SCHEMA_VERSION, Episode, RunManifest
from ptebench.results.transcript import TranscriptStore

EPISODES = "episodes.jsonl"
MANIFEST = "run.json"


RESERVE = ".reserve"
RESERVE_BYTES = 1 << 20
"""Disk held back while a run writes, freed to record the manifest when the disk fills."""


class ResultsWriteError(UserError):
    """The run folder cannot be written (disk full, read-only, quota)."""


class RunStore:
    """Reads and appends one run folder."""

    def __init__(self, path: Path) -> None:
        self.dir = Path(path)
        self.episodes_path = self.dir / EPISODES
        self.manifest_path = self.dir / MANIFEST
        self._ids: set[str] | None = None
        self._fh: Any = None
        self.transcripts = TranscriptStore(self.dir)
        self.batches = 0
        """Durable appends made by this object (each: one transcript commit, one fsync)."""

    # -- manifest --------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.manifest_path.exists() or self.episodes_path.exists()

    def read_manifest(self) -> RunManifest | None:
        if not self.manifest_path.exists():
            return None
        try:
            return RunManifest.model_validate_json(self.manifest_path.read_text())
        except ValidationError as e:
            raise UserError(f"{self.manifest_path}: not a ptebench run manifest: {e.errors()[0]['msg']}") from e

    def write_manifest(self, manifest: RunManifest) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.manifest_path.with_suffix(".json.tmp")
        with tmp.open("w") as f:
            f.write(manifest.model_dump_json(indent=2))
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.manifest_path)

    # -- episodes --------------------------------------------------------------------------
    def _repair_tail(self) -> None:
        """Cut a torn last line left by a crash mid-write."""
        p = self.episodes_path
        if not p.exists() or p.stat().st_size == 0:
            return
        with p.open("rb+") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 1))
            if f.read(1) == b"\n":
                return
            # Find the last complete line and truncate after it.
            pos = size
            chunk = 65536
            while pos > 0:
                start = max(0, pos - chunk)
                f.seek(start)
                buf = f.read(pos - start)
                nl = buf.rfind(b"\n")
                if nl >= 0:
                    f.truncate(start + nl + 1)
                    return
                pos = start
            f.truncate(0)

    def iter_episodes(self) -> Iterator[Episode]:
        """Every complete, valid episode line, in order (a torn last line is skipped)."""
        if not self.episodes_path.exists():
            return
        with self.episodes_path.open() as f:
            for lineno, line in enumerate(f, 1):
                if not line.endswith("\n"):
                    return  # torn by a crash; _repair_tail removes it before appending
                try:
                    yield Episode.model_validate_json(line)
                except ValidationError as e:
                    raise UserError(
                        f"{self.episodes_path}:{lineno}: not a valid episode record "
                        f"(schema {SCHEMA_VERSION}): {e.errors()[0]['msg']}"
                    ) from e

    def finished_ids(self) -> set[str]:
        if self._ids is None:
            self._ids = {e.spec.episode_id for e in self.iter_episodes()}
        return self._ids

    def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        self.finished_ids()
        self._fh = self.episodes_path.open("a")

    def append(self, episode: Episode, transcript: Transcript | None = None) -> bool:
        """Append one finished episode durably, its transcript first. Returns False (and
        writes nothing) if an episode with this id is already recorded — a run never
        duplicates an episode."""
        return bool(self.append_many([(episode, transcript)]))

    def append_many(self, items: list[tuple[Episode, Transcript | None]]) -> list[Episode]:
        """Append finished episodes durably as one batch: their transcripts in one
        transaction, then their lines with one write and one fsync. Returns the episodes
        written, in order; one whose id is already recorded (or repeated in the batch) is
        skipped — a run never duplicates an episode.

        Raises:
            ResultsWriteError: the disk refused the batch; nothing of it is left in
                ``episodes.jsonl`` (its episodes are re-run on ``--resume``).
        """
        if self._fh is None:
            self.open()
        fh = self._fh
        assert fh is not None  # set by open()
        ids = self.finished_ids()
        new: list[tuple[Episode, Transcript | None]] = []
        seen: set[str] = set()
        for episode, transcript in items:
            eid = episode.spec.episode_id
            if eid not in ids and eid not in seen:
                seen.add(eid)
                new.append((episode, transcript))
        if not new:
            return []
        start = fh.tell()
        try:
            # every transcript is durable before any line naming its episode is written
            self.transcripts.put_many([t for _, t in new if t is not None])
            fh.write("".join(e.model_dump_json() + "\n" for e, _ in new))
            fh.flush()
            os.fsync(fh.fileno())
        except (OSError, sqlite3.Error) as e:
            self._undo_partial(start)
            if isinstance(e, sqlite3.Error):  # the transcripts' transaction was rolled back
                where = self.transcripts.path
                why = f"No space left on device ({e})" if "full" in str(e) else str(e)
            else:
                where, why = self.episodes_path, e.strerror or str(e)
            raise ResultsWriteError(
                f"cannot write {where}: {why}. The {len(ids)} episodes "
                "recorded before are intact; free space and continue with --resume") from e
        ids.update(seen)
        self.batches += 1
        return [e for e, _ in new]

    def _undo_partial(self, start: int) -> None:
        """After a failed append: cut what reached the file, so no torn line is left."""
        with contextlib.suppress(OSError):
            self._fh.close()
        self._fh = None
        with contextlib.suppress(OSError), self.episodes_path.open("rb+") as f:
            f.truncate(start)

    def reserve(self, nbytes: int = RESERVE_BYTES) -> None:
        """Hold ``nbytes`` of the results disk, so that the manifest can still be written
        after the disk fills (``release_reserve`` frees it first)."""
        with contextlib.suppress(OSError):
            self.dir.mkdir(parents=True, exist_ok=True)
            with (self.dir / RESERVE).open("wb") as f:
                f.write(b"\0" * nbytes)
                f.flush()
                os.fsync(f.fileno())

    def release_reserve(self) -> None:
        with contextlib.suppress(OSError):
            (self.dir / RESERVE).unlink()

    def close(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None
        self.transcripts.close()


COLUMNS = [
    "run_id", "episode_id", "model", "model_family", "train_flop", "simulated", "scaffold",
    "scaffold_name", "params_json", "task_family", "task_id", "epoch", "seed", "score", "status",
    "reason", "failure", "score_reducer", "oracle_feedback", "oracle_calls", "sandbox", "calls", "steps", "prompt_tokens",
    "completion_tokens", "cached_prompt_tokens", "reasoning_tokens", "flops_epoch",
    "flops_physical", "cost_usd", "model_s", "sandbox_s", "wall_s", "started_at", "finished_at",
]
"""Columns of ``load()``; ``scaffold`` is the label the scaffold is reported under."""


def episode_row(e: Episode) -> dict[str, Any]:
    s, t = e.spec, e.totals
    return {
        "run_id": e.run_id,
        "episode_id": s.episode_id,
        "model": s.model,
        "model_family": e.model_family,
        "train_flop": e.train_flop,
        "simulated": e.simulated,
        "scaffold": s.scaffold_label,
        "scaffold_name": s.scaffold,
        "params_json": json.dumps(s.scaffold_params, sort_keys=True),
        "task_family": s.task_family,
        "task_id": s.task_id,
        "epoch": s.epoch,
        "seed": s.seed,
        "score": e.score.value if e.score is not None else None,
        "status": e.status,
        "reason": e.reason,
        "failure": e.failure,
        "score_reducer": s.score_reducer,
        "oracle_feedback": e.oracle_feedback,
        "oracle_calls": e.oracle_calls,
        "sandbox": e.sandbox,
        "calls": t.calls,
        "steps": t.steps,
        "prompt_tokens": t.prompt_tokens,
        "completion_tokens": t.completion_tokens,
        "cached_prompt_tokens": t.cached_prompt_tokens,
        "reasoning_tokens": t.reasoning_tokens,
        "flops_epoch": t.flops_epoch,
        "flops_physical": t.flops_physical,
        "cost_usd": t.cost_usd,
        "model_s": t.model_s,
        "sandbox_s": t.sandbox_s,
        "wall_s": t.wall_s,
        "started_at": e.started_at,
        "finished_at": e.finished_at,
    }


def episodes_path(path: Path) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / EPISODES
    if not p.exists():
        raise UserError(f"{path}: no ptebench run here (expected {EPISODES} in a run folder)")
    return p


def load_episodes(path: Path) -> list[Episode]:
    """All episodes of a run folder (or an episodes.jsonl file)."""
    p = episodes_path(path)
    return list(RunStore(p.parent).iter_episodes()) if p.name == EPISODES else list(
        _iter_file(p)
    )


def _iter_file(p: Path) -> Iterator[Episode]:
    with p.open() as f:
        for line in f:
            if line.endswith("\n"):
                yield Episode.model_validate_json(line)


def load(path: str | Path) -> pd.DataFrame:
    """One row per episode of a run folder (columns: ``COLUMNS``).

    Raises:
        UserError: no run at ``path``, or a record that does not validate.
    """
    rows = [episode_row(e) for e in load_episodes(Path(path))]
    return pd.DataFrame(rows, columns=COLUMNS)
