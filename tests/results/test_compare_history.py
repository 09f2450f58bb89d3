"""`ptebench compare` (paired A/B, regression gate) and `ptebench history` (SQLite catalog)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ptebench.records import RunManifest, Score
from ptebench.results import history
from ptebench.results.compare import compare_runs, holm, to_markdown
from ptebench.results.store import RunStore
from tests.results.test_ceg_cli import app


def _csv(path: Path, rates: dict[tuple[str, str], float], n_tasks: int = 60, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    rows = []
    for (model, scaffold), rate in rates.items():
        wins = rng.random(n_tasks) < rate
        rows += [{"family": "f", "model": model, "train_flop": 1e22, "scaffold": scaffold,
                  "task_id": f"t{i}", "score": float(w), "inference_flop": 1e12}
                 for i, w in enumerate(wins)]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_regression_is_detected_and_gates_the_exit_code(tmp_path: Path) -> None:
    a = _csv(tmp_path / "a.csv", {("m", "direct"): 0.8, ("m", "react"): 0.8}, seed=1)
    # react collapses in B; direct is re-drawn from the same rate (no real change)
    b = _csv(tmp_path / "b.csv", {("m", "direct"): 0.8, ("m", "react"): 0.1}, seed=2)
    res = compare_runs(a, b, n_boot=500)
    cells = res.cells.set_index("scaffold")
    assert cells.loc["react", "regression"] and not cells.loc["direct", "regression"]
    assert cells.loc["react", "diff_hi"] < 0 < cells.loc["direct", "diff_hi"]
    assert cells.loc["react", "tasks_down"] > cells.loc["react", "tasks_up"]
    assert "REGRESSION" in to_markdown(res)
    runner = CliRunner()
    gate = runner.invoke(app, ["compare", str(a), str(b), "--fail-on-regression", "--boot", "200"])
    assert gate.exit_code == 1, gate.output
    same = runner.invoke(app, ["compare", str(a), str(a), "--fail-on-regression", "--boot", "200"])
    assert same.exit_code == 0 and "**0 regression(s)**" in same.output


def test_holm_adjustment() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.5])
    assert holm(p).tolist() == pytest.approx([0.04, 0.09, 0.09, 0.5])


def _copy_run(src: Path, dst: Path, run_id: str, started_at: str, drop_scaffold: str | None,
              zero_model: str | None, drop_task: str | None) -> Path:
    """A second real run folder made from the first: new id/time, some episodes changed."""
    store = RunStore(dst)
    for ep in RunStore(src).iter_episodes():
        if ep.spec.scaffold_label == drop_scaffold or ep.spec.task_id == drop_task:
            continue
        ep = ep.model_copy(update={"run_id": run_id})
        if ep.spec.model == zero_model and ep.score is not None:
            ep = ep.model_copy(update={"score": Score(value=0.0, explanation="changed")})
        store.append(ep)
    store.close()
    man = RunManifest.model_validate_json((src / "run.json").read_text())
    store.write_manifest(man.model_copy(update={"run_id": run_id, "started_at": started_at}))
    return dst


def test_run_dirs_match_by_task_and_params_and_report_mismatches(sim_run: Path,
                                                                 tmp_path: Path) -> None:
    b = _copy_run(sim_run, tmp_path / "b", "run-b", "2099-01-01T00:00:00", "react", None,
                  "arith-000")
    res = compare_runs(sim_run, b, n_boot=200)
    cells = res.cells.set_index("scaffold")
    assert set(cells.index) == {"direct", "react"}
    assert any("react" in x for x in res.only_a) and not res.only_b
    assert any("arith-000" in x for x in res.task_mismatches)
    # react vanished from B: a regression (the nightly gate must not pass), not a footnote
    assert int(cells.loc["react", "regression"].sum()) == 3  # react under each sim model
    assert (cells.loc["react", "why"] == "vanished").all()
    assert not cells.loc["direct", "regression"].any() and (cells.loc["direct", "diff"] == 0).all()
    md = to_markdown(res)
    assert "only in A" in md and "arith-000" in md and "REGRESSION (vanished)" in md


def _rewrite_run(src: Path, dst: Path, change, resolved_update=None) -> Path:
    """A copy of a real run folder with each episode passed through ``change`` (None drops
    it) and the manifest's resolved config updated."""
    store = RunStore(dst)
    for ep in RunStore(src).iter_episodes():
        new = change(ep.model_copy(update={"run_id": "run-b"}))
        if new is not None:
            store.append(new)
    store.close()
    man = RunManifest.model_validate_json((src / "run.json").read_text())
    resolved = {**man.resolved, **(resolved_update or {})}
    store.write_manifest(man.model_copy(update={"run_id": "run-b", "resolved": resolved}))
    return dst


def test_a_model_that_errors_every_episode_is_a_regression(sim_run: Path, tmp_path: Path) -> None:
    def broken(ep):
        if ep.spec.model != "sim/1e22":
            return ep
        return ep.model_copy(update={"status": "error", "failure": "model", "score": None,
                                     "reason": "ModelError: HTTP 500 after 6 retries"})

    b = _rewrite_run(sim_run, tmp_path / "b", broken)
    res = compare_runs(sim_run, b, n_boot=100)
    cells = res.cells.set_index("model")
    bad = cells.loc["sim/1e22"]
    assert bad["regression"].all() and (bad["why"] == "errors more").all()
    assert not cells.loc[["sim/1e20", "sim/1e24"], "regression"].any()
    assert bad["status_b"].str.contains(r"error \d+ \(model \d+\)").all()
    assert (bad["error_rate_b"] == 1.0).all() and (bad["error_rate_a"] < 1.0).all()
    gate = CliRunner().invoke(app, ["compare", str(sim_run), str(b), "--fail-on-regression",
                                    "--boot", "50"])
    assert gate.exit_code == 1 and "errors more" in gate.output


def test_more_limits_is_a_regression_and_the_config_diff_is_shown(sim_run: Path,
                                                                  tmp_path: Path) -> None:
    def limited(ep):
        if ep.spec.scaffold_label != "react" or ep.status != "ok":
            return ep
        return ep.model_copy(update={"status": "limit", "reason": "steps limit reached"})

    b = _rewrite_run(sim_run, tmp_path / "b", limited, {"limits": {"steps": 1}, "seed": 7})
    res = compare_runs(sim_run, b, n_boot=100)
    react = res.cells.set_index("scaffold").loc["react"]
    assert react["regression"].all() and react["why"].str.contains("hits limits more").all()
    fields = {path: (va, vb) for path, va, vb in res.config_diff}
    assert fields["seed"] == (0, 7) and fields["limits.steps"][1] == 1
    md = to_markdown(res)
    assert "### Config diff (A → B)" in md and "`seed`: 0 → 7" in md
    assert json.loads(to_json_of(res))["config_diff"]


def to_json_of(res) -> str:
    from ptebench.results.compare import to_json

    return to_json(res)


def test_pair_by_label_matches_two_versions_of_a_scaffold(sim_run: Path, tmp_path: Path) -> None:
    def new_version(ep):
        if ep.spec.scaffold_label != "react":
            return ep
        spec = ep.spec.model_copy(update={"scaffold_params": {**ep.spec.scaffold_params,
                                                               "max_steps": 6}})
        return ep.model_copy(update={"spec": spec})

    b = _rewrite_run(sim_run, tmp_path / "b", new_version)
    by_params = compare_runs(sim_run, b, n_boot=50)
    assert any("react" in x for x in by_params.only_a) and any("react" in x for x in by_params.only_b)
    by_label = compare_runs(sim_run, b, n_boot=50, pair_by="label")
    assert not by_label.only_a and not by_label.only_b
    react = by_label.cells.set_index("scaffold").loc["react"]
    assert (react["n_tasks"] > 0).all() and not react["regression"].any()
    out = CliRunner().invoke(app, ["compare", str(sim_run), str(b), "--pair-by", "label",
                                   "--boot", "50", "--format", "json"])
    assert out.exit_code == 0 and json.loads(out.output)["pair_by"] == "label"
    bad = CliRunner().invoke(app, ["compare", str(sim_run), str(b), "--pair-by", "name"])
    assert bad.exit_code == 2


def test_history_catalog_trend(sim_run: Path, tmp_path: Path, monkeypatch) -> None:
    db = tmp_path / "h.sqlite"
    history.index_run(sim_run, db)
    history.index_run(sim_run, db)  # idempotent
    b = _copy_run(sim_run, tmp_path / "b", "run-b", "2099-01-01T00:00:00", None, "sim/1e24", None)
    history.index_run(b, db)
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2
        per_run = con.execute("SELECT run_id, COUNT(*) FROM summaries GROUP BY run_id").fetchall()
    assert len({n for _, n in per_run}) == 1, "same cells in both runs, no duplicates"
    tr = history.trend(db, model="sim/1e24", scaffold="direct", task_family="arith")
    assert len(tr) == 2 and tr["run_id"].iloc[-1] == "run-b" and tr["value"].iloc[-1] == 0.0
    errs = history.trend(db, metric="error_rate", task_family="echo")
    assert (errs["value"] == 0.5).all(), "echo: 1 of 2 tasks fails in setup"
    monkeypatch.setenv("PTEBENCH_HISTORY", str(db))
    out = CliRunner().invoke(app, ["history", "--model", "sim/1e24", "--format", "json"])
    assert out.exit_code == 0 and len(json.loads(out.output)) == 2 * 2 * 2  # runs×scaffolds×families
    table = CliRunner().invoke(app, ["history", "--metric", "mean_score"])
    assert "SIMULATED" in table.output and "sim/1e22" in table.output


def test_history_index_option_and_bad_metric(sim_run: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PTEBENCH_HISTORY", raising=False)
    monkeypatch.chdir(tmp_path)  # the documented default: runs/history.sqlite under the cwd
    run = tmp_path / "elsewhere" / "r1"
    shutil.copytree(sim_run, run)
    out = CliRunner().invoke(app, ["history", "--index", str(run)])
    assert out.exit_code == 0 and (tmp_path / "runs" / "history.sqlite").exists()
    assert not (tmp_path / "elsewhere" / "history.sqlite").exists()
    from ptebench.errors import UserError

    with pytest.raises(UserError, match="accepted: mean_score"):
        history.trend(tmp_path / "runs" / "history.sqlite", metric="bogus")
