"""What ``--resume`` may continue: the same experiment, or a deliberate extension of it.

A resumed run must be the experiment its manifest records, or its episodes would mix two
experiments in one folder. ``config_changes`` names every field of the resolved config that
differs (fields that cannot change a result — the run folder and concurrency — are ignored).
``--extend`` accepts the change and records it in the manifest, but even then a scaffold label
may not come back with different parameters: its old and new episodes would pool into one row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from pydantic import JsonValue

from ptebench.errors import ConfigError
from ptebench.records import EpisodeSpec, RunManifest

IGNORED = ("out", "concurrency", "sandbox_options")
"""Top-level fields that do not change what an episode measures."""


def config_diff(old: Any, new: Any, prefix: str = "",
                ignore: tuple[str, ...] = IGNORED) -> list[tuple[str, Any, Any]]:
    """(dotted path, old value, new value) wherever two resolved configs differ; a value
    missing on one side is ``MISSING``. Top-level keys in ``ignore`` are skipped."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[tuple[str, Any, Any]] = []
        for k in sorted(set(old) | set(new), key=str):
            if not prefix and k in ignore:
                continue
            where = f"{prefix}.{k}" if prefix else str(k)
            out += config_diff(old.get(k, MISSING), new.get(k, MISSING), where, ignore)
        return out
    if isinstance(old, list) and isinstance(new, list):
        out = []
        for i in range(max(len(old), len(new))):
            a = old[i] if i < len(old) else MISSING
            b = new[i] if i < len(new) else MISSING
            out += config_diff(a, b, f"{prefix}[{i}]", ignore)
        return out
    return [] if old == new else [(prefix or "(the whole config)", old, new)]


MISSING = "(absent)"


def config_changes(old: Any, new: Any) -> list[str]:
    """Dotted paths where two resolved configs differ (``models[1]``, ``limits.steps``),
    ignoring the fields that cannot change a result."""
    return [path for path, _, _ in config_diff(old, new)]


def check_resume(old: RunManifest, resolved: dict[str, Any], extend: bool) -> list[str]:
    """The changed fields; empty when the config is the manifest's.

    Raises:
        ConfigError: the config differs and ``extend`` is off.
    """
    base = old.extensions[-1]["resolved"] if old.extensions else old.resolved
    changes = config_changes(base, resolved)
    if changes and not extend:
        shown = ", ".join(changes[:12]) + (f" (+{len(changes) - 12} more)" if len(changes) > 12 else "")
        raise ConfigError(
            f"--resume: the config differs from the run's manifest in: {shown}. Resume with the "
            "config the run was started with, choose another --out, or pass --extend to add "
            "to this run deliberately (the manifest then records both configs)"
        )
    return changes


def check_labels(done: Iterable[EpisodeSpec], planned: Iterable[EpisodeSpec]) -> None:
    """Refuse a plan in which a scaffold label already on disk has different parameters.

    Raises:
        ConfigError: naming the label and both parameter sets.
    """
    old: dict[str, dict[str, JsonValue]] = {}
    for s in done:
        old.setdefault(s.scaffold_label, s.scaffold_params)
    for s in planned:
        if s.scaffold_label in old and old[s.scaffold_label] != s.scaffold_params:
            raise ConfigError(
                f"--extend: scaffold {s.scaffold_label!r} ran with params "
                f"{old[s.scaffold_label]} and the config now gives {s.scaffold_params}; both "
                "would pool under one label. Give the new variant its own `label`"
            )


def extension_record(raw: dict[str, Any], resolved: dict[str, Any],
                     changes: list[str]) -> dict[str, JsonValue]:
    return {"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "changed": list(changes),
            "config": raw, "resolved": resolved}
