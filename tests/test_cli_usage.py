"""The command line as a user meets it: usage errors, --version, listings, the package."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ptebench import __version__

REPO = Path(__file__).resolve().parents[1]


def _ptebench(*args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-m", "ptebench.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=REPO)


@pytest.mark.parametrize(("args", "says"), [
    (["frobnicate"], "No such command 'frobnicate'"),
    # ceg takes several run folders (merged in memory); ones that are not runs are named
    (["ceg", "a", "b"], "must all be run folders; not one: a, b"),
    (["ceg", "--bogus", "x"], "No such option: --bogus"),
    (["ceg", "x", "--threshold", "true"], "must all be run folders; not one: x, true"),
    (["compare", "a", "b", "c"], "unexpected extra argument"),
    (["compare", "a", "b", "--alpha", "2"], "Invalid value for '--alpha'"),
    (["compare", "a", "b", "--format", "xml"], "Invalid value for '--format'"),
    (["ceg", "x", "--boot", "-1"], "Invalid value for '--boot'"),
    (["run", "x.yaml", "--concurrency", "abc"], "Invalid value for '--concurrency'"),
    (["run", "x.yaml", "--extend"], "--extend only makes sense with --resume"),
    (["history", "--format", "yaml"], "Invalid value for '--format'"),
])
def test_every_usage_error_is_one_message_and_exit_2(args: list[str], says: str) -> None:
    r = _ptebench(*args)
    assert r.returncode == 2, r.stderr
    assert says in r.stderr and "Traceback" not in r.stderr + r.stdout


def test_a_user_error_is_one_message_and_exit_2() -> None:
    r = _ptebench("run", "no-such-file.yaml")
    assert r.returncode == 2 and "no-such-file.yaml: cannot read experiment file" in r.stderr
    assert "Traceback" not in r.stderr


def test_version() -> None:
    r = _ptebench("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"ptebench {__version__}"


def test_cli_never_imports_click_directly() -> None:
    """click is not a declared dependency (typer vendors it): no module may import it."""
    offenders = [p for p in (REPO / "ptebench").rglob("*.py")
                 if any(line.strip().startswith(("import click", "from click"))
                        for line in p.read_text().splitlines())]
    assert offenders == []


def test_models_list_never_cuts_a_name_on_a_narrow_terminal() -> None:
    from ptebench.models.catalog import default_catalog

    r = _ptebench("models", "list", columns=60)
    assert r.returncode == 0, r.stderr
    cells = {c.strip() for line in r.stdout.splitlines() for c in line.split("│")}
    missing = [c.name for c in default_catalog().cards() if c.name not in cells]
    assert missing == []


def test_tasks_show_prints_the_familys_own_description() -> None:
    folder = REPO / "ptebench" / "tasks" / "ctf" / "auth_log_bruteforce"
    r = _ptebench("tasks", "show", str(folder), columns=200)
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert first.endswith("SSH brute-force forensics in an auth.log."), first


def test_pyproject_license_is_an_spdx_string_and_typer_is_pinned() -> None:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"  # a table makes setuptools warn on every install
    build = meta["build-system"]["requires"]
    assert any(r.startswith("setuptools>=77") for r in build)  # PEP 639 license strings
    typer = [d for d in meta["project"]["dependencies"] if d.startswith("typer")]
    assert typer and "<" in typer[0], "typer pinned to a tested range"
