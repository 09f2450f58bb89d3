"""Careless-user attacks on experiments and run folders (issue 16): every bad count or
option is refused at load with exit 2 naming the field, one run folder serves one process at
a time, a failed resume leaves the record as it was, and a full results disk leaves a folder
that --resume completes."""

from __future__ import annotations

import json
import os
import shutil
import signal
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


def test_sigterm_while_a_host_scorer_blocks_ends_the_run(tmp_path: Path) -> None:
    """The attack run's python scorer slept 40 s and SIGTERM waited for it: the scorer now
    runs off the event loop, so SIGTERM ends the run while the scorer still sleeps (an hour:
    the run could not end by waiting for it) and the manifest says interrupted."""
    started = tmp_path / "scorer-started"
    task = tmp_path / "slowscore"
    task.mkdir()
    (task / "score.py").write_text(
        "import pathlib, time\n\n"
        "def score(submission, target):\n"
        f"    pathlib.Path({str(started)!r}).write_text('x')\n"
        "    time.sleep(3600)\n"
        "    return 1.0\n")
    (task / "task.yaml").write_text(yaml.safe_dump({
        "spec": 1, "family": "slowscore", "local_ok": True,
        "tasks": [{"id": "t", "instructions": "Say 10.", "target": "10"}],
        "scoring": {"method": "python", "function": "score.py:score", "timeout_s": 3600},
    }))
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({
        "name": "slowscore", "models": [{"id": "m", "provider": "scripted", "outputs": ["10"]}],
        "scaffolds": ["direct"], "baseline": "direct", "tasks": [{"path": str(task)}],
        "sandbox": "local",
    }))
    out = tmp_path / "run"
    proc = _start(cfg, out)
    deadline = time.monotonic() + 120  # a guard against a run that never scores, not a measure
    while not started.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the scorer never started"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(600)  # far below the scorer's hour: only a run that does not wait ends
    finally:
        if proc.poll() is None:
            proc.kill()
    manifest = RunStore(out).read_manifest()
    assert manifest is not None and manifest.status == "interrupted", manifest


def test_sigterm_keeps_the_interrupted_episode_and_resume_supersedes_it(tmp_path: Path) -> None:
    """SIGTERM while the model server holds the episode's call: the episode has no line in
    episodes.jsonl (so --resume runs it), but its transcript so far — the cancelled call
    included — is kept as an ``interrupted`` row that ``ptebench show RUN --interrupted``
    prints; after --resume the finished record supersedes it."""
    from typer.testing import CliRunner

    from ptebench.cli import app
    from ptebench.results.transcript import TranscriptStore, load_transcript
    from tests.models.wire import WireServer

    with WireServer() as srv:
        srv.hold = True
        cfg = tmp_path / "exp.yaml"
        cfg.write_text(yaml.safe_dump({
            "name": "held", "sandbox": "local", "scaffolds": ["direct"], "baseline": "direct",
            "tasks": [{"name": "arith", "limit": 1}],
            "models": [{"id": "stub", "provider": "openai", "model": "stub-model",
                        "base_url": srv.url + "/v1", "timeout_s": 600, "max_retries": 0}],
        }))
        out = tmp_path / "run"
        proc = _start(cfg, out)
        try:
            srv.wait_held(1, timeout=120)
            proc.send_signal(signal.SIGTERM)
            proc.wait(120)
        finally:
            if proc.poll() is None:
                proc.kill()
        srv.hold = False
        srv.release_one()
        manifest = RunStore(out).read_manifest()
        assert manifest is not None and manifest.status == "interrupted", proc.communicate()
        assert list(RunStore(out).iter_episodes()) == []
        store = TranscriptStore(out)
        try:
            [cut] = store.interrupted()
        finally:
            store.close()
        assert cut.reason.startswith("interrupted") and not cut.superseded
        assert [c.error is not None and c.error.startswith("cancelled after ")
                for c in cut.transcript.calls] == [True], cut.transcript.calls
        shown = CliRunner().invoke(app, ["show", str(out), "--interrupted"])
        assert shown.exit_code == 0, shown.output
        assert cut.spec.episode_id in shown.output and "cancelled after" in shown.output

        resumed = _start(cfg, out, "--resume")
        _, err = resumed.communicate(timeout=300)
        assert resumed.returncode == 0, err
    [ep] = list(RunStore(out).iter_episodes())
    assert ep.spec.episode_id == cut.spec.episode_id and ep.status == "ok", ep.reason
    assert [c.error for c in load_transcript(out, ep.spec.episode_id).calls] == [None]
    store = TranscriptStore(out)
    try:
        assert store.interrupted() == []
        [old] = store.interrupted(include_superseded=True)
        assert old.superseded and old.spec.episode_id == ep.spec.episode_id
    finally:
        store.close()
    again = CliRunner().invoke(app, ["show", str(out), "--interrupted"])
    assert again.exit_code == 0 and "no interrupted episodes" in again.output, again.output


HUGE = {**GOOD, "scaffolds": ["direct"], "baseline": "direct",
        "tasks": [{"name": "arith", "limit": 10}], "epochs": 1_000_000,
        "max_episodes": 10_000_000}
"""10^7 episodes: allowed by a raised max_episodes, far too many to hold as specs."""


def test_a_raised_bound_plans_lazily_without_memory_per_episode() -> None:
    """A plan of 10^7 episodes is a count and a generator: making it, reading its first
    10,000 specs and testing membership leaves the process's peak RSS where it was (the
    list of specs the old planner built measured 1.4 KB per spec here: ~14 GB for this plan)."""
    import itertools
    import resource

    from ptebench.runners.plan import make_plan

    exp = parse_experiment(HUGE, "exp.yaml")
    tasks = open_tasks(exp)
    before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    planned = make_plan(exp, tasks)
    assert len(planned) == 10_000_000
    head = list(itertools.islice(planned, 10_000))
    assert len({s.episode_id for s in head}) == 10_000
    assert all(planned.contains(s) for s in head[:100])
    assert not planned.contains(head[0].model_copy(update={"epoch": 1_000_000}))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kb) / 1024
    assert grown_mb < 200, f"planning grew the peak RSS by {grown_mb:.0f} MB"
    # the order is still epoch-major: the first 10 specs are epoch 0 of all 10 instances
    assert [s.epoch for s in head[:10]] == [0] * 10 and head[10].epoch == 1


def test_a_huge_run_stays_small_and_answers_sigterm(tmp_path: Path) -> None:
    """A real run of the 10^7-episode plan: episodes start at once, the runner's peak RSS
    (VmHWM of the process) stays far below what the specs would take, and SIGTERM ends it
    with the manifest interrupted and the plan's size recorded."""
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(HUGE))
    out = tmp_path / "run"
    proc = _start(cfg, out)
    deadline = time.monotonic() + 300  # a guard against a run that never starts, not a measure
    try:
        while not (out / "episodes.jsonl").exists() or \
                (out / "episodes.jsonl").read_text().count("\n") < 20:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no episode was recorded"
            time.sleep(0.1)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        peak_mb = int(next(ln for ln in status.splitlines() if ln.startswith("VmHWM:")).split()[1]) / 1024
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert peak_mb < 1024, f"the runner's peak RSS was {peak_mb:.0f} MB"
    manifest = RunStore(out).read_manifest()
    assert manifest is not None and manifest.status == "interrupted"
    assert manifest.planned_episodes == 10_000_000
