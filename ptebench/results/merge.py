"""``ptebench merge``: several run folders (e.g. made on different machines) → one run folder.

Episodes are keyed by their id, a hash of what defines them (model id, scaffold label and
params, task, epoch, seed), so the same experiment split across machines gives disjoint ids
and one episode played twice gives the same id twice. Merging keeps every episode once:
* the same id with the same outcome (status, score, submission) in two sources is kept once
  (from the first source given);
* the same id with different outcomes is a conflict: the merge is refused, naming the episodes
  and the folders, and nothing is written;
* a model id that means different models in two sources (provider, model, card) is refused.

Each merged episode keeps its provenance: its ``run_id`` (the source run's), ``host`` and
``executor`` (filled from the source's manifest for records written before episodes kept
them), and its transcript when the source has one. The merged ``run.json`` lists every
source in ``merged_from``.
"""

from __future__ import annotations

import datetime as dt
import platform
import socket
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from ptebench import __version__
from ptebench.errors import UserError
from ptebench.records import CatalogEntry, Episode, RunManifest
from ptebench.results.store import RunStore
from ptebench.results.table import LoadedTable, load_input
from ptebench.results.transcript import TranscriptStore

# Experiment fields that say where and how a run was placed, not what it measures.
_PLACEMENT = ("out", "executor", "ray", "concurrency", "sandbox_options")


@dataclass
class MergeResult:
    out: Path
    manifest: RunManifest
    episodes: int
    duplicates: int
    """Episodes present in more than one source with the same outcome, kept once."""


def _outcome(e: Episode) -> tuple[object, ...]:
    return (e.spec.model_dump(mode="json"), e.status,
            e.score.value if e.score is not None else None, e.submission)


def _what(m: RunManifest) -> dict[str, object]:
    return {k: v for k, v in m.resolved.items() if k not in _PLACEMENT}


def merge_runs(sources: list[Path], out: Path) -> MergeResult:
    """Merge run folders into a new run folder ``out``.

    Raises:
        UserError: fewer than two sources, a source that is not a run, ``out`` already holding
            a run, a model id meaning different models, or conflicting duplicate episodes.
    """
    if len(sources) < 2:
        raise UserError("merge needs at least two run folders")
    target = RunStore(out)
    if target.exists():
        raise UserError(f"{out} already holds a run; merge writes a new run folder (choose another --out)")
    manifests: list[RunManifest] = []
    for src in sources:
        m = RunStore(src).read_manifest()
        if m is None:
            raise UserError(f"{src}: no ptebench run here (expected run.json in a run folder)")
        if Path(src).resolve() == Path(out).resolve():
            raise UserError(f"{src}: --out must be a new folder, not one of the sources")
        manifests.append(m)

    models: dict[str, tuple[CatalogEntry, Path]] = {}
    for src, m in zip(sources, manifests, strict=True):
        for entry in m.models:
            seen = models.get(entry.id)
            if seen is None:
                models[entry.id] = (entry, src)
            elif seen[0] != entry:
                raise UserError(
                    f"model id {entry.id!r} means different models in {seen[1]} "
                    f"({seen[0].provider}/{seen[0].model}) and {src} ({entry.provider}/{entry.model}); "
                    "these runs cannot be merged"
                )

    kept: dict[str, tuple[Episode, Path]] = {}
    conflicts: list[str] = []
    duplicates = 0
    per_source: list[int] = []
    for src, m in zip(sources, manifests, strict=True):
        n = 0
        for e in RunStore(src).iter_episodes():
            n += 1
            e = e.model_copy(update={"host": e.host or m.host, "executor": e.executor or m.executor})
            prev = kept.get(e.spec.episode_id)
            if prev is None:
                kept[e.spec.episode_id] = (e, src)
            elif _outcome(prev[0]) == _outcome(e):
                duplicates += 1
            else:
                p = prev[0]
                conflicts.append(
                    f"{e.spec.episode_id} ({e.spec.model} × {e.spec.scaffold_label} × "
                    f"{e.spec.task_family}/{e.spec.task_id} epoch {e.spec.epoch}): "
                    f"{p.status} score {p.score.value if p.score else None} in {prev[1]}, "
                    f"{e.status} score {e.score.value if e.score else None} in {src}"
                )
        per_source.append(n)
    if conflicts:
        listed = "; ".join(conflicts[:5]) + (f"; and {len(conflicts) - 5} more" if len(conflicts) > 5 else "")
        raise UserError(f"{len(conflicts)} episode(s) recorded differently in two runs, "
                        f"refusing to merge: {listed}")

    first = manifests[0]
    same = all(_what(m) == _what(first) for m in manifests)
    names = list(dict.fromkeys(m.name for m in manifests))
    planned = max(m.planned_episodes for m in manifests) if same else len(kept)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    manifest = RunManifest(
        run_id=uuid.uuid4().hex[:12],
        name=names[0] if len(names) == 1 else "+".join(names),
        config=first.config,
        resolved=first.resolved,
        package_version=__version__,
        host=socket.gethostname(),
        python=platform.python_version(),
        started_at=min(m.started_at for m in manifests),
        finished_at=now,
        planned_episodes=max(planned, len(kept)),
        status="finished" if all(m.status == "finished" for m in manifests) else "interrupted",
        models=[e for e, _ in models.values()],
        executor="merged",
        merged_from=[
            {"run_id": m.run_id, "path": str(Path(src).resolve()), "name": m.name, "host": m.host,
             "executor": m.executor, "status": m.status, "episodes": n,
             "same_experiment": _what(m) == _what(first)}
            for src, m, n in zip(sources, manifests, per_source, strict=True)
        ],
    )
    target.write_manifest(manifest.model_copy(update={"status": "running", "finished_at": None}))
    readers = {src: TranscriptStore(Path(src)) for src in sources}
    have = {src: (r.ids() if r.exists() else set()) for src, r in readers.items()}
    target.open()
    try:
        for e, src in kept.values():
            eid = e.spec.episode_id
            target.append(e, readers[src].get(eid) if eid in have[src] else None)
    finally:
        target.close()
        for r in readers.values():
            r.close()
    target.write_manifest(manifest)
    return MergeResult(Path(out), manifest, len(kept), duplicates)


def load_sources(sources: list[Path]) -> LoadedTable:
    """One contract table from one input (a run folder, a CSV or Parquet table) or from several
    run folders, merged as ``ptebench merge`` would (same refusals), without writing anything."""
    if len(sources) == 1:
        return load_input(sources[0])
    not_runs = [str(s) for s in sources if not Path(s).is_dir()]
    if not_runs:
        raise UserError(f"several sources must all be run folders; not one: {', '.join(not_runs)}")
    with tempfile.TemporaryDirectory(prefix="ptebench-merge-") as tmp:
        merged = merge_runs(sources, Path(tmp) / "merged")
        loaded = load_input(merged.out)
    loaded.source = " + ".join(str(s) for s in sources)
    return loaded
