"""Harbor-format tasks in real Docker sandboxes: the oracle passes, a wrong attempt fails,
tests/ and solution/ are out of the agent's reach during the episode, a compose service answers
on its port while its files stay unreadable, and `tasks validate --run` tells broken tasks from
working ones.

The fixture tasks (tests/tasks/harbor_tasks) were written for these tests; their Dockerfiles
start FROM the local ptebench/base image, so nothing is pulled.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ptebench.errors import ConfigError
from ptebench.sandbox.base import Sandbox, ServiceSandbox
from ptebench.tasks.base import TaskOptions
from ptebench.tasks.harbor import HarborFamily, load_harbor
from ptebench.tasks.validate import check_solution
from tests.tasks.docker_sandbox import docker_sandbox

pytestmark = pytest.mark.docker

HERE = Path(__file__).parent
FIXTURES = HERE / "harbor_tasks"
COOKBOOK = HERE / "data" / "harbor_cookbook"
TESTS_MARKER = "PTEBENCH-HARBOR-TESTS-MARKER-7f3a91"
SOLUTION_MARKER = "PTEBENCH-HARBOR-SOLUTION-MARKER-c2d804"


def _family(path: Path = FIXTURES, **kw: object) -> HarborFamily:
    return load_harbor(path, **kw)  # type: ignore[arg-type]


def _acquire(spec):  # type: ignore[no-untyped-def]
    return docker_sandbox(spec)


@pytest.mark.parametrize("task_id", ["sum-numbers", "vault-service"])
async def test_oracle_passes_empty_fails_verifier_deterministic(task_id: str) -> None:
    fam = _family()
    (inst,) = fam.instances(TaskOptions(ids=[task_id]))
    res = await check_solution(fam, inst, _acquire)
    assert res.error is None, res.error
    assert res.empty is not None and res.empty.value == 0.0, res.empty
    assert res.oracle_passes, f"{res.solved}\n{res.log}"
    assert res.deterministic is True and res.verdict == "ok"


async def test_wrong_attempt_fails_and_rewards_are_non_binary() -> None:
    fam = _family()
    (inst,) = fam.instances(TaskOptions(ids=["sum-numbers"]))
    spec = fam.sandbox_spec(inst)
    assert spec is not None and spec.workdir == "/app" and spec.network == "none"
    async with docker_sandbox(spec) as box:
        await fam.setup(box, inst)
        # a wrong sum, a right count: one of two checks
        assert (await box.exec("echo 42 > answer.txt && wc -l < numbers.txt > count.txt")).ok
        half = await fam.score(box, inst, None)
        assert half.value == 0.5, half
        assert (await box.exec("echo 1 > count.txt")).ok
        zero = await fam.score(box, inst, None)
        assert zero.value == 0.0, zero


async def test_agent_cannot_read_tests_or_solution_during_the_episode() -> None:
    fam = _family()
    (inst,) = fam.instances(TaskOptions(ids=["sum-numbers"]))
    spec = fam.sandbox_spec(inst)
    assert spec is not None
    async with docker_sandbox(spec) as box:
        await fam.setup(box, inst)
        # the agent's view: no /tests, no /solution, the markers nowhere on the filesystem
        assert not (await box.exec("ls /tests")).ok
        assert not (await box.exec("ls /solution")).ok
        hunt = await box.exec(
            f"grep -rls -e {TESTS_MARKER} -e {SOLUTION_MARKER} / --exclude-dir=proc --exclude-dir=sys",
            timeout=120)
        assert hunt.stdout.strip() == "", hunt.stdout
        assert (await box.exec("test -e /app/numbers.txt")).ok
        # scoring uploads tests/ (so the hunt above could have found it there)
        await fam.score(box, inst, None)
        after = await box.exec(f"grep -rl {TESTS_MARKER} /tests", user="root")
        assert after.stdout.strip() == "/tests/marker.txt"


async def _http_get(box: Sandbox, url: str) -> str:
    res = await box.exec(["python3", "-c", f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=5).read().decode())"], timeout=30)
    assert res.ok, res.stderr
    return res.stdout


async def test_service_port_answers_but_its_files_are_unreadable() -> None:
    fam = _family()
    (inst,) = fam.instances(TaskOptions(ids=["vault-service"]))
    spec = fam.sandbox_spec(inst)
    assert spec is not None and list(spec.services) == ["vault"]
    async with docker_sandbox(spec) as box:
        await fam.setup(box, inst)
        assert isinstance(box, ServiceSandbox)
        flag = (await box.exec_service("vault", "cat /srv/vault/flag.txt")).stdout.strip()
        assert flag.startswith("VAULT-FLAG-")
        # the port answers, by the service's name
        assert "POST /login" in await _http_get(box, "http://vault:8080/")
        # the attack: every way the agent's container has to the service's files fails
        attempts = {
            "cat": "cat /srv/vault/flag.txt",
            "find": "find / -xdev -name flag.txt 2>/dev/null",
            "grep": f"grep -rs {flag} / --exclude-dir=proc --exclude-dir=sys",
            "procs": "ps -eo args",
            "docker socket": "ls -l /var/run/docker.sock /run/docker.sock",
        }
        for what, cmd in attempts.items():
            res = await box.exec(cmd, timeout=120)
            assert flag not in res.stdout + res.stderr, what
            assert "server.py" not in res.stdout, f"{what}: the service's process is visible"
        root = await box.exec("cat /srv/vault/flag.txt", user="root")
        assert not root.ok and flag not in root.stdout
        profile = box.profile()
        assert [s["name"] for s in profile["services"]] == ["vault"]  # type: ignore[index]
        assert profile["network_kind"] == "internal" and profile["host_reachable"] is False


async def test_services_are_torn_down_with_the_episode() -> None:
    import docker
    import docker.errors

    fam = _family()
    (inst,) = fam.instances(TaskOptions(ids=["vault-service"]))
    spec = fam.sandbox_spec(inst)
    assert spec is not None
    client = docker.from_env()
    try:
        async with docker_sandbox(spec) as box:
            assert isinstance(box, ServiceSandbox)
            name = str(box.profile()["services"][0]["container"])  # type: ignore[index]
            assert client.containers.get(name).status == "running"
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(name)
    finally:
        client.close()


async def test_cleanup_removes_services_left_behind() -> None:
    """A run killed before it closed its sandbox leaves service containers; cleanup by run
    label removes them (as `ptebench sandbox cleanup --run` does)."""
    import docker
    import docker.errors

    from ptebench.sandbox import engine
    from ptebench.sandbox.docker import purge
    from ptebench.sandbox.pool import image_info, start

    fam = _family()
    (inst,) = fam.instances(TaskOptions(ids=["vault-service"]))
    spec = fam.sandbox_spec(inst)
    assert spec is not None
    run = "test-harbor-cleanup"
    client = engine.client()
    try:
        info = image_info(client, spec.image, spec.user, spec.workdir)
        labels = {"ptebench.run": run, "ptebench.owner": "gone", "ptebench.kind": "sandbox"}
        started = await asyncio.get_running_loop().run_in_executor(
            None, start, client, spec, labels, info, "ptebench-test-harbor-cleanup")
        assert started.services is not None
        names = [c.name for c in started.services.values()]
        n = purge(run=run)
        assert n["containers"] >= 2
        for nm in names:
            with pytest.raises(docker.errors.NotFound):
                client.containers.get(nm)
        assert not client.networks.list(filters={"label": f"ptebench.run={run}"})
    finally:
        client.close()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    import os

    r = subprocess.run([sys.executable, "-m", "ptebench.cli", *args], capture_output=True,
                       text=True, timeout=900, check=False, env={**os.environ, "COLUMNS": "400"})
    r.stdout = " ".join(r.stdout.split())  # one line per word run: rich may still wrap paths
    return r


def test_validate_run_passes_fixtures_and_flags_broken_tasks(tmp_path: Path) -> None:
    good = _cli("tasks", "validate", str(FIXTURES), "--run", "--concurrency", "2")
    assert good.returncode == 0, good.stdout + good.stderr
    for t in ("sum-numbers", "vault-service"):
        assert f"{t}: ok · oracle passes yes · verifier deterministic yes" in good.stdout
    # a task whose oracle is wrong, and one whose verifier disagrees with itself
    broken = tmp_path / "broken"
    shutil.copytree(FIXTURES / "sum-numbers", broken / "wrong-oracle")
    (broken / "wrong-oracle" / "solution" / "solve.sh").write_text("#!/bin/bash\necho 1 > answer.txt\n")
    shutil.copytree(FIXTURES / "sum-numbers", broken / "flaky-verifier")
    (broken / "flaky-verifier" / "tests" / "test.sh").write_text(
        "#!/bin/bash\n# right on its first two runs (empty attempt, oracle), 0 from the third on:\n"
        "# a verifier that depends on hidden state\n"
        "n=$(( $(cat /tmp/runs 2>/dev/null || echo 0) + 1 )); echo $n > /tmp/runs\n"
        "if [ $n -lt 3 ] && [ \"$(cat /app/answer.txt 2>/dev/null)\" = \"$(cat /tests/expected_sum.txt)\" ]; "
        "then echo 1; else echo 0; fi > /logs/verifier/reward.txt\n")
    bad = _cli("tasks", "validate", str(broken), "--run")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "wrong-oracle: broken: oracle fails · oracle passes no" in bad.stdout
    assert "flaky-verifier: nondeterministic verifier · oracle passes yes · verifier deterministic no" in bad.stdout
    assert "0/2 solutions pass, 1 broken" in bad.stdout


def test_unpullable_from_image_names_the_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    """The public simple-task recipe is FROM ubuntu:24.04, which no registry here supplies."""
    monkeypatch.delenv("PTEBENCH_IMAGE_MAP", raising=False)
    fam = _family(COOKBOOK / "simple-task")
    with pytest.raises(ConfigError) as ei:
        fam.instances(TaskOptions())
    msg = str(ei.value)
    assert "FROM ubuntu:24.04" in msg and "PTEBENCH_IMAGE_MAP='ubuntu:24.04=ptebench/base'" in msg
    assert "image_map" in msg


async def test_image_map_builds_the_public_recipe_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTEBENCH_IMAGE_MAP", "ubuntu:24.04=ptebench/base")
    fam = _family(COOKBOOK / "simple-task")
    (inst,) = fam.instances(TaskOptions())
    spec = fam.sandbox_spec(inst)
    assert spec is not None and spec.image.startswith("ptebench/harbor-simple-task-simple-task-main:")
    again = _family(COOKBOOK / "simple-task").sandbox_spec(inst)
    assert again is not None and again.image == spec.image  # same content, same tag: no rebuild
    async with docker_sandbox(spec) as box:
        await fam.setup(box, inst)
        res = await box.exec(inst.reference.actions[0].input)
        assert res.ok, res.stderr
        assert (await box.read_file("/app/hello.txt")).decode().strip() == "Hello, world!"


def test_a_run_scores_harbor_episodes(tmp_path: Path) -> None:
    """`ptebench run` with a harbor: entry: the simulated model under react replays the oracle
    and scores 1; direct acts not at all and scores 0. Episodes record the services."""
    import json

    from ptebench.runners.config import parse_experiment
    from ptebench.runners.local import run_experiment

    exp = parse_experiment({
        "name": "harbor", "models": ["sim/1e24"], "baseline": "direct",
        "scaffolds": ["direct", {"name": "react", "params": {"max_steps": 5}}],
        "tasks": [{"harbor": {"path": str(FIXTURES)}}], "sandbox": "docker",
        "concurrency": {"episodes": 4},
    })
    run_experiment(exp, tmp_path / "r")
    eps = [json.loads(line) for line in (tmp_path / "r" / "episodes.jsonl").read_text().splitlines()]
    got = {(e["spec"]["scaffold"], e["spec"]["task_id"]): e for e in eps}
    assert len(got) == 4 and all(e["status"] == "ok" for e in eps), [e["reason"] for e in eps]
    for task in ("sum-numbers", "vault-service"):
        assert got[("react", task)]["score"]["value"] == 1.0
        assert got[("direct", task)]["score"]["value"] == 0.0
    profile = got[("react", "vault-service")]["sandbox_profile"]
    assert [s["name"] for s in profile["services"]] == ["vault"] and profile["cap_drop"] == ["ALL"]
