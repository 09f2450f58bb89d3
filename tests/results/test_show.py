"""`ptebench show`: the whole conversation of an episode; `--failed`; bad input exits 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ptebench.results import load_episodes, load_transcript
from ptebench.results.show import passed
from ptebench.runners.config import parse_experiment
from ptebench.runners.local import run_experiment

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ptebench.cli", *args], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "120"})


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("show") / "r"
    run_experiment(parse_experiment({
        "name": "show", "models": ["sim/1e21", "sim/1e23"], "scaffolds": ["direct", "react"],
        "tasks": [{"name": "arith", "limit": 5}], "sandbox": "local",
    }), out)
    return out


def test_show_prints_the_whole_conversation(run: Path) -> None:
    eps = [e for e in load_episodes(run) if e.spec.scaffold == "react"]
    e = max(eps, key=lambda x: len(x.calls))
    t = load_transcript(run, e.spec.episode_id)
    md = _cli("show", str(run), e.spec.episode_id, "--format", "markdown")
    assert md.returncode == 0, md.stderr
    for m in t.messages:  # every message sent, the system prompt included (collapsible)
        assert m.content in md.stdout
    assert "<details><summary><b>system</b>" in md.stdout
    for c in t.calls:
        for ch in c.choices:
            assert ch.text in md.stdout
        assert f"{c.usage.prompt_tokens:,} prompt + {c.usage.completion_tokens:,} completion" in md.stdout
    for a in t.actions:
        assert (a.input or "") in md.stdout and a.shown in md.stdout
    assert t.score is not None and t.score.explanation in md.stdout
    assert t.expected is not None and t.expected in md.stdout
    # turn by turn: call 0's reply comes before step 0, which comes before call 1
    text = md.stdout
    assert text.index("### call 0") < text.index("### step 0") < text.index("### call 1")
    txt = _cli("show", str(run), "--model", e.spec.model, "--scaffold", "react", "--task",
               e.spec.task_id, "--epoch", "0")
    assert txt.returncode == 0, txt.stderr
    assert f"episode {e.spec.episode_id}" in txt.stdout and "more elided" in txt.stdout
    js = json.loads(_cli("show", str(run), e.spec.episode_id[:8], "--format", "json").stdout)
    assert js["episode"]["spec"]["episode_id"] == e.spec.episode_id
    assert len(js["transcript"]["calls"]) == len(e.calls)


def test_failed_groups_failing_episodes_by_reason(run: Path) -> None:
    eps = load_episodes(run)
    failing = [e for e in eps if not passed(e)]
    assert failing and len(failing) < len(eps)
    out = _cli("show", str(run), "--failed", "--format", "json")
    assert out.returncode == 0, out.stderr
    groups = json.loads(out.stdout)
    assert sum(g["count"] for g in groups) == len(failing)
    assert {i for g in groups for i in g["episodes"]} == {e.spec.episode_id for e in failing}
    text = _cli("show", str(run), "--failed")
    assert f"{len(failing)} failing episodes" in text.stdout


def test_bad_input_is_a_clear_message_and_exit_2(run: Path, tmp_path: Path) -> None:
    r = _cli("show", str(run), "0000nope")
    assert r.returncode == 2 and "episodes.jsonl: no episode '0000nope'" in r.stderr
    assert "Traceback" not in r.stderr
    # a run folder from before transcripts: its episodes, no transcripts.sqlite
    old = tmp_path / "old"
    old.mkdir()
    (old / "episodes.jsonl").write_bytes((run / "episodes.jsonl").read_bytes())
    eid = load_episodes(run)[0].spec.episode_id
    r = _cli("show", str(old), eid)
    assert r.returncode == 2 and "transcripts.sqlite: missing" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (old / "transcripts.sqlite").exists()
    # an episode record of another schema
    line = json.loads((run / "episodes.jsonl").read_text().splitlines()[0])
    line["schema_version"], line["legacy_field"] = 0, 1
    (old / "episodes.jsonl").write_text(json.dumps(line) + "\n")
    before = (old / "episodes.jsonl").read_bytes()
    r = _cli("show", str(old), eid)
    assert r.returncode == 2 and "episodes.jsonl:1: not a valid episode record" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and (old / "episodes.jsonl").read_bytes() == before
    # a torn transcript store
    (old / "episodes.jsonl").write_bytes((run / "episodes.jsonl").read_bytes())
    (old / "transcripts.sqlite").write_bytes((run / "transcripts.sqlite").read_bytes()[:2048])
    r = _cli("show", str(old), eid)
    assert r.returncode == 2 and "transcripts.sqlite" in r.stderr and "torn" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
