"""Careless-user attacks on experiments and run folders (issue 16): every bad count or
option is refused at load with exit 2 naming the field, one run folder serves one process at
a time, a failed resume leaves the record as it was, and a full results disk leaves a folder
that --resume completes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import yaml

from ptebench.errors import ConfigError
from ptebench.results.store import RunStore
from ptebench.runners.config import parse_experiment
from ptebench.runners.plan import open_tasks, plan

REPO = Path(__file__).resolve().parents[2]
GOOD: dict[str, object] = {
    "name": "t",
    "models": ["sim/1e20"],
    "scaffolds": ["direct", "best_of_n"],
    "tasks": [{"name": "arith", "limit": 3}],
    "sandbox": "local",
}


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"name": "../../x"}, "name: String should match pattern"),
        ({"sandbox": "docker", "sandbox_options": {"bogus": 1}},
         "sandbox_options: unknown option(s) bogus for the docker sandbox"),
        ({"sandbox": "docker", "sandbox_options": {"max_sandboxes": -3}},
         "sandbox_options: max_sandboxes: -3 (must be an integer ≥ 1)"),
        ({"models": [{"id": "m", "provider": "scripted", "outputs": ["x"], "max_concurrency": 0}]},
         "models[0].max_concurrency: Input should be greater than or equal to 1"),
        ({"limits": {"steps": -1}}, "limits.steps: Input should be greater than or equal to 0"),
        ({"limits": {"tool_timeout_s": -5}}, "limits.tool_timeout_s: Input should be greater than 0"),
        ({"limits": {"wall_s": 0}}, "limits.wall_s: Input should be greater than 0"),
        ({"tasks": [{"name": "arith", "limit": -1}]}, "tasks.0.limit: Input should be greater than or equal to 1"),
        ({"epochs": 0}, "epochs: Input should be greater than or equal to 1"),
        ({"scaffolds": ["direct", {"name": "best_of_n", "params": {"n": 1_000_000_000}}]},
         "scaffolds[1].params.n: 1000000000 is above the maximum 10000 (set max_count"),
    ],
)
def test_bad_counts_and_options_are_refused_at_load(change: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_experiment({**GOOD, **change}, "exp.yaml")
    assert needle in str(e.value), str(e.value)


def test_huge_epochs_are_refused_before_planning() -> None:
    exp = parse_experiment({**GOOD, "epochs": 1_000_000_000})
    with pytest.raises(ConfigError, match=r"the plan has 6,000,000,000 episodes, more than "
                                          r"max_episodes \(200,000\)"):
        plan(exp, open_tasks(exp))
    raised = parse_experiment({**GOOD, "epochs": 2, "max_episodes": 12})
    assert len(plan(raised, open_tasks(raised))) == 12
    with pytest.raises(ConfigError, match="more than max_episodes"):
        low = parse_experiment({**GOOD, "epochs": 2, "max_episodes": 11})
        plan(low, open_tasks(low))
    ok = parse_experiment({**GOOD, "scaffolds": ["direct", {"name": "best_of_n", "params": {"n": 20_000}}],
                           "max_count": 20_000})
    assert ok.max_count == 20_000


def test_unknown_task_options_and_bad_resources_are_refused(tmp_path: Path) -> None:
    exp = parse_experiment({**GOOD, "tasks": [{"name": "arith", "options": {"colour": 1}}]})
    with pytest.raises(ConfigError, match=r"tasks\[0\].options: unknown option\(s\) colour for 'arith'; accepted: none"):
        open_tasks(exp)
    from ptebench.tasks.native import TaskFormatError, load_family

    for bad, needle in (({"cpus": -1}, "greater than 0"), ({"memory_mb": 10**12}, "less than or equal"),
                        ({"pids": 0}, "greater than or equal to 8")):
        folder = tmp_path / uuid.uuid4().hex
        folder.mkdir()
        (folder / "task.yaml").write_text(yaml.safe_dump({
            "spec": 1, "family": "f", "tasks": [{"id": "a", "instructions": "x", "target": "1"}],
            "sandbox": {"resources": bad}}))
        with pytest.raises(TaskFormatError) as e:
            load_family(folder)
        assert "sandbox.resources." + next(iter(bad)) in str(e.value) and needle in str(e.value)


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "ptebench.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300, env=env)


def test_cli_refuses_a_path_name_and_a_zero_concurrency_with_exit_2(tmp_path: Path) -> None:
    for change, needle in (({"name": "../../x"}, "name"),
                           ({"models": [{"id": "m", "provider": "scripted", "outputs": ["x"],
                                         "max_concurrency": 0}]}, "max_concurrency")):
        cfg = tmp_path / "e.yaml"
        cfg.write_text(yaml.safe_dump({**GOOD, **change}))
        r = _cli("run", str(cfg), "--quiet", cwd=tmp_path)
        assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path.parent.parent / "x").exists()


SLOW = {
    "name": "locked",
    "models": ["sim/1e21"],
    "scaffolds": ["react"],
    "baseline": "react",
    "tasks": [{"name": "arith", "limit": 30}],
    "epochs": 2,
    "sandbox": "local",
    "concurrency": {"episodes": 2},
}


def _start(cfg: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "ptebench.cli", "run", str(cfg), "--out", str(out), "--quiet", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_runs_on_one_folder_cannot_overlap(tmp_path: Path) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(SLOW))
    out = tmp_path / "run"
    first = _start(cfg, out)
    deadline = time.monotonic() + 120
    while not (out / "episodes.jsonl").exists() or not (out / "episodes.jsonl").read_bytes():
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    second = _cli("run", str(cfg), "--out", str(out), "--resume", "--quiet")
    assert second.returncode == 2, second.stderr
    said = " ".join(second.stderr.split())  # the console wraps long lines
    assert "in use by another ptebench run (pid" in said and "Traceback" not in said
    assert first.wait(300) == 0, first.communicate()
    ids = [json.loads(ln)["spec"]["episode_id"] for ln in (out / "episodes.jsonl").read_text().splitlines()]
    assert len(ids) == 60 and max(Counter(ids).values()) == 1
    assert len({json.loads(ln)["run_id"] for ln in (out / "episodes.jsonl").read_text().splitlines()}) == 1


def test_a_failed_resume_keeps_the_manifest_finished(tmp_path: Path) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({**GOOD, "name": "done"}))
    out = tmp_path / "run"
    assert _cli("run", str(cfg), "--out", str(out), "--quiet").returncode == 0
    before = RunStore(out).read_manifest()
    assert before is not None and before.status == "finished"
    # the resume breaks before any episode runs: a sandbox option the backend refuses
    broken = {**GOOD, "name": "done", "sandbox": "docker", "sandbox_options": {"bogus": 1}}
    cfg.write_text(yaml.safe_dump(broken))
    r = _cli("run", str(cfg), "--out", str(out), "--resume", "--quiet")
    assert r.returncode == 2 and "bogus" in r.stderr
    after = RunStore(out).read_manifest()
    assert after is not None and after.status == "finished" and after.sessions == before.sessions


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 1.5 MB tmpfs mounted for this test only (needs root; skipped otherwise)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1536k", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_results_disk_is_reported_and_resume_completes(tmp_path: Path, small_disk: Path) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({**GOOD, "name": "full", "scaffolds": ["direct"],
                                   "tasks": [{"name": "arith", "limit": 20}], "epochs": 100,
                                   "concurrency": {"episodes": 4}}))
    out = small_disk / "run"
    r = _cli("run", str(cfg), "--out", str(out), "--quiet")
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    said = " ".join(r.stderr.split())
    assert "No space left on device" in said and "--resume" in said, said
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    manifest = RunStore(out).read_manifest()
    assert manifest is not None and manifest.status == "failed"
    data = (out / "episodes.jsonl").read_bytes()
    assert data.endswith(b"\n"), "no torn line"
    kept = len(data.splitlines())
    assert 0 < kept < 2000
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)
    r = _cli("run", str(cfg), "--out", str(moved), "--resume", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    ids = [json.loads(ln)["spec"]["episode_id"] for ln in (moved / "episodes.jsonl").read_text().splitlines()]
    assert len(ids) == 2000 and len(set(ids)) == 2000
    final = RunStore(moved).read_manifest()
    assert final is not None and final.status == "finished"
