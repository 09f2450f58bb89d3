"""`ptebench report`: one self-contained HTML file that renders in a real browser."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from ptebench.results.table import SIM_BANNER
from tests.conftest import require_system
from tests.results.test_ceg_cli import run


@pytest.fixture(scope="module")
def report_file(sim_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    run("report", str(sim_run), "--out", str(out), "--boot", "100", "--threshold")
    return out


def test_report_is_self_contained(report_file: Path) -> None:
    text = report_file.read_text()
    assert SIM_BANNER in text
    for section in ("Compute-equivalent gain", "Scaling", "Cost and accuracy",
                    "Per-task success", "Run manifest", "Safety-buffer view"):
        assert section in text, section
    assert len(re.findall(r'src="data:image/png;base64,', text)) == 3
    refs = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert refs and all(r.startswith(("data:", "#")) for r in refs), "no external resources"
    assert "&quot;run_id&quot;" in text, "the manifest is embedded"


def test_report_counts_errors_by_failure_class(report_file: Path, sim_run: Path) -> None:
    from ptebench.results.store import load

    df = load(sim_run)
    broken = int((df["status"] == "error").sum())
    assert broken and set(df.loc[df["status"] == "error", "failure"]) == {"sandbox"}  # setup
    text = report_file.read_text()
    assert f"error episodes by failure class: model 0 · sandbox {broken} · task 0 · harness 0" in text


def test_report_renders_in_headless_chromium(report_file: Path, tmp_path: Path) -> None:
    if shutil.which("chromium") is None:
        require_system("chromium is not installed")
    out = report_file
    shot = tmp_path / "shot.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1200,2400", f"--screenshot={shot}", out.as_uri()],
        capture_output=True, timeout=120, check=False,
    )
    assert shot.exists() and shot.stat().st_size > 10_000
    img = mpimg.imread(shot)[..., :3]
    assert img.shape[0] == 2400 and img.shape[1] == 1200
    # not blank: many distinct colours, and a good share of non-white pixels (text + plots)
    non_white = (img < 0.95).any(-1).mean()
    assert non_white > 0.05, non_white
    assert len(np.unique((img * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 200
    # the red SIMULATED banner is drawn near the top
    top = img[:300]
    red = (top[..., 0] > 0.6) & (top[..., 1] < 0.2) & (top[..., 2] < 0.25)
    assert red.sum() > 1000


def test_report_gives_reasons_and_transcripts_per_cell(report_file: Path, sim_run: Path) -> None:
    from ptebench.results import load_episodes
    from ptebench.results.show import one_line_reason

    text = report_file.read_text()
    assert "Episodes: outcomes, reasons and transcripts" in text
    eps = load_episodes(sim_run)
    cells = {(e.spec.scaffold_label, e.spec.model) for e in eps}
    for scaffold, model in cells:
        bad = [e for e in eps if (e.spec.scaffold_label, e.spec.model) == (scaffold, model)
               and e.status != "ok"]
        for reason in {one_line_reason(e) for e in bad}:
            n = sum(1 for e in bad if one_line_reason(e) == reason)
            assert f"{reason} ({n})" in text, (scaffold, model, reason)
    anchors = re.findall(r'href="#(ep-[0-9a-f]+)"', text)
    assert len(anchors) >= 2 * len(cells) - 1  # a failing and a passing one where both exist
    for a in anchors:
        assert f"id='{a}'" in text, a
    # the failing transcript of a broken episode is rendered with its traceback
    assert "RuntimeError: setup exploded on purpose" in text and "Traceback (most recent call last)" in text


def _run(tmp: Path, name: str, models: list[str], scaffolds: list[object],
         tasks: list[dict[str, object]]) -> Path:
    from ptebench.runners.config import parse_experiment
    from ptebench.runners.local import run_experiment

    out = tmp / name
    run_experiment(parse_experiment({
        "name": name, "models": models, "scaffolds": scaffolds, "tasks": tasks, "epochs": 1,
        "seed": 0, "baseline": "direct", "sandbox": "local", "concurrency": {"episodes": 4}}),
        out)
    return out


ARITH = [{"name": "arith", "limit": 4}]
SHAPES = {
    "one scaffold": (["sim/1e20", "sim/1e22", "sim/1e24"], ["direct"], ARITH,
                     "only the baseline 'direct' was run"),
    "one model": (["sim/1e22"], ["direct", "cot"], ARITH, "needs >= 3 baseline sizes, have 1"),
    "all errors": (["sim/1e20", "sim/1e22"], ["direct", "cot"],
                   [{"name": "tests.runners.fixtures:EchoTask",
                     "options": {"n": 0, "broken": True}}],
                   "ended in error; nothing to estimate"),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_run_shape_renders_a_report_with_a_note(shape: str, tmp_path: Path) -> None:
    models, scaffolds, tasks, note = SHAPES[shape]
    run_dir = _run(tmp_path, shape.replace(" ", "_"), models, scaffolds, tasks)
    out = tmp_path / "r.html"
    run("report", str(run_dir), "--out", str(out), "--boot", "50", "--threshold")
    text = out.read_text()
    assert note in " ".join(__import__("html").unescape(text).split()), shape
    assert "Run manifest" in text  # (tracebacks shown are the episodes' own, in transcripts)


def test_sim_rows_show_the_true_ceg_beside_the_estimate(tmp_path: Path) -> None:
    """arith has reference actions: a chain of thought never writes them, so by the sim's
    decomposition rule cot answers at the full difficulty, exactly like direct: true CEG 1,
    in closed form. react has no closed form: its truth is simulated, with an MC interval."""
    run_dir = _run(tmp_path, "truth", ["sim/1e20", "sim/1e22", "sim/1e24"],
                   ["direct", "cot", {"name": "react", "params": {"max_steps": 3}}], ARITH)
    doc = __import__("json").loads(run("ceg", str(run_dir), "--boot", "0", "--format", "json",
                                       "--truth-reps", "20"))
    rows = [r for r in doc["rows"] if r["row"] == "model"]
    cot = [r for r in rows if r["scaffold"] == "cot"]
    assert len(cot) == 3 and all(r["true_ceg"] == pytest.approx(1.0) for r in cot)
    assert all(r["true_method"] == "closed form" for r in cot)
    react = [r for r in rows if r["scaffold"].startswith("react")]
    assert len(react) == 3
    for r in react:
        assert r["true_method"] == "simulated: 20 episodes x 4 tasks", r
        hi = math.inf if r["true_hi"] == "inf" else r["true_hi"]
        if r["true_ceg"] is None:  # react beats every score the baseline can reach
            assert "never reaches" in r["true_note"], r
        else:
            assert r["true_lo"] <= r["true_ceg"] <= hi, r
    assert any(r["true_ceg"] is not None and r["true_ceg"] > 1 for r in react)
    off = __import__("json").loads(run("ceg", str(run_dir), "--boot", "0", "--format", "json",
                                       "--truth-reps", "0"))
    assert all(r["true_ceg"] is None and "--truth-reps 0" in r["true_note"]
               for r in off["rows"] if r["row"] == "model" and r["scaffold"].startswith("react"))
    text = run("ceg", str(run_dir), "--boot", "0", "--truth-reps", "20")
    assert "true" in text and "react" in text
    assert "±" in text or "–" in text  # a simulated truth prints with its MC error
    html_out = tmp_path / "t.html"
    run("report", str(run_dir), "--out", str(html_out), "--boot", "0", "--truth-reps", "20")
    page = html_out.read_text()
    assert "true CEG (sim law)" in page and "simulated: 20 episodes x 4 tasks" in page


def test_one_colour_per_scaffold_across_the_report() -> None:
    import pandas as pd

    from ptebench.results.report import scaffold_colors

    t = pd.DataFrame({"scaffold": ["direct", "react", "cot", "react", "lats"]})
    a = scaffold_colors(t, "direct")
    b = scaffold_colors(t.iloc[::-1], "direct")
    assert a == b and a["direct"] == "#000000" and len(set(a.values())) == 4
