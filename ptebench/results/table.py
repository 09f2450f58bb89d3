"""The plain table CEG works on, and the ways to get one.

The contract (docs/results.md): one row per scored episode with columns
``family, model, train_flop, scaffold, task_id, score`` (score in [0, 1]) and optionally
``epoch, inference_flop, task_family, train_flop_sigma_log10, oracle_feedback, simulated,
cost_usd, one_time_cost, components``. A ptebench run directory is turned into this table by
``table_from_episodes`` over the results store's DataFrame; a CSV or Parquet file from any other
harness is read as is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ptebench.errors import UserError

REQUIRED = ("family", "model", "train_flop", "scaffold", "task_id", "score")
OPTIONAL_NUMERIC = (
    "epoch",
    "inference_flop",
    "train_flop_sigma_log10",
    "cost_usd",
    "one_time_cost",
)
OPTIONAL_BOOL = ("oracle_feedback", "simulated")
OPTIONAL_TEXT = ("task_family", "components")
KNOWN = REQUIRED + OPTIONAL_NUMERIC + OPTIONAL_BOOL + OPTIONAL_TEXT

SIM_BANNER = "SIMULATED: pipeline check, not a real result"


class TableError(UserError):
    """A CEG input table that does not meet the contract."""


@dataclass
class LoadedTable:
    """A validated contract table plus what was left out on the way in."""

    table: pd.DataFrame
    source: str
    excluded_errors: int = 0
    """Episodes with status ``error``: excluded from every estimate (counted, never hidden)."""
    notes: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    """run.json of a ptebench run directory, when the input was one."""
    failures: dict[str, int] = field(default_factory=dict)
    """Error episodes by failure class (model, sandbox, task, harness), for a run directory."""


def _bool_column(values: pd.Series, name: str, source: str) -> pd.Series:
    if values.dtype == bool:
        return values
    mapping = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False,
               "": False, "nan": False, "none": False, "1.0": True, "0.0": False}
    text = values.astype(object).where(values.notna(), "").astype(str).str.strip().str.lower()
    bad = sorted(set(text) - set(mapping))
    if bad:
        raise TableError(f"{source}: column {name!r} must be true/false, found {bad[:3]}")
    return text.map(mapping).astype(bool)


def _key(v: object) -> str:
    """A key value as the user wrote it: epoch 0.0 → '0'."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _first(mask: object) -> int | None:
    """Position of the first True in a boolean Series/array, or None."""
    hits = np.flatnonzero(np.asarray(mask, dtype=bool))
    return int(hits[0]) if len(hits) else None


def validate_table(df: pd.DataFrame, source: str = "table") -> pd.DataFrame:
    """Check and normalise a contract table; return a clean copy.

    Raises:
        TableError: a required column is missing, a value has the wrong type, a score lies
            outside [0, 1], a train_flop is not finite and positive, a model has two
            train_flops, or a (family, model, scaffold, task_id, epoch) repeats.
    """
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise TableError(
            f"{source}: missing required column(s) {missing}; the CEG table needs "
            f"{list(REQUIRED)} (optional: {list(KNOWN[len(REQUIRED):])})"
        )
    out = df.copy()
    for col in ("family", "model", "scaffold", "task_id"):
        if (row := _first(out[col].isna())) is not None:
            raise TableError(f"{source}: column {col!r} is empty in row {row}")
        out[col] = out[col].astype(str)
    for col in ("train_flop", "score", *[c for c in OPTIONAL_NUMERIC if c in out.columns]):
        converted = pd.Series(pd.to_numeric(out[col], errors="coerce"), index=out.index)
        if (row := _first(converted.isna() & out[col].notna())) is not None:
            raise TableError(
                f"{source}: column {col!r} must be numeric, row {row} has {out[col].iloc[row]!r}"
            )
        out[col] = converted.astype(float)
    score = out["score"]
    if (row := _first(score.isna())) is not None:
        raise TableError(f"{source}: column 'score' is empty in row {row} (drop unscored rows)")
    if (row := _first((score < 0) | (score > 1))) is not None:
        raise TableError(
            f"{source}: column 'score' must lie in [0, 1], row {row} has {score.iloc[row]}"
        )
    bad_flop = np.flatnonzero(~np.isfinite(out["train_flop"].to_numpy(float)))
    if len(bad_flop):
        shown = ", ".join(f"{int(i)} ({out['model'].iloc[int(i)]}: "
                          f"{out['train_flop'].iloc[int(i)]})" for i in bad_flop[:5])
        more = f" and {len(bad_flop) - 5} more" if len(bad_flop) > 5 else ""
        raise TableError(f"{source}: column 'train_flop' must be a finite number; "
                         f"{len(bad_flop)} row(s) are not: {shown}{more}")
    if (row := _first(out["train_flop"] <= 0)) is not None:
        raise TableError(f"{source}: column 'train_flop' must be > 0, row {row} has "
                         f"{out['train_flop'].iloc[row]}")
    flops = out.dropna(subset=["train_flop"]).groupby(["family", "model"])["train_flop"].nunique()
    many = [str(k) for k in flops.index[np.asarray(flops > 1, dtype=bool)]]
    if many:
        raise TableError(f"{source}: model (family, name) {many[0]} has more than one train_flop")
    if "epoch" in out.columns and _first(out["epoch"].isna()) is None:
        keys = ["family", "model", "scaffold", "task_id", "epoch"]
        dup = out.duplicated(keys, keep=False).to_numpy()
        if dup.any():
            first_rows = np.flatnonzero(dup)
            groups = out.loc[dup].groupby(keys, sort=False).groups
            shown = "; ".join(
                f"rows {', '.join(str(int(i)) for i in list(idx)[:4])} are "
                f"({', '.join(_key(v) for v in k)})"
                for k, idx in list(groups.items())[:3])
            raise TableError(
                f"{source}: {len(first_rows)} rows repeat a (family, model, scaffold, task_id, "
                f"epoch) — each episode must appear once ({shown}); drop the duplicates or "
                "give distinct epochs")
    for col in OPTIONAL_BOOL:
        if col in out.columns:
            out[col] = _bool_column(pd.Series(out[col]), col, source)
        else:
            out[col] = False
    if "task_family" not in out.columns:
        out["task_family"] = "all"
    tf = out["task_family"].astype(object)
    out["task_family"] = tf.where(tf.notna(), "all").astype(str)
    if "train_flop_sigma_log10" not in out.columns:
        out["train_flop_sigma_log10"] = 0.0
    out["train_flop_sigma_log10"] = out["train_flop_sigma_log10"].fillna(0.0)
    if _first(out["train_flop_sigma_log10"] < 0) is not None:
        raise TableError(f"{source}: column 'train_flop_sigma_log10' must be >= 0")
    if "components" in out.columns:
        comp = out["components"].astype(object)
        out["components"] = comp.where(comp.notna(), "").astype(str)
    else:
        out["components"] = ""
    return out.reset_index(drop=True)


def table_from_episodes(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Map the results store's episode DataFrame onto the contract table.

    family := model_family (the model id when the catalog names none), scaffold := the
    scaffold label, inference_flop := flops_epoch (epoch-comparable FLOPs, the unit the
    inference-cost multiple is stated in). Episodes with status ``error`` are excluded
    (they measure the harness, not the model) and their number is returned; ``limit``
    episodes keep the score of their best submission (0 when none was scored).

    Returns:
        (contract table, number of excluded error episodes)
    """
    needed = ("model", "train_flop", "scaffold", "task_id", "score", "status")
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise TableError(f"episode DataFrame lacks column(s) {missing}")
    is_error = df["status"].astype(str) == "error"
    kept = df.loc[~is_error].copy()
    family = kept["model_family"] if "model_family" in kept.columns else kept["model"]
    out = pd.DataFrame({
        "family": family.where(family.notna(), kept["model"]).astype(str),
        "model": kept["model"].astype(str),
        "train_flop": pd.to_numeric(kept["train_flop"], errors="coerce"),
        "scaffold": kept["scaffold"].astype(str),
        "task_id": kept["task_id"].astype(str),
        # a limit episode with nothing scored earned nothing: 0, not missing
        "score": pd.Series(pd.to_numeric(kept["score"], errors="coerce"),
                           index=kept.index).fillna(0.0),
    })
    for src, dst in (("epoch", "epoch"), ("flops_epoch", "inference_flop"),
                     ("task_family", "task_family"), ("cost_usd", "cost_usd"),
                     ("oracle_feedback", "oracle_feedback"), ("simulated", "simulated")):
        if src in kept.columns:
            out[dst] = kept[src].to_numpy()
    if "task_family" in out.columns:
        # task ids are unique only within a family
        out["task_id"] = out["task_family"].astype(str) + "/" + out["task_id"]
    if "params_json" in kept.columns:
        out["components"] = [
            _components(name, params)
            for name, params in zip(
                kept.get("scaffold_name", kept["scaffold"]).astype(str), kept["params_json"],
                strict=True,
            )
        ]
    if "score_reducer" in kept.columns:
        out = reduce_epochs(out, kept["score_reducer"].fillna("mean").astype(str).to_numpy())
    return out.reset_index(drop=True), int(np.asarray(is_error, dtype=bool).sum())


def reduce_epochs(table: pd.DataFrame, reducers: np.ndarray) -> pd.DataFrame:
    """Collapse the epochs of every (model, scaffold, task) cell whose task declares a
    reducer other than ``mean`` (at_least_1, pass_at_<k>) into one row: the reduced score,
    the summed inference FLOPs and cost (all attempts were paid for), epoch 0.

    ``mean`` cells keep one row per epoch: the estimator averages them and can resample
    epochs. Cells where every reducer is ``mean`` are returned unchanged.
    """
    from ptebench.records import reduce_epoch_scores

    other = reducers != "mean"
    if not other.any():
        return table
    keep = table.loc[~other]
    cells = table.loc[other].assign(_reducer=reducers[other])
    keys = ["family", "model", "scaffold", "task_id"]
    rows: list[dict[str, object]] = []
    for _, g in cells.groupby(keys, sort=False):
        row: dict[str, object] = g.iloc[0].to_dict()
        row["score"] = reduce_epoch_scores([float(v) for v in g["score"]], str(row.pop("_reducer")))
        if "epoch" in g.columns:
            row["epoch"] = 0
        for col in ("inference_flop", "cost_usd"):
            if col in g.columns:
                vals = np.asarray(pd.to_numeric(g[col], errors="coerce"), dtype=float)
                row[col] = float(vals.sum()) if not np.isnan(vals).any() else None
        rows.append(row)
    return pd.concat([keep, pd.DataFrame(rows, columns=list(table.columns))], ignore_index=True)


def _components(scaffold_name: str, params_json: object) -> str:
    """``outer+inner`` when a scaffold's params name an ``inner`` scaffold, else ''."""
    if not isinstance(params_json, str) or not params_json:
        return ""
    try:
        params = json.loads(params_json)
    except json.JSONDecodeError:
        return ""
    inner = params.get("inner") if isinstance(params, dict) else None
    if isinstance(inner, dict):
        inner = inner.get("label") or inner.get("name")
    return f"{scaffold_name}+{inner}" if isinstance(inner, str) and inner else ""


def load_input(path: str | Path, cards: Path | None = None,
               scorer: str | None = None) -> LoadedTable:
    """Read a run directory, a CSV or a Parquet file, or a folder of Inspect AI ``.eval`` logs
    (``ptebench.results.inspect_logs``) into a validated contract table.

    ``cards`` (a model-card file) and ``scorer`` (a score name) apply to Inspect logs only.

    Raises:
        TableError: the path does not exist, has an unknown format, or fails validation.
        UserError: ``cards`` or ``scorer`` given for an input that is not Inspect logs.
    """
    p = Path(path)
    if not p.exists():
        raise TableError(f"{p}: no such file or run directory")
    from ptebench.results import inspect_logs

    if inspect_logs.is_inspect_source(p):
        return inspect_logs.load_logs(p, cards=cards, scorer=scorer)
    if cards is not None or scorer is not None:
        raise UserError(f"{p}: --cards and --scorer apply to Inspect logs; a ptebench run or a "
                        "table carries its own train_flop and score")
    if p.is_dir():
        return _load_run_dir(p)
    suffix = p.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        try:
            raw = pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",", comment="#")
        except (pd.errors.ParserError, UnicodeDecodeError) as e:
            raise TableError(f"{p}: not a readable CSV ({e})") from e
    elif suffix in (".parquet", ".pq"):
        raw = pd.read_parquet(p)
    else:
        raise TableError(f"{p}: unknown input format {suffix!r}; give a run directory, "
                         ".csv, .tsv or .parquet")
    if "status" in raw.columns and "family" in raw.columns:
        is_error = raw["status"].astype(str) == "error"
        n_err = int(np.asarray(is_error, dtype=bool).sum())
        raw = raw.loc[~is_error]
    else:
        n_err = 0
    return LoadedTable(validate_table(raw, str(p)), str(p), excluded_errors=n_err)


def _load_run_dir(p: Path) -> LoadedTable:
    if not (p / "episodes.jsonl").exists():
        raise TableError(f"{p}: neither a ptebench run (no episodes.jsonl) nor a folder of "
                         "Inspect logs (no .eval files)")
    try:
        from ptebench.results import store
    except ImportError as e:
        raise TableError(f"{p}: reading run directories needs ptebench.results.store ({e})") from e
    episodes = store.load(p)
    if len(episodes) == 0:
        raise TableError(f"{p}: the run has no finished episodes yet")
    table, n_err = table_from_episodes(episodes)
    notes: list[str] = []
    unknown = sorted(table.loc[table["train_flop"].isna(), "model"].unique())
    if unknown:
        notes.append(f"models without train_flop left out of CEG: {unknown}")
        table = table.loc[table["train_flop"].notna()]
    manifest = None
    if (p / "run.json").exists():
        manifest = json.loads((p / "run.json").read_text())
    errors = episodes.loc[episodes["status"] == "error", "failure"].fillna("harness")
    failures = {str(k): int(v) for k, v in errors.value_counts().items()}
    return LoadedTable(validate_table(table, str(p)), str(p), n_err, notes, manifest, failures)


def epoch_index(table: pd.DataFrame) -> np.ndarray:
    """0-based repetition index of each row within its (model, scaffold, task) cell."""
    keys = ["family", "model", "scaffold", "task_id"]
    if "epoch" in table.columns and _first(table["epoch"].isna()) is None:
        codes = pd.factorize(table["epoch"])[0]
        if _first(table.assign(_e=codes).duplicated(keys + ["_e"])) is None:
            # dense re-numbering so a sparse epoch column still packs tightly
            ranks = table.assign(_e=codes).groupby(keys, sort=False)["_e"].rank(method="dense")
            return ranks.to_numpy().astype(np.int64) - 1
    return table.groupby(keys, sort=False).cumcount().to_numpy().astype(np.int64)

