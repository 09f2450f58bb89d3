"""examples/nightly.sh end to end: two nights of a tiny sim config, indexed and compared."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """name: tiny
models: [sim/1e20, sim/1e22, sim/1e24]
scaffolds: [direct, react]
tasks: [{name: arith, limit: 4}]
epochs: 1
seed: 0
sandbox: local
concurrency: {episodes: 8}
"""


@pytest.mark.slow
def test_nightly_script_runs_indexes_and_compares(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(CONFIG)
    env = {**os.environ, "NIGHTLY_DIR": str(tmp_path / "nightly"),
           "PTEBENCH": f"{sys.executable} -m ptebench.cli", "PYTHONPATH": str(ROOT)}
    for night in (1, 2):
        proc = subprocess.run(["bash", str(ROOT / "examples" / "nightly.sh"), str(cfg)], env=env,
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        if night == 1:
            assert "first night" in proc.stdout
    nights = sorted(p for p in (tmp_path / "nightly").iterdir() if p.is_dir())
    assert len(nights) == 2 and (nights[1] / "compare.md").exists()
    assert (nights[0] / "report.html").exists() and (nights[1] / "report.html").exists()
    assert "**0 regression(s)**" in (nights[1] / "compare.md").read_text()
    with sqlite3.connect(tmp_path / "nightly" / "history.sqlite") as con:
        assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2
