"""Recycled containers change no result: the same arith run with and without recycling
records the same episodes, statuses, submissions and scores, on fewer containers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ptebench.records import Episode
from ptebench.results.store import RunStore
from ptebench.runners.config import parse_experiment
from ptebench.runners.local import run_experiment
from tests.sandbox.conftest import docker_gate

pytestmark = pytest.mark.docker


def _run(tmp_path: Path, name: str, options: dict[str, Any]) -> dict[str, Episode]:
    exp = parse_experiment({
        "name": name, "models": ["sim/1e22"],
        "scaffolds": ["direct", {"name": "react", "params": {"max_steps": 7}}],
        "tasks": [{"name": "arith", "limit": 6}], "epochs": 2, "baseline": "direct",
        "sandbox": "docker", "sandbox_options": options, "concurrency": {"episodes": 3},
    })
    res = run_experiment(exp, tmp_path / name)
    return {e.spec.episode_id: e for e in RunStore(res.run_dir).iter_episodes()}


def _outcome(e: Episode) -> tuple[object, ...]:
    return (e.status, e.submission, e.score.value if e.score else None, len(e.steps))


LS_TIME = re.compile(r"[A-Z][a-z]{2} +\d+ +(\d\d:\d\d|\d{4})")


def _seen(e: Episode, times: bool = True) -> list[str]:
    """What the agent observed; without ``times``, ``ls -l`` times blanked (a container
    made a minute later shows another time, and the sim's next move depends on it)."""
    return [s.observation if times else LS_TIME.sub("<time>", s.observation) for s in e.steps]


def test_recycling_records_the_same_episodes_on_fewer_containers(tmp_path: Path) -> None:
    docker_gate()
    recycled = _run(tmp_path, "recycled", {})
    fresh = _run(tmp_path, "fresh", {"recycle": False})
    assert recycled.keys() == fresh.keys() and len(recycled) == 2 * 6 * 2
    # A recycled container shows the agent what a new one shows (times aside) ...
    assert {k: _seen(e, times=False) for k, e in recycled.items()} == {
        k: _seen(e, times=False) for k, e in fresh.items()}
    # ... and where it saw exactly the same, the sim did exactly the same.
    same = [k for k in recycled if _seen(recycled[k]) == _seen(fresh[k])]
    assert len(same) >= len(recycled) // 2, "too few episodes to compare"
    assert [_outcome(recycled[k]) for k in same] == [_outcome(fresh[k]) for k in same]
    for run in (recycled, fresh):
        # direct never acts: no container at all (the sandbox is acquired on first use)
        assert {e.sandbox for e in run.values() if e.spec.scaffold == "direct"} == {"none"}
    acted = [e for e in recycled.values() if e.spec.scaffold == "react"]
    assert all(e.sandbox == "docker" and e.status == "ok" for e in acted)
    profiles = [e.sandbox_profile or {} for e in acted]
    assert len({p["container_id"] for p in profiles}) < len(acted)
    uses = sorted(p["recycle"]["use"] for p in profiles)
    assert uses[0] == 1 and uses[-1] > 1, uses
    assert all(p["exec_path"] == "exec server over attach" for p in profiles)
    fresh_ids = [(e.sandbox_profile or {})["container_id"] for e in fresh.values()
                 if e.spec.scaffold == "react"]
    assert len(set(fresh_ids)) == len(fresh_ids), "recycle: false gives each episode its own"
