"""The whole matrix — every scaffold × every shipped task family — on the sim family,
through the real runner, on a small subset: every episode must produce a valid record."""

from __future__ import annotations

from pathlib import Path

import pytest

from ptebench.models.base import ROLES
from ptebench.records import Episode
from ptebench.registry import names
from ptebench.results.store import RunStore, load
from ptebench.runners.config import parse_experiment
from ptebench.runners.local import run_experiment

SCAFFOLDS = ["direct", "cot", "majority", "best_of_n", "react", "reflexion", "tot", "lats"]


# Families whose setup or scoring runs code as root get the Docker sandbox, as users would.
DOCKER_FAMILIES = {"ctf", "humaneval"}


@pytest.mark.parametrize(
    "family",
    [pytest.param(f, marks=pytest.mark.docker) if f in DOCKER_FAMILIES else f for f in names("task")],
)
def test_every_scaffold_on_every_family_gives_valid_records(tmp_path: Path, family: str) -> None:
    exp = parse_experiment({
        "name": "matrix",
        "models": ["sim/1e20", "sim/1e24"],
        "scaffolds": SCAFFOLDS,
        "tasks": [{"name": family, "limit": 2}],
        "sandbox": "docker" if family in DOCKER_FAMILIES else "local",
        "limits": {"steps": 30, "tokens": 200000, "wall_s": 300},
        "concurrency": {"episodes": 4},
    })
    run_experiment(exp, tmp_path / "r")
    eps = list(RunStore(tmp_path / "r").iter_episodes())
    assert len(eps) == len(SCAFFOLDS) * 2 * 2
    for ep in eps:
        Episode.model_validate_json(ep.model_dump_json())
        where = f"{ep.spec.scaffold}/{ep.spec.model}/{ep.spec.task_id}"
        assert ep.status in ("ok", "limit"), f"{where}: {ep.status} {ep.reason}"
        assert ep.simulated and not ep.oracle_feedback and ep.oracle_calls == 0, where
        assert ep.score is not None and ep.score.value is not None, where
        assert ep.calls and all(c.role in ROLES for c in ep.calls), where
        assert ep.totals.flops_epoch is not None and ep.totals.flops_epoch > 0, where
    df = load(tmp_path / "r")
    assert set(df["scaffold"]) == set(SCAFFOLDS)
    # the large sim model solves at least some of this family with some scaffold
    assert df[df["model"] == "sim/1e24"]["score"].max() == 1.0


@pytest.mark.docker
def test_paper_settings_fit_humaneval_step_budget(tmp_path: Path) -> None:
    """With no experiment limits, LATS (K = 8, n = 5) and Reflexion at their paper defaults
    run to their own end on HumanEval: every self-test run is a step, and the family's
    budget must hold them."""
    exp = parse_experiment({
        "name": "budget",
        "models": ["sim/1e21", "sim/1e23"],
        "scaffolds": ["lats", "reflexion"],
        "tasks": [{"name": "humaneval", "limit": 5}],
        "baseline": "lats",
        "sandbox": "docker",
        "concurrency": {"episodes": 4},
    })
    run_experiment(exp, tmp_path / "r")
    eps = list(RunStore(tmp_path / "r").iter_episodes())
    assert len(eps) == 20
    limited = [f"{e.spec.scaffold}/{e.spec.model}/{e.spec.task_id}: {e.reason}" for e in eps
               if e.status != "ok"]
    assert not limited, limited
    assert max(len(e.steps) for e in eps if e.spec.scaffold == "lats") > 10
