"""Peak memory of the runner during a LATS run whose forks snapshot a big sandbox.

The attack run (issue 16) saw six snapshots of a 150 MB sandbox take the runner from 42 MB to
950 MB, because snapshots were held in the runner's memory. Snapshots now live on disk under
a per-run budget; this runs a real LATS episode (a scripted model whose every sample acts, snapshot branching) on a native
task whose setup writes ``--mb`` MB into the workdir, and prints the runner's peak RSS
(``ru_maxrss``) and the forks LATS made.

    python benchmarks/snapshot_memory.py --mb 150 --forks 40
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import yaml

from ptebench.records import Episode
from ptebench.results.store import RunStore
from ptebench.runners.config import parse_experiment
from ptebench.runners.local import run_experiment


def task_folder(root: Path, mb: int) -> Path:
    folder = root / "bigstate"
    folder.mkdir()
    (folder / "agent_setup.sh").write_text(
        f"head -c {mb}M /dev/urandom > /home/agent/state.bin\n")
    (folder / "task.yaml").write_text(yaml.safe_dump({
        "spec": 1, "family": "bigstate", "license": "MIT",
        "description": "A sandbox holding a big file; the answer is never found.",
        "tasks": [{"id": "main", "instructions": "Find the number. Submit it.",
                   "target": "424242", "agent_setup": "agent_setup.sh"}],
        "sandbox": {"resources": {"cpus": 1, "memory_mb": mb + 256, "pids": 128,
                                  "disk_mb": mb + 64}},
        "limits": {"steps": 400, "tokens": 10_000_000, "wall_s": 3600, "tool_timeout_s": 60},
    }))
    return folder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=150)
    ap.add_argument("--forks", type=int, default=40)
    ap.add_argument("--n-children", type=int, default=5)
    args = ap.parse_args()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as tmp:
        folder = task_folder(Path(tmp), args.mb)
        exp = parse_experiment({
            "name": "snapmem",
            # every sample acts (a bash action), so every child of every expansion is a fork
            "models": [{"id": "looker", "provider": "scripted",
                        "outputs": ["Thought: look around\nAction: bash: ls -la"] * 5000}],
            "scaffolds": [{"name": "lats", "params": {
                "iterations": max(1, -(-args.forks // args.n_children) + 2),
                "n_children": args.n_children, "branching": "snapshot", "max_depth": 30}}],
            "baseline": "lats",
            "tasks": [{"path": str(folder)}],
            "sandbox": "docker",
            "sandbox_options": {"warm": 0, "max_sandboxes": 64},
        })
        t0 = time.monotonic()
        res = run_experiment(exp, Path(tmp) / "run")
        wall = time.monotonic() - t0
        eps: list[Episode] = list(RunStore(res.run_dir).iter_episodes())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    e = eps[0]
    print(f"LATS on a {args.mb} MB sandbox: status {e.status} ({e.reason}), "
          f"forks {e.metrics.get('forks')}, wall {wall:.0f} s")
    print("metrics", e.metrics, "calls", len(e.calls), "steps", len(e.steps), e.submission)
    print(f"runner peak RSS {peak / 1024:.0f} MB (before the run {before / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
