"""`ptebench merge` and several sources for ceg/report, on real sim runs split by task."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from ptebench.errors import UserError
from ptebench.results.cli import register
from ptebench.results.merge import merge_runs
from ptebench.results.store import RunStore, load_episodes
from ptebench.results.transcript import TranscriptStore
from ptebench.runners.config import parse_experiment
from ptebench.runners.local import run_experiment
from ptebench.runners.plan import open_tasks

app = typer.Typer()
register(app)


@app.callback()
def _root() -> None:
    """Keep typer in multi-command mode."""


IDS = ["arith-000", "arith-001", "arith-002", "arith-003"]


def _run(out: Path, ids: list[str], **kw: Any) -> Path:
    exp: dict[str, Any] = {
        "name": "split", "models": ["sim/1e20", "sim/1e22", "sim/1e24"],
        "scaffolds": ["direct", "cot"], "tasks": [{"name": "arith", "ids": ids}],
        "sandbox": "local", "concurrency": {"episodes": 8},
    }
    exp.update(kw)
    run_experiment(parse_experiment(exp), out)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("merge")
    return {"full": _run(d / "full", IDS), "a": _run(d / "a", IDS[:2]), "b": _run(d / "b", IDS[2:])}


def _outcomes(run: Path) -> dict[str, tuple[str, float | None]]:
    eps = load_episodes(run)
    assert len(eps) == len({e.spec.episode_id for e in eps})
    return {e.spec.episode_id: (e.status, e.score.value if e.score else None) for e in eps}


def test_merge_of_two_partial_runs_equals_the_full_run(runs: dict[str, Path], tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["merge", str(runs["a"]), str(runs["b"]), "--out",
                                   str(tmp_path / "m")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "merged 24 episodes from 2 runs" in res.output
    full = _outcomes(runs["full"])
    assert len(full) == 24 and _outcomes(tmp_path / "m") == full
    m = RunStore(tmp_path / "m").read_manifest()
    assert m is not None and m.executor == "merged" and m.status == "finished"
    src_ids = {RunStore(runs[k]).read_manifest().run_id for k in "ab"}  # type: ignore[union-attr]
    assert {str(s["run_id"]) for s in m.merged_from} == src_ids
    assert [s["episodes"] for s in m.merged_from] == [12, 12]
    # Provenance per episode: the source run's id, its host and executor.
    eps = load_episodes(tmp_path / "m")
    assert {e.run_id for e in eps} == src_ids
    assert all(e.host and e.executor == "local" for e in eps)
    a_ids = set(_outcomes(runs["a"]))
    a_run = RunStore(runs["a"]).read_manifest().run_id  # type: ignore[union-attr]
    assert all((e.run_id == a_run) == (e.spec.episode_id in a_ids) for e in eps)
    # Each episode's transcript comes along from its source.
    assert TranscriptStore(tmp_path / "m").ids() == set(full)
    some = eps[0].spec.episode_id
    src = runs["a"] if some in a_ids else runs["b"]
    assert TranscriptStore(tmp_path / "m").get(some) == TranscriptStore(src).get(some)


def test_identical_duplicates_are_kept_once(runs: dict[str, Path], tmp_path: Path) -> None:
    res = merge_runs([runs["full"], runs["a"]], tmp_path / "m")
    assert res.episodes == 24 and res.duplicates == 12
    assert _outcomes(tmp_path / "m") == _outcomes(runs["full"])


def test_conflicting_duplicates_are_refused_by_name(tmp_path: Path) -> None:
    def scripted(out: Path, answer: str) -> Path:
        return _run(out, IDS[:1], models=[{"id": "m", "provider": "scripted", "outputs": [answer]}],
                    scaffolds=["direct"], baseline="direct")

    [arith] = open_tasks(parse_experiment({"name": "x", "models": ["sim/1e20"],
                                           "scaffolds": ["direct"], "tasks": ["arith"]}))
    truth = arith.instances[IDS[0]].reference.answer
    one = scripted(tmp_path / "one", f"ANSWER: {truth}")
    two = scripted(tmp_path / "two", f"ANSWER: {truth}1")
    [eid] = _outcomes(one)
    assert _outcomes(one)[eid] != _outcomes(two)[eid], "the two runs must disagree on the episode"
    proc = subprocess.run([sys.executable, "-m", "ptebench.cli", "merge", str(one), str(two),
                           "--out", str(tmp_path / "m")], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    err = " ".join(proc.stderr.split())
    assert "refusing to merge" in err and eid in err and str(one) in err and str(two) in err
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "m").exists(), "nothing is written on a refused merge"


def test_merge_refuses_an_existing_out_and_a_non_run(runs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(UserError, match="already holds a run"):
        merge_runs([runs["a"], runs["b"]], runs["full"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no ptebench run here"):
        merge_runs([runs["a"], tmp_path / "empty"], tmp_path / "m")


def test_ceg_over_two_sources_equals_ceg_over_their_merge(runs: dict[str, Path], tmp_path: Path) -> None:
    merge_runs([runs["a"], runs["b"]], tmp_path / "m")

    def ceg(*sources: Path) -> Any:
        res = CliRunner().invoke(app, ["ceg", *map(str, sources), "--format", "json",
                                       "--boot", "50"], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        return json.loads(res.output)

    two, merged, full = ceg(runs["a"], runs["b"]), ceg(tmp_path / "m"), ceg(runs["full"])
    # The sim's true-CEG column re-opens the tasks from run.json's experiment, which for a
    # merge of different experiments is the first source's: it says so instead of a number.
    def est(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if not k.startswith("true_")} for r in rows]

    assert est(two["rows"]) == est(merged["rows"]) == est(full["rows"])
    assert any("no sim reference" in str(r["true_note"]) for r in merged["rows"])
    assert two["rows"], "a CEG row for cot against direct"
