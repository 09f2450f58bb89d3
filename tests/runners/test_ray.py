"""The Ray executor on a real Ray cluster of three nodes on this machine (ray.cluster_utils).

The head node has no CPUs for episodes, like a cluster's driver node: every episode runs in a
worker process of one of the two worker nodes, and comes back to the driver's one RunStore.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ptebench.results.store import RunStore, load_episodes
from ptebench.results.transcript import TranscriptStore
from ptebench.runners.config import parse_experiment
from ptebench.runners.local import run_experiment

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        c.add_node(num_cpus=1)
        c.add_node(num_cpus=1)
        c.wait_for_nodes()
        yield c
    finally:
        c.shutdown()


def _exp(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "ray-sim", "models": ["sim/1e22"], "scaffolds": ["direct", "react"],
        "tasks": [{"name": "arith", "limit": 2}], "sandbox": "local",
        "concurrency": {"episodes": 4},
    }
    base.update(kw)
    return base


def _outcomes(run: Path) -> dict[str, tuple[str, float | None]]:
    eps = load_episodes(run)
    assert len(eps) == len({e.spec.episode_id for e in eps}), "an episode recorded twice"
    return {e.spec.episode_id: (e.status, e.score.value if e.score else None) for e in eps}


def test_ray_run_gives_the_local_episode_set(tmp_path: Path, cluster: Any) -> None:
    local = run_experiment(parse_experiment(_exp()), tmp_path / "local")
    ray_res = run_experiment(
        parse_experiment(_exp(executor="ray", ray={"address": cluster.address})), tmp_path / "ray")
    assert ray_res.manifest.status == "finished" and ray_res.manifest.executor == "ray"
    assert local.manifest.executor == "local"
    want = _outcomes(tmp_path / "local")
    assert len(want) == 4 and any(s == 1.0 for _, s in want.values())
    assert _outcomes(tmp_path / "ray") == want
    eps = load_episodes(tmp_path / "ray")
    assert {e.executor for e in eps} == {"ray"} and all(e.host for e in eps)
    react = [e for e in eps if e.spec.scaffold == "react"]
    assert react and all(e.sandbox == "local" and e.steps for e in react), \
        "react acted in a sandbox the worker node acquired"
    # The transcripts the workers recorded are in the driver's run folder.
    stored = TranscriptStore(tmp_path / "ray")
    assert stored.ids() == set(want)
    assert all(stored.get(e.spec.episode_id).episode_id == e.spec.episode_id for e in eps)

    # --resume with the ray executor skips every finished episode.
    again = run_experiment(
        parse_experiment(_exp(executor="ray", ray={"address": cluster.address})),
        tmp_path / "ray", resume=True)
    assert again.progress.done == 0 and again.progress.skipped == 4
    assert len(load_episodes(tmp_path / "ray")) == 4


def test_worker_killed_mid_episode_is_rerun_and_recorded_once(tmp_path: Path, cluster: Any) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    exp = parse_experiment({
        "name": "ray-kill",
        "models": [{"id": "echo", "provider": "scripted",
                    "outputs": ["Thought: ok\nAction: submit: w0"] * 4}],
        "scaffolds": ["react"], "baseline": "react",
        "tasks": [{"name": "tests.runners.fixtures:HangOnceTask",
                   "options": {"n": 3, "dir": str(markers)}}],
        "sandbox": "local", "executor": "ray",
        "ray": {"address": cluster.address, "max_retries": 2},
        "concurrency": {"episodes": 2},
    })
    result: dict[str, Any] = {}

    def drive() -> None:
        try:
            result["run"] = run_experiment(exp, tmp_path / "run")
        except BaseException as e:  # reported by the assertion below
            result["error"] = e

    t = threading.Thread(target=drive)
    t.start()
    pid_file = markers / "w0.pid"
    deadline = time.monotonic() + 240
    while not pid_file.exists() and t.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling for the marker the hanging episode writes
    assert pid_file.exists(), f"the w0 episode never started: {result}"
    pid = int(pid_file.read_text())
    assert pid != os.getpid(), "the episode ran in a Ray worker, not in the driver"
    os.kill(pid, signal.SIGKILL)
    t.join(timeout=300)
    assert not t.is_alive() and "error" not in result, result
    out = _outcomes(tmp_path / "run")
    assert len(out) == 3 == result["run"].manifest.planned_episodes
    assert set(out.values()) == {("ok", 1.0), ("ok", 0.0)}
    w0 = next(e for e in load_episodes(tmp_path / "run") if e.spec.task_id == "w0")
    assert w0.status == "ok" and w0.score is not None and w0.score.value == 1.0
    assert RunStore(tmp_path / "run").read_manifest().status == "finished"  # type: ignore[union-attr]


def test_cli_run_executor_ray_address(tmp_path: Path, cluster: Any) -> None:
    import subprocess
    import sys

    import yaml

    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(_exp(scaffolds=["react"], baseline="react")))
    proc = subprocess.run(
        [sys.executable, "-m", "ptebench.cli", "run", str(cfg), "--out", str(tmp_path / "r"),
         "--executor", "ray", "--address", cluster.address, "--quiet"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "finished: 2 episodes run" in proc.stderr
    m = RunStore(tmp_path / "r").read_manifest()
    assert m is not None and m.executor == "ray" and m.status == "finished"
    assert {e.executor for e in load_episodes(tmp_path / "r")} == {"ray"}


def test_cli_address_needs_the_ray_executor(tmp_path: Path) -> None:
    import subprocess
    import sys

    import yaml

    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(_exp()))
    proc = subprocess.run(
        [sys.executable, "-m", "ptebench.cli", "run", str(cfg), "--out", str(tmp_path / "r"),
         "--address", "127.0.0.1:6379", "--quiet"], capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2 and "--executor ray" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()
