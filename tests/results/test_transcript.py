"""Transcripts: every call's request and response, every action, stored once and crash-safely."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ptebench.models.base import GenerateRequest, Message, ModelConfig
from ptebench.models.meter import MeteredModel, Trace
from ptebench.models.scripted import ScriptedModel
from ptebench.models.transcript import TranscriptRecorder
from ptebench.records import Limits
from ptebench.results import TranscriptError, iter_transcripts, load_episodes, load_transcript
from ptebench.results.transcript import TRANSCRIPTS
from ptebench.runners.config import parse_experiment
from ptebench.runners.local import run_experiment

REPO = Path(__file__).resolve().parents[2]


async def test_calls_are_recorded_as_the_model_received_them() -> None:
    outputs = ["one", "two", "three"]
    model = ScriptedModel(ModelConfig(id="s", provider="scripted", outputs=outputs))
    trace = Trace()
    metered = MeteredModel("s", model, None, trace, Limits())
    history = [Message(role="system", content="be brief " * 50), Message(role="user", content="hi")]
    for _ in range(3):
        resp = await metered.generate(GenerateRequest(messages=list(history), role="act",
                                                      temperature=0.3, stop=["\nX"], max_tokens=9))
        history += [Message(role="assistant", content=resp.text),
                    Message(role="user", content=f"Observation: {len(history)}")]
    t = trace.transcript.transcript
    assert [c.index for c in trace.calls] == [0, 1, 2]
    for i, sent in enumerate(model.requests):
        assert t.request(i) == sent  # what the provider received, field for field
        resp_i = t.response(i)
        assert resp_i is not None and resp_i.text == outputs[i]
        assert t.calls[i].usage == trace.calls[i].usage
    # messages are stored once: 2 + 2 per call, though the calls sent 2 + 4 + 6
    assert len(t.messages) == 6
    assert sum(len(c.message_ids) for c in t.calls) == 2 + 4 + 6


def test_prompts_are_delta_encoded_and_resolve_exactly() -> None:
    rng = random.Random(7)
    rec = TranscriptRecorder()
    texts = []
    base = "".join(rng.choice("ab\n ") for _ in range(500))
    for i in range(40):
        # growing transcripts, branches that share a prefix, and unrelated prompts
        if i % 7 == 6:
            text = "".join(rng.choice("xyz") for _ in range(300))
        else:
            parent = rng.choice(texts) if texts and i % 3 else base
            text = parent[: rng.randrange(len(parent) + 1)] + "".join(rng.choice("abc") for _ in range(120))
        texts.append(text)
        rec.call(i, GenerateRequest(prompt=text), None, 0.0, error="x")
    t = rec.transcript
    assert [t.request(i).prompt for i in range(len(texts))] == texts
    # a growing completion-mode history costs its final length, not the sum of its prompts
    grow = TranscriptRecorder()
    text = ""
    for i in range(30):
        text += f"Observation: {i} " * 20 + "\nThought:"
        grow.call(i, GenerateRequest(prompt=text), None, 0.0, error="x")
    assert [grow.transcript.request(i).prompt for i in range(30)][-1] == text
    assert sum(len(p.tail) for p in grow.transcript.prompts) == len(text)


def _exp(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "t", "models": ["sim/1e22"], "scaffolds": ["direct", "react"],
        "tasks": [{"name": "arith", "limit": 4}], "sandbox": "local",
    }
    base.update(kw)
    return base


def test_run_writes_a_transcript_per_episode(tmp_path: Path) -> None:
    run_experiment(parse_experiment(_exp()), tmp_path / "r")
    episodes = load_episodes(tmp_path / "r")
    assert len(episodes) == 8
    for e in episodes:
        t = load_transcript(tmp_path / "r", e.spec.episode_id)
        assert t.episode_id == e.spec.episode_id
        assert len(t.calls) == len(e.calls) and len(t.actions) == len(e.steps)
        assert [c.index for c in e.calls] == [c.index for c in t.calls] == list(range(len(e.calls)))
        for c, mc in zip(t.calls, e.calls, strict=True):
            assert c.role == mc.role and c.usage == mc.usage
        for a, s in zip(t.actions, e.steps, strict=True):
            assert a.step == s.index and a.shown == s.observation
            assert s.action is not None and a.input == s.action.input
            assert a.stdout_bytes + a.stderr_bytes == s.observation_bytes
        assert t.score == e.score and t.submission == e.submission
        assert t.expected is not None and t.expected.strip()  # arith has an answer
        # the react turn shows the observation of the action it took
        if e.spec.scaffold == "react":
            second = t.request(1).messages
            assert second[-1].content == f"Observation: {e.steps[0].observation}"
    assert {t.episode_id for t in iter_transcripts(tmp_path / "r")} == {
        e.spec.episode_id for e in episodes}


def test_crashed_episode_keeps_its_traceback(tmp_path: Path) -> None:
    exp = parse_experiment(_exp(
        models=[{"id": "echo", "provider": "scripted", "outputs": ["Thought: ok\nAction: submit: w0"] * 9}],
        scaffolds=["react"], baseline="react",
        tasks=[{"name": "tests.runners.fixtures:EchoTask", "options": {"n": 1, "broken": True}}],
    ))
    run_experiment(exp, tmp_path / "r")
    by_task = {e.spec.task_id: e for e in load_episodes(tmp_path / "r")}
    broken = load_transcript(tmp_path / "r", by_task["broken"].spec.episode_id)
    assert by_task["broken"].status == "error"
    assert broken.traceback is not None
    assert broken.traceback.startswith("Traceback (most recent call last):")
    assert "RuntimeError: setup exploded on purpose" in broken.traceback
    assert "fixtures.py" in broken.traceback  # where it was raised
    ok = load_transcript(tmp_path / "r", by_task["w0"].spec.episode_id)
    assert ok.traceback is None and ok.expected == "w0"


def test_bad_transcript_input_names_the_file(tmp_path: Path) -> None:
    run_experiment(parse_experiment(_exp(scaffolds=["direct"], baseline="direct")), tmp_path / "r")
    eid = load_episodes(tmp_path / "r")[0].spec.episode_id
    with pytest.raises(TranscriptError, match="no transcript for episode 'nope'"):
        load_transcript(tmp_path / "r", "nope")
    db = tmp_path / "r" / TRANSCRIPTS
    before = db.read_bytes()
    # a torn row: the blob cut short
    con = sqlite3.connect(db)
    con.execute("UPDATE transcripts SET data = substr(data, 1, 20) WHERE episode_id = ?", (eid,))
    con.commit()
    con.close()
    with pytest.raises(TranscriptError, match=rf"{TRANSCRIPTS} \(episode {eid}\): the transcript is torn"):
        load_transcript(tmp_path / "r", eid)
    # a torn file
    db.write_bytes(before[:1000])
    for f in db.parent.glob(TRANSCRIPTS + "-*"):
        f.unlink()
    with pytest.raises(TranscriptError, match=rf"{TRANSCRIPTS}: torn or"):
        load_transcript(tmp_path / "r", eid)
    assert db.read_bytes() == before[:1000]  # nothing rewritten
    db.unlink()
    with pytest.raises(TranscriptError, match=rf"{TRANSCRIPTS}: missing"):
        load_transcript(tmp_path / "r", eid)
    assert not db.exists()  # the reader never creates it


def _lines(out: Path) -> int:
    p = out / "episodes.jsonl"
    return p.read_bytes().count(b"\n") if p.exists() else 0


def test_sigkill_leaves_every_finished_episode_readable(tmp_path: Path) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(_exp(models=["sim/1e21", "sim/1e23"],
                                       tasks=[{"name": "arith", "limit": 30}],
                                       concurrency={"episodes": 3})))
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ptebench.cli", "run", str(cfg), "--out", str(out), "--quiet"],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while _lines(out) < 20:
        assert proc.poll() is None, f"run ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, "run made no progress"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    episodes = load_episodes(out)
    assert 20 <= len(episodes) < 120, "the kill must land mid-run"
    for e in episodes:
        t = load_transcript(out, e.spec.episode_id)
        assert len(t.calls) == len(e.calls) and len(t.actions) == len(e.steps)
        assert t.score == e.score
