"""A run killed mid-way resumes with every planned episode exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

from ptebench.results.store import RunStore
from ptebench.runners.config import load_experiment
from ptebench.runners.plan import open_tasks, plan

REPO = Path(__file__).resolve().parents[2]
CONFIG = {
    "name": "killme",
    "models": ["sim/1e21", "sim/1e23"],
    "scaffolds": ["direct", "react"],
    "tasks": [{"name": "arith", "limit": 30}],
    "epochs": 2,
    "sandbox": "local",
    "concurrency": {"episodes": 3},
}


def _start(cfg: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "PTEBENCH_HISTORY"}
    env["PYTHONPATH"] = str(REPO)
    cwd = cfg.parent / "cwd"  # the run's working directory: never the repository
    cwd.mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "ptebench.cli", "run", str(cfg), "--out", str(out), "--quiet", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
    )


def _lines(out: Path) -> int:
    p = out / "episodes.jsonl"
    return p.read_bytes().count(b"\n") if p.exists() else 0


def _wait_for(out: Path, n: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while _lines(out) < n:
        assert proc.poll() is None, f"run ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, "run made no progress"
        time.sleep(0.02)


def _planned(cfg: Path) -> set[str]:
    exp, _ = load_experiment(cfg)
    return {s.episode_id for s in plan(exp, open_tasks(exp))}


def test_sigkill_then_resume_gives_each_episode_once(tmp_path: Path) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    out = tmp_path / "run"
    proc = _start(cfg, out)
    _wait_for(out, 25, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _lines(out)
    planned = _planned(cfg)
    assert 25 <= killed_at < len(planned), "the kill must land mid-run"
    # A torn last line (crash mid-write) must also be survivable.
    with (out / "episodes.jsonl").open("a") as f:
        f.write('{"schema_version": 1, "run_id": "torn')
    r = _start(cfg, out, "--resume")
    stdout, stderr = r.communicate(timeout=300)
    assert r.returncode == 0, stderr
    ids = [e.spec.episode_id for e in RunStore(out).iter_episodes()]
    counts = Counter(ids)
    assert set(counts) == planned
    assert max(counts.values()) == 1
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["status"] == "finished" and manifest["sessions"] == 2
    assert f"({killed_at} already done)" in stderr
    # A finished run is indexed in the documented catalog (runs/history.sqlite under the
    # working directory), never beside the run folder (the parent of --out may be shared).
    catalog = tmp_path / "cwd" / "runs" / "history.sqlite"
    assert catalog.exists() and f"indexed in the history catalog {Path('runs/history.sqlite')}" in stderr
    assert not (tmp_path / "history.sqlite").exists()
    hist = subprocess.run([sys.executable, "-m", "ptebench.cli", "history", "--db", str(catalog), "--name", "killme"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert hist.returncode == 0 and "over 1 run(s)" in hist.stdout and "sim/1e23" in hist.stdout, hist


def test_sigterm_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    out = tmp_path / "run"
    proc = _start(cfg, out)
    _wait_for(out, 10, proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "resume with:" in stderr
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["status"] == "interrupted"
    r = _start(cfg, out, "--resume")
    _, stderr = r.communicate(timeout=300)
    assert r.returncode == 0, stderr
    ids = [e.spec.episode_id for e in RunStore(out).iter_episodes()]
    assert sorted(ids) == sorted(_planned(cfg))
