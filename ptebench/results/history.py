"""The run catalog: an embedded SQLite file indexing every run, for trends over nights.

Two tables: ``runs`` (one row per run: its manifest) and ``summaries`` (one row per run ×
model × scaffold × task family: episodes, errors, mean score, FLOPs, cost). Re-indexing a
run replaces its rows, so indexing is idempotent and a resumed run just updates.

Where the catalog lives: the path given (``ptebench run --catalog``, ``history --db``), else
``$PTEBENCH_HISTORY``, else ``runs/history.sqlite`` under the current directory.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ptebench.errors import UserError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY, name TEXT, path TEXT, started_at TEXT, finished_at TEXT,
  status TEXT, git_sha TEXT, package_version TEXT, planned_episodes INTEGER,
  n_episodes INTEGER, simulated INTEGER, manifest_json TEXT, indexed_at TEXT
);
CREATE TABLE IF NOT EXISTS summaries (
  run_id TEXT, model TEXT, scaffold TEXT, params_json TEXT, task_family TEXT,
  n_episodes INTEGER, n_errors INTEGER, mean_score REAL, mean_flops REAL, mean_cost REAL,
  mean_wall_s REAL,
  PRIMARY KEY (run_id, model, scaffold, task_family)
);
"""
METRICS = ("mean_score", "error_rate", "mean_flops", "mean_cost", "mean_wall_s", "n_episodes")


def default_db() -> Path:
    """``$PTEBENCH_HISTORY``, else ``runs/history.sqlite`` under the current directory — never
    beside a run folder chosen with ``--out`` (which may be a shared temporary folder)."""
    env = os.environ.get("PTEBENCH_HISTORY")
    if env:
        return Path(env)
    return Path("runs") / "history.sqlite"


def _connect(db: Path) -> sqlite3.Connection:
    db.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db)
    con.executescript(SCHEMA)
    return con


def index_run(run_dir: str | Path, db: str | Path | None = None) -> Path:
    """Add (or refresh) one run in the catalog; returns the catalog path.

    Called by the runner at the end of every run and by ``ptebench history --index``.

    Raises:
        UserError: run_dir is not a ptebench run (no run.json / episodes.jsonl).
    """
    from ptebench.results import store

    run = Path(run_dir)
    manifest_path = run / "run.json"
    if not manifest_path.exists():
        raise UserError(f"{run}: not a ptebench run (no run.json)")
    manifest = json.loads(manifest_path.read_text())
    df = store.load(run)
    db_path = Path(db) if db is not None else default_db()
    score = pd.Series(pd.to_numeric(df["score"], errors="coerce"), index=df.index)
    df = df.assign(score_num=score.where(np.asarray(df["status"] != "error", bool)),
                   is_error=(df["status"] == "error").astype(int))
    summ = df.groupby(["model", "scaffold", "params_json", "task_family"], dropna=False).agg(
        n_episodes=("episode_id", "size"), n_errors=("is_error", "sum"),
        mean_score=("score_num", "mean"), mean_flops=("flops_epoch", "mean"),
        mean_cost=("cost_usd", "mean"), mean_wall_s=("wall_s", "mean")).reset_index()
    run_id = str(manifest.get("run_id", run.name))
    with closing(_connect(db_path)) as con, con:
        con.execute("DELETE FROM summaries WHERE run_id = ?", (run_id,))
        con.execute(
            "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (run_id, manifest.get("name"), str(run.resolve()), manifest.get("started_at"),
             manifest.get("finished_at"), manifest.get("status"), manifest.get("git_sha"),
             manifest.get("package_version"), manifest.get("planned_episodes"), len(df),
             int(bool(df["simulated"].any())) if len(df) else 0, json.dumps(manifest),
             datetime.now(UTC).isoformat(timespec="seconds")))
        con.executemany(
            "INSERT OR REPLACE INTO summaries VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [(run_id, str(r["model"]), str(r["scaffold"]), str(r["params_json"]),
              str(r["task_family"]), int(r["n_episodes"]), int(r["n_errors"]),
              _nan(r["mean_score"]), _nan(r["mean_flops"]), _nan(r["mean_cost"]),
              _nan(r["mean_wall_s"])) for r in summ.to_dict(orient="records")])
    return db_path


def _nan(v: object) -> float | None:
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if f != f else f


def trend(db: str | Path, metric: str = "mean_score", name: str | None = None,
          model: str | None = None, scaffold: str | None = None,
          task_family: str | None = None) -> pd.DataFrame:
    """One row per run (oldest first) × (model, scaffold, task family) with the metric.

    Raises:
        UserError: unknown metric, or no catalog at db.
    """
    if metric not in METRICS:
        raise UserError(f"--metric: unknown metric {metric!r}; accepted: {', '.join(METRICS)}")
    db_path = Path(db)
    if not db_path.exists():
        raise UserError(f"{db_path}: no history catalog yet (index a run with "
                        "`ptebench history --index RUN_DIR`)")
    value = ("CAST(s.n_errors AS REAL) / s.n_episodes" if metric == "error_rate"
             else f"s.{metric}")
    sql = (f"SELECT r.started_at, r.name, r.run_id, r.simulated, s.model, s.scaffold, "
           f"s.task_family, {value} AS value FROM summaries s JOIN runs r USING (run_id) "
           "WHERE 1=1")
    args: list[str] = []
    for col, v in (("r.name", name), ("s.model", model), ("s.scaffold", scaffold),
                   ("s.task_family", task_family)):
        if v is not None:
            sql += f" AND {col} = ?"
            args.append(v)
    sql += " ORDER BY r.started_at, s.model, s.scaffold, s.task_family"
    with closing(sqlite3.connect(db_path)) as con:
        return pd.read_sql_query(sql, con, params=args)


def runs(db: str | Path) -> pd.DataFrame:
    with closing(sqlite3.connect(Path(db))) as con:
        return pd.read_sql_query(
            "SELECT run_id, name, started_at, status, n_episodes, simulated, path FROM runs "
            "ORDER BY started_at", con)


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """A one-line trend picture for the terminal."""
    vals = [v for v in values if v == v]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    span = hi - lo or 1.0
    return "".join(" " if v != v else SPARK[int((v - lo) / span * (len(SPARK) - 1))]
                   for v in values)
