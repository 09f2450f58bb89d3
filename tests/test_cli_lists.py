"""`ptebench scaffolds|tasks|models list`: every registered component, with its defaults."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _list(kind: str) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "ptebench.cli", kind, "list"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "COLUMNS": "250"},
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_scaffolds_list_shows_every_scaffold_and_real_defaults() -> None:
    out = _list("scaffolds")
    for name in ("direct", "cot", "best_of_n", "majority", "react", "reflexion", "tot", "lats"):
        assert f"│ {name} " in out, name
    assert "PydanticUndefined" not in out, "a default must be shown as the value it takes"
    assert "inner={'name': 'cot', 'params': {}}" in out


@pytest.mark.parametrize(("kind", "names"), [
    ("tasks", ["arith", "ctf", "game24", "humaneval"]),
    ("models", ["sim/1e20", "sim/1e24"]),
])
def test_tasks_and_models_lists(kind: str, names: list[str]) -> None:
    out = _list(kind)
    for name in names:
        assert name in out, (kind, name)
