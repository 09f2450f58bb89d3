"""`ptebench report`: one self-contained HTML file that renders in a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from ptebench.results.table import SIM_BANNER
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


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(report_file: Path, tmp_path: Path) -> None:
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
