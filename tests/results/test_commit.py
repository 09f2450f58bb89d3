"""Group commit: episodes finishing together share one fsync, and an episode is acknowledged
only once its batch is durable — also across a SIGKILL of a real run."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from ptebench.models.transcript import Transcript
from ptebench.records import Episode
from ptebench.results import load_episodes, load_transcript
from ptebench.results.commit import GroupCommit
from ptebench.results.store import RunStore
from ptebench.results.transcript import TranscriptStore
from ptebench.runners.config import parse_experiment
from ptebench.runners.local import Executor, run_experiment

REPO = Path(__file__).resolve().parents[2]


def _exp(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "commit", "models": ["sim/1e21", "sim/1e23"], "scaffolds": ["direct", "react"],
        "tasks": [{"name": "arith", "limit": 20}], "epochs": 2, "sandbox": "local",
        "concurrency": {"episodes": 16},
    }
    return {**base, **over}


def _recorded(run: Path) -> list[tuple[Episode, Transcript]]:
    return [(e, load_transcript(run, e.spec.episode_id)) for e in load_episodes(run)]


def test_a_concurrent_run_makes_fewer_commits_than_episodes(tmp_path: Path) -> None:
    ex = Executor(parse_experiment(_exp()), tmp_path / "run")
    res = asyncio.run(ex.run())
    episodes = load_episodes(tmp_path / "run")
    assert res.progress.done == len(episodes) == 160
    assert 1 <= ex.store.batches < len(episodes), "16 episodes in flight share fsyncs"
    for e, t in _recorded(tmp_path / "run"):  # transcripts and lines, one each, none torn
        assert len(t.calls) == len(e.calls) and len(t.actions) == len(e.steps)


def test_acknowledged_only_once_durable_and_never_twice(tmp_path: Path) -> None:
    run_experiment(parse_experiment(_exp(concurrency={"episodes": 4})), tmp_path / "src")
    items = _recorded(tmp_path / "src")[:40]
    store = RunStore(tmp_path / "dst")
    seen: list[str] = []

    def on_recorded(e: Episode) -> None:
        # read back from disk by other handles: the line and the transcript are there
        lines = (tmp_path / "dst" / "episodes.jsonl").read_text().splitlines()
        assert any(e.spec.episode_id in ln for ln in lines)
        reader = TranscriptStore(tmp_path / "dst")
        try:
            assert reader.get(e.spec.episode_id).episode_id == e.spec.episode_id
        finally:
            reader.close()
        seen.append(e.spec.episode_id)

    async def record_all() -> tuple[list[bool], list[bool], int]:
        commit = GroupCommit(store, on_recorded)
        try:
            first = await asyncio.gather(*(commit.record(e, t) for e, t in items))
            again = await asyncio.gather(*(commit.record(e, t) for e, t in items[:5]))
            await commit.flush()
        finally:
            await commit.aclose()
        return list(first), list(again), commit.largest_batch

    store.open()
    try:
        first, again, largest = asyncio.run(record_all())
    finally:
        store.close()
    assert first == [True] * 40 and again == [False] * 5
    assert sorted(seen) == sorted(e.spec.episode_id for e, _ in items)
    assert store.batches < 40 and largest > 1
    assert [e.spec.episode_id for e in load_episodes(tmp_path / "dst")] == [
        e.spec.episode_id for e, _ in items]


def test_sigkill_keeps_every_acknowledged_episode(tmp_path: Path) -> None:
    """The progress lines report acknowledged episodes: after a SIGKILL, at least as many
    are recorded, each with its transcript."""
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(_exp(tasks=[{"name": "arith", "limit": 60}])))
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ptebench.cli", "run", str(cfg), "--out", str(out),
         "--progress-every", "0", "--no-catalog"],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    acked = 0
    deadline = time.monotonic() + 180
    for line in proc.stderr:
        m = re.match(r"progress: (\d+)/480", line)
        if m:
            acked = int(m.group(1))
        if acked >= 60:
            break
        assert time.monotonic() < deadline, "run made no progress"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert acked >= 60, "the run ended before the kill"
    recorded = _recorded(out)
    assert acked <= len(recorded) < 480, "every acknowledged episode is on disk"
    for e, t in recorded:
        assert len(t.calls) == len(e.calls) and t.score == e.score
