"""Nothing outlives a run: normal end, SIGKILL + `ptebench sandbox cleanup`, faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from ptebench.errors import SandboxError
from ptebench.sandbox.base import SandboxSpec
from ptebench.sandbox.docker import DockerProvider
from tests.sandbox.conftest import SMALL, docker_gate

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def leftovers(run: str) -> dict[str, int]:
    import docker

    c = docker.from_env()
    flt = {"label": f"ptebench.run={run}"}
    snap = {"label": ["ptebench.kind=snapshot", f"ptebench.run={run}"]}
    n = {"containers": len(c.containers.list(all=True, filters=flt, sparse=True)),
         "volumes": len(c.volumes.list(filters=flt)),
         "images": len(c.images.list(filters=snap))}
    c.close()
    return n


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ptebench.cli", "sandbox", *args],
                          env=ENV, capture_output=True, text=True, timeout=120, check=False)


def wait_until(cond: Any, proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 180
    while not cond():
        assert proc.poll() is None, f"ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.05)


def test_sigkilled_runner_leaves_nothing_after_cleanup(tmp_path: Path) -> None:
    docker_gate()
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({
        "name": "killdocker", "models": ["sim/1e21"], "scaffolds": ["direct", "react"],
        "tasks": [{"name": "arith", "limit": 40}], "sandbox": "docker",
        "concurrency": {"episodes": 3},
    }))
    out = tmp_path / "run"
    since = int(time.time()) - 1
    proc = subprocess.Popen(
        [sys.executable, "-m", "ptebench.cli", "run", str(cfg), "--out", str(out), "--quiet"],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (out / "run.json").exists(), proc, "run.json")
        run = json.loads((out / "run.json").read_text())["run_id"]
        wait_until(lambda: leftovers(run)["containers"] >= 2, proc, "live sandboxes")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert leftovers(run)["containers"] >= 1, "SIGKILL must leave containers for cleanup to find"
    r = cli("cleanup", "--run", run)
    assert r.returncode == 0, r.stderr
    assert leftovers(run) == {"containers": 0, "volumes": 0, "images": 0}
    # Creates the killed runner had in flight finish inside the engine; cleanup's extra passes
    # must have caught them: the engine's own event log shows every container it created for
    # this run destroyed (events, not a guessed sleep).
    created, destroyed = container_events(run, since)
    assert created and created == destroyed, (created - destroyed)
    assert leftovers(run) == {"containers": 0, "volumes": 0, "images": 0}


def container_events(run: str, since: int) -> tuple[set[str], set[str]]:
    """Ids of the run's containers the engine logged as created and as destroyed."""
    import docker

    c = docker.from_env()
    created: set[str] = set()
    destroyed: set[str] = set()
    for ev in c.events(since=since, until=int(time.time()) + 1, decode=True,
                       filters={"type": "container", "label": f"ptebench.run={run}"}):
        if ev.get("Action") == "create":
            created.add(ev["id"])
        elif ev.get("Action") == "destroy":
            destroyed.add(ev["id"])
    c.close()
    return created, destroyed


SNAPSHOTTER = textwrap.dedent("""
    import asyncio, sys
    from ptebench.sandbox.base import SandboxSpec
    from ptebench.sandbox.docker import DockerProvider
    async def main():
        p = DockerProvider()
        async with p.acquire(SandboxSpec(read_only_root=False), {"run": sys.argv[1]}) as sb:
            await sb.write_file("f", "x")
            await sb.snapshot()
            print("ready", flush=True)
            await asyncio.sleep(600)
    asyncio.run(main())
""")


def test_sigkill_with_snapshot_image_then_cleanup(tmp_path: Path) -> None:
    docker_gate()
    run = f"pytest-snapkill-{os.getpid()}"
    proc = subprocess.Popen([sys.executable, "-c", SNAPSHOTTER, run], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read() if proc.stderr else ""
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    before = leftovers(run)
    assert before["containers"] >= 1 and before["images"] == 1, before
    r = cli("cleanup", "--run", run)
    assert r.returncode == 0 and "1 snapshot images" in r.stdout, r.stdout + r.stderr
    assert leftovers(run) == {"containers": 0, "volumes": 0, "images": 0}


def test_sigterm_runs_the_cleanup(tmp_path: Path) -> None:
    docker_gate()
    run = f"pytest-term-{os.getpid()}"
    proc = subprocess.Popen([sys.executable, "-c", SNAPSHOTTER, run], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert leftovers(run) == {"containers": 0, "volumes": 0, "images": 0}


async def test_normal_end_and_exceptions_remove_everything() -> None:
    docker_gate()
    run = f"pytest-normal-{os.getpid()}"
    p = DockerProvider(warm=1)
    ids = []
    with pytest.raises(RuntimeError, match="boom"):
        async with p.acquire(SMALL, {"run": run, "episode": "e1"}) as sb:
            ids.append(sb.id)
            raise RuntimeError("boom")
    async with p.acquire(SMALL, {"run": run, "episode": "e2"}) as sb:
        ids.append(sb.id)
        sid = await sb.snapshot()
        child = await sb.restore(sid)
        ids.append(child.id)  # restore() sandboxes are closed by aclose if the caller forgets
    assert len(set(ids)) == 3, "a container is never handed out twice"
    await p.aclose()
    assert leftovers(run) == {"containers": 0, "volumes": 0, "images": 0}


async def test_committed_snapshots_leave_no_anonymous_volumes() -> None:
    """A snapshot by ``docker commit`` (writable root) and its restore leave no volume behind,
    labelled or not (an image from a commit declares the workdir as a volume)."""
    docker_gate()
    import docker

    c = docker.from_env()
    before = {v.name for v in c.volumes.list()}
    p = DockerProvider(warm=0)
    try:
        async with p.acquire(SandboxSpec(read_only_root=False), {"run": "pytest-anon"}) as sb:
            await sb.exec("echo kept > note.txt")
            child = await sb.restore(await sb.snapshot())
            assert (await child.exec("cat note.txt")).stdout.strip() == "kept"
            await child.close()
    finally:
        await p.aclose()
    new = {v.name for v in c.volumes.list()} - before
    c.close()
    assert not new, f"volumes left behind: {sorted(new)}"


async def test_dead_container_becomes_a_sandbox_error() -> None:
    docker_gate()
    p = DockerProvider(warm=0)
    try:
        async with p.acquire(SMALL, {"run": "pytest-dead"}) as sb:
            sb.container.kill()
            with pytest.raises(SandboxError, match="not running"):
                await sb.exec("true")
        async with p.acquire(SandboxSpec(image="ptebench/no-such-image"), {}) as sb:
            pass
    except SandboxError as e:
        assert "not found" in str(e)
    else:
        pytest.fail("a missing image must raise SandboxError")
    finally:
        await p.aclose()


async def test_pooled_container_is_named_after_its_episode() -> None:
    """A warm container was named after the episode whose acquire triggered the refill, and
    that name reached the next episode's record (26 of 40 records named another episode's
    container); `sandbox ls` showed busy pooled containers as "(warm pool)"."""
    from ptebench.sandbox.pool import episode_of

    docker_gate()
    p = DockerProvider(warm=1)
    try:
        names = {}
        for ep in ("ep-one", "ep-two", "ep-three"):
            async with p.acquire(SMALL, {"run": "pytest-pool", "episode": ep}) as sb:
                prof = sb.profile()
                names[ep] = str(prof["container"])
                live = sb.container.client.containers.get(sb.id)
                assert live.name == names[ep]
                labels = live.labels
                assert episode_of(live.name, labels) == ep, (live.name, labels)
        for ep, name in names.items():
            assert ep in name and not any(o in name for o in names if o != ep), names
        waiting = [s for lst in p.pool._ready.values() for s in lst]
        assert waiting and all(episode_of(s.container.name, s.container.labels) == "(warm pool)"
                               for s in waiting)
    finally:
        await p.aclose()
