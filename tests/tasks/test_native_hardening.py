"""Task folders cannot smuggle host files, unsupported builds are refused, and scorers that
misbehave (block, cannot run) never turn into a score (issue 16)."""

from __future__ import annotations

import asyncio
import os
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


def test_a_dockerfile_build_is_refused_not_ignored(tmp_path: Path) -> None:
    """``sandbox.build`` used to validate and then run on the base image."""
    write(tmp_path, {"Dockerfile": "FROM ptebench/base\nRUN false\n"})
    with pytest.raises(TaskFormatError, match="building a task's own Dockerfile is not supported"):
        family(tmp_path, {"method": "exact"}, {"target": "x"},
               extra={"sandbox": {"build": "Dockerfile"}})


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
