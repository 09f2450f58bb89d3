"""Task folders cannot smuggle host files, unsupported builds are refused, and scorers that
misbehave (block, cannot run) never turn into a score (issue 16)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ptebench.tasks.cli import app as tasks_app
from ptebench.tasks.native import TaskFormatError, load_family
from ptebench.tasks.native_run import TaskScoringError
from tests.tasks.test_native import family, score, write


def _secret(tmp_path: Path) -> Path:
    s = tmp_path / "host-secret.txt"
    s.write_text("HOST-ONLY")
    os.chmod(s, 0o600)
    return s


@pytest.mark.parametrize("where", ["asset file", "inside an asset folder", "instructions"])
def test_symlink_out_of_the_task_folder_is_refused(tmp_path: Path, where: str) -> None:
    secret = _secret(tmp_path)
    root = tmp_path / "task"
    task: dict[str, object] = {"target": "x"}
    if where == "asset file":
        task["files"] = {"/home/agent/notes.txt": "assets/notes.txt"}
        link = root / "assets" / "notes.txt"
    elif where == "inside an asset folder":
        task["files"] = {"/home/agent/data": "assets/data"}
        (root / "assets" / "data").mkdir(parents=True)
        (root / "assets" / "data" / "fine.txt").write_text("ok")
        link = root / "assets" / "data" / "deep" / "notes.txt"
    else:
        task["instructions"] = "file:prompt.md"
        link = root / "prompt.md"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(secret)
    with pytest.raises(TaskFormatError) as e:
        family(root, {"method": "exact"}, task)
    assert "outside" in str(e.value) and str(secret) in str(e.value)
    res = CliRunner().invoke(tasks_app, ["validate", str(root)])
    assert res.exit_code == 2 and "outside" in res.output, res.output


def test_symlink_inside_the_task_folder_is_fine(tmp_path: Path) -> None:
    root = tmp_path / "task"
    write(root, {"assets/real.txt": "ok"})
    (root / "assets" / "alias.txt").symlink_to(root / "assets" / "real.txt")
    fam = family(root, {"method": "exact"},
                 {"target": "x", "files": {"/home/agent/a.txt": "assets/alias.txt"}})
    assert fam.name == "fam"


def test_a_build_context_symlink_out_of_the_task_folder_is_refused(tmp_path: Path) -> None:
    """The Dockerfile's folder is sent whole to the engine: a link in it to a host file
    would be built into the image."""
    secret = _secret(tmp_path)
    root = tmp_path / "task"
    write(root, {"env/Dockerfile": "FROM ptebench/base\nCOPY . /opt/ctx\n"})
    (root / "env" / "notes.txt").symlink_to(secret)
    with pytest.raises(TaskFormatError) as e:
        family(root, {"method": "exact"}, {"target": "x"}, extra={"sandbox": {"build": "env/Dockerfile"}})
    assert "build context" in str(e.value) and str(secret) in str(e.value)


NONCE = "ptebench.test.nonce"


def _images_gone(root: Path) -> None:
    """Remove what the builds of ``root``'s task made: tagged images and the layers a failed
    build leaves (all carry the test's nonce label), newest first."""
    from ptebench.sandbox import engine

    nonce = (root / "env" / ".nonce").read_text()
    client = engine.client()
    try:
        found = client.images.list(all=True, filters={"label": f"{NONCE}={nonce}"})
        for img in sorted(found, key=lambda i: str(i.attrs.get("Created")), reverse=True):
            with contextlib.suppress(Exception):
                client.images.remove(img.id, force=True)
    finally:
        client.close()


def _build_task(root: Path, dockerfile: str) -> Path:
    """A task whose Dockerfile adds a file its solution prints; the check is the answer."""
    nonce = uuid.uuid4().hex  # a fresh image per test run: the cache is the engine's
    (root / "env").mkdir(parents=True)
    (root / "env" / ".dockerignore").write_text(".nonce\n")
    (root / "env" / ".nonce").write_text(nonce)
    family(root, {"method": "exact"}, {"target": "built-into-the-image", "solution": "solve.sh"},
           extra={"family": f"builds-{nonce[:8]}", "sandbox": {"build": "env/Dockerfile"}},
           files={"env/Dockerfile": dockerfile.replace("NONCE", nonce),
                  "env/payload.txt": "built-into-the-image\n",
                  "solve.sh": "cat /opt/payload.txt\n"})
    return root


ADDS_A_FILE = """\
ARG PTEBENCH_BASE=ptebench/base
FROM ${PTEBENCH_BASE}
LABEL ptebench.test.nonce=NONCE
COPY payload.txt /opt/payload.txt
"""


@pytest.mark.docker
def test_sandbox_build_is_built_seen_inside_and_cached(tmp_path: Path) -> None:
    """``sandbox.build`` is built (offline, FROM ptebench/base): the solution reads the
    file the Dockerfile added; the second validation reuses the image by its content hash."""
    from tests.sandbox.conftest import docker_gate

    docker_gate()
    root = _build_task(tmp_path / "task", ADDS_A_FILE)
    fam = load_family(root)
    try:
        first = CliRunner().invoke(tasks_app, ["validate", str(root), "--run"])
        assert first.exit_code == 0, first.output
        assert "built in" in first.output and "pass" in first.output, first.output
        built = fam.build_image()  # a second load of the folder: the tag exists, nothing built
        tag = built.tag
        assert built.built is False and tag.startswith(f"ptebench/task-{fam.name}:"), built
        assert tag in first.output
        again = CliRunner().invoke(tasks_app, ["validate", str(root)])
        assert again.exit_code == 0 and f"{tag} (cached)" in again.output, again.output
        # a changed context file is a new hash, so a new image
        (root / "env" / "payload.txt").write_text("changed\n")
        changed = load_family(root).build_image()
        assert changed.built is True and changed.tag != tag
    finally:
        _images_gone(root)


@pytest.mark.docker
async def test_a_built_image_still_gets_the_hardened_profile(tmp_path: Path) -> None:
    from ptebench.sandbox.docker import DockerProvider
    from tests.sandbox.conftest import docker_gate

    docker_gate()
    root = _build_task(tmp_path / "task", ADDS_A_FILE)
    fam = load_family(root)
    fam.prepare_images()
    spec = fam.sandbox_spec(fam.instances()[0])
    assert spec is not None and spec.image == fam.build_image().tag and spec.build is None
    provider = DockerProvider(warm=0)
    try:
        async with provider.acquire(spec, {"ptebench.run": "pytest-build"}) as sb:
            assert (await sb.exec("cat /opt/payload.txt")).stdout == "built-into-the-image\n"
            caps = (await sb.exec("grep CapEff /proc/self/status; touch /opt/x", user="root"))
            assert "0000000000000000" in caps.stdout and caps.exit_code != 0, caps
            prof = sb.profile()
            assert sb.container.attrs["Config"]["Image"] == spec.image
            assert prof["read_only_root"] is True and prof["cap_drop"] == ["ALL"], prof
            assert prof["no_new_privileges"] is True and prof["network"] == "none", prof
    finally:
        await provider.aclose()
        _images_gone(root)


@pytest.mark.docker
def test_a_failing_dockerfile_fails_validate_and_the_run(tmp_path: Path) -> None:
    """``RUN false``: `tasks validate` exits 2 naming the folder and the step; a run stops
    before any episode and writes nothing."""
    from ptebench.runners.config import parse_experiment
    from ptebench.runners.local import run_experiment
    from ptebench.tasks.native import TaskBuildError
    from tests.sandbox.conftest import docker_gate

    docker_gate()
    root = _build_task(tmp_path / "task", ADDS_A_FILE + "RUN echo about to fail && false\n")
    res = CliRunner().invoke(tasks_app, ["validate", str(root)])
    assert res.exit_code == 2, res.output
    flat = " ".join(res.output.split())
    assert f"task folder {root}" in flat, flat
    assert re.search(r"build failed at step 5/\d+ \(RUN echo about to fail && false\)", flat), flat
    assert "Traceback" not in res.output
    exp = parse_experiment({
        "name": "build-fails",
        "models": [{"id": "m", "provider": "scripted", "outputs": ["Action: submit: x"]}],
        "scaffolds": [{"name": "react", "params": {"max_steps": 2}}], "baseline": "react",
        "tasks": [{"path": str(root)}], "sandbox": "docker", "sandbox_options": {"warm": 0},
    })
    try:
        with pytest.raises(TaskBuildError, match="RUN echo about to fail"):
            run_experiment(exp, tmp_path / "run")
    finally:
        _images_gone(root)
    assert not (tmp_path / "run" / "run.json").exists()


SLOW = """\
import time

def score(submission, target):
    time.sleep(40)
    return 1.0
"""


async def test_a_blocking_python_scorer_is_cut_at_its_timeout_and_the_loop_runs(tmp_path: Path) -> None:
    fam = family(tmp_path, {"method": "python", "function": "score.py:score", "timeout_s": 1},
                 {"target": "10"}, files={"score.py": SLOW})
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    t = asyncio.create_task(ticker())
    try:
        with pytest.raises(TaskScoringError, match="did not return within timeout_s=1s"):
            await score(fam, "10")
    finally:
        t.cancel()
    assert ticks >= 5, "the event loop kept running while the scorer slept"


@pytest.mark.parametrize("code", [125, 126])
async def test_a_check_script_that_cannot_run_is_an_error_not_a_zero(tmp_path: Path, code: int) -> None:
    fam = family(tmp_path, {"method": "check_script", "script": "check.sh", "submission": "state",
                            "user": "agent"},
                 {}, files={"check.sh": f"echo 'bash: fork: Resource temporarily unavailable' >&2\nexit {code}\n"})
    with pytest.raises(TaskScoringError, match=f"infrastructure error.*exit {code}") as info:
        await score(fam, None)
    # counted as an infrastructure failure of the run, not as the task's scorer crashing
    from ptebench.runners.failures import classify
    assert classify(info.value, "score") == "sandbox"


async def test_a_fork_failure_in_a_check_script_is_an_error(tmp_path: Path) -> None:
    fam = family(tmp_path, {"method": "check_script", "script": "check.sh", "submission": "state",
                            "user": "agent"},
                 {}, files={"check.sh": "echo 'bash: fork: retry: Resource temporarily unavailable' >&2\nexit 1\n"})
    with pytest.raises(TaskScoringError, match="infrastructure error"):
        await score(fam, None)


def test_load_family_still_loads_the_shipped_ctf_suite() -> None:
    from ptebench.tasks.ctf_suite import CtfSuite

    suite = CtfSuite()
    assert len(suite.families) >= 16
    assert load_family(next(iter(suite.families.values())).root).name


@pytest.mark.docker
async def test_validate_run_stops_the_solutions_processes_before_scoring(tmp_path: Path) -> None:
    """`tasks validate --run` scores the reference solution as the runner scores an agent:
    after stopping what it left running. The check fails while a process of the solution
    is alive, so it passes only if validation stopped the agent first."""
    from ptebench.sandbox.docker import DockerProvider
    from ptebench.tasks.validate import check_solution

    check = "if pgrep -u agent -f 'sleep 1007' >/dev/null; then exit 1; fi\nexit 0\n"
    fam = family(tmp_path, {"method": "check_script", "script": "check.sh", "submission": "state"},
                 {"target": "x", "solution": "solve.sh"},
                 extra={"sandbox": {"image": "ptebench/base", "user": "agent"}},
                 files={"check.sh": check, "solve.sh": "setsid -f sleep 1007\necho done\n"})
    inst = fam.instances()[0]
    provider = DockerProvider(max_sandboxes=1)
    try:
        res = await check_solution(fam, inst, lambda spec: provider.acquire(
            spec, {"ptebench.run": "pytest-validate-stop"}))
    finally:
        await provider.aclose()
    assert res.error is None, res.error
    assert res.solved is not None and res.solved.value == 1.0, res
