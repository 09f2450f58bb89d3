"""The Ray executor on a real Ray cluster on this machine (ray.cluster_utils).

One cluster serves the module: a head node with no CPUs for episodes, like a cluster's driver
node, and three 1-CPU worker nodes — ``a`` and ``b`` (custom resources ``node_a`` / ``node_b``)
and ``nodocker``, whose environment points DOCKER_HOST at a dead socket. Every episode runs in
the ptebench worker of one worker node and comes back to the driver's one RunStore. Tests that
kill a node add (and remove) their own nodes, so the shared ones stay as they were.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ptebench.errors import UserError
from ptebench.results.store import RunStore, load_episodes
from ptebench.results.transcript import TranscriptStore
from ptebench.runners.config import parse_experiment
from ptebench.runners.local import run_experiment
from tests.conftest import require_docker, require_ray

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DEAD_DOCKER = "unix:///nonexistent/ptebench-test/docker.sock"


@dataclass
class Nodes:
    cluster: Any
    a: str
    b: str
    nodocker: str

    @property
    def address(self) -> str:
        return str(self.cluster.address)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Nodes]:
    require_ray()
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        a = c.add_node(num_cpus=1, resources={"node_a": 1})
        b = c.add_node(num_cpus=1, resources={"node_b": 1})
        nd = c.add_node(num_cpus=1, resources={"no_docker": 1},
                        env_vars={"DOCKER_HOST": DEAD_DOCKER})
        c.wait_for_nodes()
        yield Nodes(c, a.node_id, b.node_id, nd.node_id)
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


def run_in_thread(exp: Any, out: Path) -> tuple[threading.Thread, dict[str, Any]]:
    """Start ``run_experiment`` in a thread; the result holds its ``run`` or its ``error``
    (reported by the caller's assertions)."""
    result: dict[str, Any] = {}

    def drive() -> None:
        try:
            result["run"] = run_experiment(exp, out)
        except BaseException as e:
            result["error"] = e

    t = threading.Thread(target=drive)
    t.start()
    return t, result


def test_ray_run_gives_the_local_episode_set(tmp_path: Path, cluster: Nodes) -> None:
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
    assert {e.node for e in eps} <= {cluster.a, cluster.b, cluster.nodocker}
    assert all(e.node is None for e in load_episodes(tmp_path / "local"))
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


def test_worker_killed_mid_episode_is_rerun_and_recorded_once(tmp_path: Path, cluster: Nodes) -> None:
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
    t, result = run_in_thread(exp, tmp_path / "run")
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


def test_cli_run_executor_ray_address(tmp_path: Path, cluster: Nodes) -> None:
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


# -- helpers ------------------------------------------------------------------------------

def _cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PTEBENCH_HISTORY"}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "ptebench.cli", "run", *args, "--no-catalog"],
                          capture_output=True, text=True, timeout=timeout, env=env)


def _lines(path: Path) -> int:
    try:
        return sum(1 for line in path.read_text().splitlines() if line.strip())
    except FileNotFoundError:
        return 0


def _wait_for(what: str, ok: Any, proc: subprocess.Popen[str] | None = None,
              thread: threading.Thread | None = None, limit_s: float = 600) -> None:
    """Poll until ``ok()`` (observable progress, not a timing claim); fail naming ``what``
    when the run ended first or nothing happened within a generous bound."""
    deadline = time.monotonic() + limit_s
    while not ok():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {proc.returncode}")
        if thread is not None and not thread.is_alive():
            raise AssertionError(f"the run ended before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {limit_s}s")
        time.sleep(0.1)


def _ancestors(pid: int) -> list[int]:
    """The parent, grandparent, ... of a process (from /proc)."""
    out: list[int] = []
    while pid > 1:
        status = Path(f"/proc/{pid}/status").read_text()
        pid = int(next(x.split()[1] for x in status.splitlines() if x.startswith("PPid:")))
        out.append(pid)
    return out


def _our_containers(run_id: str) -> list[Any]:
    import docker

    client = docker.from_env()
    try:
        return list(client.containers.list(all=True, filters={"label": f"ptebench.run={run_id}"}))
    finally:
        client.close()


# -- Docker sandboxes on the nodes ------------------------------------------------------------

CTF_IDS = ["layered_encoding", "env_secret", "newest_file"]
# The ctf tasks draw a fresh flag (and files) at every setup, and the sim's outputs are a pure
# function of what it reads, so a sim that is right about half the time scores two runs of the
# same episode differently. A sim whose every decision is right (c0 10: p > 0.9999 each) makes
# the score a function of the episode alone: the scores of two runs must then agree.
SURE_SIM = {"id": "sim-sure", "provider": "sim", "model": "1e24", "card": "sim/1e24",
            "options": {"c0": 10}}


def _ctf(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "ray-ctf", "models": [SURE_SIM], "scaffolds": ["react"], "baseline": "react",
        "tasks": [{"name": "ctf", "ids": CTF_IDS}], "sandbox": "docker",
        "sandbox_options": {"warm": 0}, "concurrency": {"episodes": 4},
    }
    base.update(kw)
    return base


@pytest.fixture(scope="module")
def docker_runs(cluster: Nodes, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """sim × react × ctf in Docker: once with the local executor, once on the cluster (whose
    ``nodocker`` node has no engine). Walls are printed (a figure, not an assertion)."""
    require_docker()
    root = tmp_path_factory.mktemp("ray-docker")
    t0 = time.monotonic()
    run_experiment(parse_experiment(_ctf()), root / "local")
    t1 = time.monotonic()
    res = run_experiment(parse_experiment(_ctf(executor="ray", ray={"address": cluster.address})),
                         root / "ray")
    t2 = time.monotonic()
    print(f"\nctf × react × sim-sure, {len(CTF_IDS)} episodes, Docker: local executor "
          f"{t1 - t0:.1f}s, ray executor on the cluster {t2 - t1:.1f}s; load {os.getloadavg()}")
    return {"local": root / "local", "ray": root / "ray", "result": res}


@pytest.mark.docker
def test_docker_ctf_on_the_cluster_gives_the_local_episode_set(docker_runs: dict[str, Any],
                                                                cluster: Nodes) -> None:
    want = _outcomes(docker_runs["local"])
    assert len(want) == len(CTF_IDS) and set(want.values()) == {("ok", 1.0)}
    assert _outcomes(docker_runs["ray"]) == want
    eps = load_episodes(docker_runs["ray"])
    assert all(e.sandbox == "docker" and e.steps for e in eps), \
        [(e.spec.task_id, e.sandbox, e.reason) for e in eps]
    assert {e.node for e in eps} <= {cluster.a, cluster.b}
    assert docker_runs["result"].manifest.status == "finished"


@pytest.mark.docker
def test_a_node_without_docker_is_named_and_skipped(docker_runs: dict[str, Any],
                                                    cluster: Nodes) -> None:
    man = RunStore(docker_runs["ray"]).read_manifest()
    assert man is not None and man.status == "finished"
    skipped = [n for n in man.notes if cluster.nodocker in n]
    assert len(skipped) == 1 and "skipped" in skipped[0] and "no Docker engine" in skipped[0] \
        and DEAD_DOCKER in skipped[0], man.notes
    assert not any(cluster.a in n or cluster.b in n for n in man.notes), man.notes
    assert skipped == docker_runs["result"].notes
    assert cluster.nodocker not in {e.node for e in load_episodes(docker_runs["ray"])}


@pytest.mark.docker
def test_the_nodes_leave_no_containers_of_the_run(docker_runs: dict[str, Any]) -> None:
    man = RunStore(docker_runs["ray"]).read_manifest()
    assert man is not None
    assert _our_containers(man.run_id) == []


@pytest.mark.docker
def test_no_node_that_passes_the_check_for_a_pinned_model_is_refused(
        tmp_path: Path, cluster: Nodes) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(_ctf(
        tasks=[{"name": "ctf", "ids": CTF_IDS[:1]}],
        ray={"model_resources": {"sim-sure": {"no_docker": 1}}})))
    r = _cli(str(cfg), "--out", str(tmp_path / "r"), "--executor", "ray",
             "--address", cluster.address, "--quiet")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "model 'sim-sure' needs a node with the Ray resources {'no_docker': 1.0}" in r.stderr
    assert f"{cluster.nodocker}" in r.stderr and "no Docker engine" in r.stderr
    assert load_episodes(tmp_path / "r") == []


# -- pinning a model to the nodes that serve it -----------------------------------------------

def test_a_pinned_model_runs_only_on_its_nodes(tmp_path: Path, cluster: Nodes) -> None:
    exp = parse_experiment(_exp(
        models=["sim/1e20", "sim/1e22"], scaffolds=["direct"], baseline="direct",
        tasks=[{"name": "arith", "limit": 3}], executor="ray",
        ray={"address": cluster.address,
             "model_resources": {"sim/1e20": {"node_a": 1}, "sim/1e22": {"node_b": 1}}}))
    res = run_experiment(exp, tmp_path / "r")
    assert res.manifest.status == "finished"
    eps = load_episodes(tmp_path / "r")
    assert len(eps) == 6
    assert {e.node for e in eps if e.spec.model == "sim/1e20"} == {cluster.a}
    assert {e.node for e in eps if e.spec.model == "sim/1e22"} == {cluster.b}


# -- the spend cap ----------------------------------------------------------------------------

def test_spend_cap_stops_scheduling_ray_tasks_and_says_so(tmp_path: Path, cluster: Nodes) -> None:
    """As tests/runners/test_integrity.py's local case: one episode in flight at a time, a cap
    below one episode's cost: the first episode is the only one."""
    priced = {"id": "s", "provider": "scripted", "card": "gpt-4o-mini",
              "outputs": ["Answer: 1"] * 20}
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(_exp(models=[priced], scaffolds=["direct"], baseline="direct",
                                       tasks=[{"name": "arith", "limit": 5}],
                                       concurrency={"episodes": 1}, spend_cap_usd=1e-9)))
    args = (str(cfg), "--out", str(tmp_path / "a"), "--quiet", "--executor", "ray",
            "--address", cluster.address)
    r = _cli(*args)
    assert r.returncode == 1, r.stderr
    assert "stopped: spend cap reached" in r.stderr and "4 episode(s) not started" in r.stderr
    eps = load_episodes(tmp_path / "a")
    assert len(eps) == 1 and eps[0].executor == "ray" and (eps[0].totals.cost_usd or 0) > 1e-9
    man = json.loads((tmp_path / "a" / "run.json").read_text())
    assert man["status"] == "interrupted" and "spend cap" in man["stop_reason"]
    # the cap is the run's: resuming under it starts nothing more
    again = _cli(*args, "--resume")
    assert again.returncode == 1 and "4 episode(s) not started" in again.stderr, again.stderr
    assert len(load_episodes(tmp_path / "a")) == 1


# -- faults -----------------------------------------------------------------------------------

def test_a_node_whose_raylet_is_killed_has_its_episodes_rerun_elsewhere(
        tmp_path: Path, cluster: Nodes) -> None:
    """Two nodes of its own (resource ``fault``, the model pinned to them); the raylet of the
    node playing the hanging episode is killed; the episode is played on the other node."""
    c = cluster.cluster
    added = [c.add_node(num_cpus=1, resources={"fault": 1}) for _ in range(2)]
    c.wait_for_nodes()
    markers = tmp_path / "markers"
    markers.mkdir()
    exp = parse_experiment({
        "name": "ray-raylet",
        "models": [{"id": "echo", "provider": "scripted",
                    "outputs": ["Thought: ok\nAction: submit: w0"] * 4}],
        "scaffolds": ["react"], "baseline": "react",
        "tasks": [{"name": "tests.runners.fixtures:HangOnceTask",
                   "options": {"n": 3, "dir": str(markers)}}],
        "sandbox": "local", "executor": "ray",
        "ray": {"address": cluster.address, "max_retries": 2, "check_timeout_s": 120,
                "model_resources": {"echo": {"fault": 1}}},
        "concurrency": {"episodes": 2},
    })
    t, result = run_in_thread(exp, tmp_path / "run")
    try:
        pid_file = markers / "w0.pid"
        _wait_for("the w0 episode started", pid_file.exists, thread=t)
        raylets = {n.all_processes["raylet"][0].process.pid: n for n in added}
        victim = next((raylets[p] for p in _ancestors(int(pid_file.read_text()))
                       if p in raylets), None)
        assert victim is not None, "w0 ran on one of this test's two nodes"
        os.kill(victim.all_processes["raylet"][0].process.pid, signal.SIGKILL)
        t.join(timeout=900)
        assert not t.is_alive() and "error" not in result, result
        out = _outcomes(tmp_path / "run")
        assert len(out) == 3 == result["run"].manifest.planned_episodes
        eps = {e.spec.task_id: e for e in load_episodes(tmp_path / "run")}
        assert eps["w0"].status == "ok" and eps["w0"].score is not None \
            and eps["w0"].score.value == 1.0
        survivor = next(n for n in added if n is not victim)
        assert eps["w0"].node == survivor.node_id
        man = RunStore(tmp_path / "run").read_manifest()
        assert man is not None and man.status == "finished"
        assert any(victim.node_id in n and "lost mid-run" in n for n in man.notes), man.notes
    finally:
        t.join(timeout=900)
        for n in added:
            with contextlib.suppress(Exception):  # the killed one is partly gone already
                c.remove_node(n, allow_graceful=False)


def test_killed_driver_then_resume_plays_exactly_the_rest(tmp_path: Path, cluster: Nodes) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({
        "name": "ray-driver-kill",
        "models": [{"id": "echo", "provider": "scripted",
                    "outputs": ["Thought: ok\nAction: submit: w1"] * 8}],
        "scaffolds": ["react"], "baseline": "react",
        "tasks": [{"name": "tests.runners.fixtures:GateTask",
                   "options": {"n": 6, "hold": 3, "dir": str(markers)}}],
        "sandbox": "local", "concurrency": {"episodes": 6},
    }))
    out = tmp_path / "run"
    args = [sys.executable, "-m", "ptebench.cli", "run", str(cfg), "--out", str(out),
            "--executor", "ray", "--address", cluster.address, "--quiet", "--no-catalog"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        _wait_for("3 finished episodes", lambda: _lines(out / "episodes.jsonl") >= 3, proc=proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=120)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    first = (out / "episodes.jsonl").read_text().splitlines()
    assert len(first) == 3  # the other three wait for the release file
    assert {json.loads(x)["spec"]["task_id"] for x in first} == {"w0", "w1", "w2"}
    (markers / "release").touch()
    r = _cli(str(cfg), "--out", str(out), "--executor", "ray", "--address", cluster.address,
             "--quiet", "--resume")
    assert r.returncode == 0, r.stderr
    assert "finished: 3 episodes run (3 already done)" in r.stderr
    eps = load_episodes(out)
    assert sorted(e.spec.task_id for e in eps) == [f"w{i}" for i in range(6)]
    assert (out / "episodes.jsonl").read_text().splitlines()[:3] == first
    man = RunStore(out).read_manifest()
    assert man is not None and man.status == "finished" and man.sessions == 2
    assert man.executor == "ray"


def test_no_node_passing_the_check_is_an_error_naming_them(tmp_path: Path, cluster: Nodes) -> None:
    """ray.resources selecting only the node without Docker: a Docker run cannot start."""
    require_docker()
    with pytest.raises(UserError, match=rf"no node of the cluster can play episodes.*{cluster.nodocker}"):
        run_experiment(parse_experiment(_ctf(
            tasks=[{"name": "ctf", "ids": CTF_IDS[:1]}], executor="ray",
            ray={"address": cluster.address, "resources": {"no_docker": 1}})), tmp_path / "r")
    assert load_episodes(tmp_path / "r") == []
