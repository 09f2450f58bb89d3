"""A native folder referenced by path runs through the real runner: sim models, react, the
local sandbox, a per-episode secret the solution has to find."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ptebench.errors import ConfigError
from ptebench.results.store import load
from ptebench.runners.config import parse_experiment
from ptebench.runners.local import run_experiment

TASK = """\
spec: 1
family: local_secret
local_ok: true
tasks:
  - id: find
    instructions: A secret was written somewhere under your working directory. Submit it.
    target: {from_sandbox: {cmd: cat .hidden/secret}}
    setup: setup.sh
    metadata: {category: fs_search, difficulty: 1}
scoring: {method: exact}
validation: {solution: solve.sh}
"""


def test_native_folder_runs_end_to_end_with_the_sim(tmp_path: Path) -> None:
    folder = tmp_path / "task"
    folder.mkdir()
    (folder / "task.yaml").write_text(TASK)
    (folder / "setup.sh").write_text(
        "mkdir -p .hidden && head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \\n' > .hidden/secret\n"
    )
    (folder / "solve.sh").write_text(textwrap.dedent("""\
        # --- step: look around
        ls -a
        # --- step: read it
        cat .hidden/secret
        """))
    exp = parse_experiment({
        "name": "native", "models": ["sim/1e20", "sim/1e24"], "baseline": "direct",
        "scaffolds": ["direct", {"name": "react", "params": {"max_steps": 8}}],
        "tasks": [{"path": str(folder)}], "epochs": 4, "seed": 3, "sandbox": "local",
        "limits": {"steps": 10},
    })
    run_experiment(exp, tmp_path / "run")
    df = load(tmp_path / "run")
    assert len(df) == 2 * 2 * 4
    assert set(df["status"]) == {"ok"}
    by = df.groupby(["scaffold", "model"])["score"].mean()
    # direct never sees the per-episode secret; the big sim model with tools finds it.
    assert by["direct"].max() == 0.0
    assert by[("react", "sim/1e24")] >= 0.75


def _secret_folder(tmp_path: Path, scoring: str) -> Path:
    folder = tmp_path / "task"
    folder.mkdir()
    (folder / "task.yaml").write_text(TASK.replace("scoring: {method: exact}", scoring))
    (folder / "setup.sh").write_text("mkdir -p .hidden && echo s3cr3t > .hidden/secret\n")
    (folder / "solve.sh").write_text("# --- step: read it\ncat .hidden/secret\n")
    return folder


def test_the_familys_epochs_and_reducer_reach_the_run_and_the_ceg_table(tmp_path: Path) -> None:
    """scoring.epochs: n decides the attempts when the experiment sets no epochs, and the
    reducer (at_least_1) combines them in the table the CEG is computed from."""
    from ptebench.results.table import load_input

    folder = _secret_folder(tmp_path, "scoring: {method: exact, epochs: {n: 3, reducer: at_least_1}}")
    exp = parse_experiment({
        "name": "epochs", "models": ["sim/1e20", "sim/1e22"], "baseline": "react",
        "scaffolds": [{"name": "react", "params": {"max_steps": 6}}],
        "tasks": [{"path": str(folder)}, {"name": "arith", "limit": 2}],
        "seed": 1, "sandbox": "local", "limits": {"steps": 8},
    })
    run_experiment(exp, tmp_path / "run")
    df = load(tmp_path / "run")
    per_family = df.groupby("task_family")["epoch"].nunique().to_dict()
    assert per_family == {"local_secret": 3, "arith": 1}
    assert set(df.loc[df.task_family == "local_secret", "score_reducer"]) == {"at_least_1"}
    assert set(df.loc[df.task_family == "arith", "score_reducer"]) == {"mean"}

    table = load_input(tmp_path / "run").table
    cells = table[table["task_id"] == "local_secret/find"].set_index("model")
    assert len(cells) == 2, "one row per (model, scaffold) for an at_least_1 task"
    for model, row in cells.iterrows():
        attempts = df[(df.task_family == "local_secret") & (df.model == model)]
        assert row["score"] == float((attempts["score"] >= 1).any())
        assert row["inference_flop"] == pytest.approx(attempts["flops_epoch"].sum())
    assert (table["task_id"].str.startswith("arith/")).sum() == 2 * 2


def test_an_explicit_experiment_epochs_wins_and_pass_at_k_needs_k(tmp_path: Path) -> None:
    folder = _secret_folder(tmp_path, "scoring: {method: exact, epochs: {n: 4, reducer: pass_at_k, k: 3}}")
    base = {"name": "epochs", "models": ["sim/1e20"], "baseline": "direct", "scaffolds": ["direct"],
            "tasks": [{"path": str(folder)}], "sandbox": "local"}
    run_experiment(parse_experiment({**base, "epochs": 3}), tmp_path / "run")
    df = load(tmp_path / "run")
    assert sorted(df["epoch"]) == [0, 1, 2] and set(df["score_reducer"]) == {"pass_at_3"}
    with pytest.raises(ConfigError, match=r"tasks\[0\]: family 'local_secret' scores pass@3.*runs 2"):
        run_experiment(parse_experiment({**base, "epochs": 2}), tmp_path / "run2")
