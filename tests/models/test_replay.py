"""The replay provider reproduces a recorded run, and says exactly where a recording falls short."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ptebench import registry
from ptebench.errors import ConfigError, ModelError
from ptebench.models.base import EpisodeBinding, GenerateRequest, Message, ModelConfig
from ptebench.results import load_episodes, load_transcript
from ptebench.runners.config import parse_experiment
from ptebench.runners.local import run_experiment

MODELS = ["sim/1e21", "sim/1e23"]


def _exp(models: list[Any]) -> dict[str, Any]:
    return {
        "name": "rec", "models": models,
        "scaffolds": ["direct", "cot", "react", {"name": "best_of_n", "params": {"n": 3}}],
        "tasks": [{"name": "arith", "limit": 6}], "epochs": 2, "sandbox": "local",
        "concurrency": {"episodes": 4},
    }


def test_replay_reproduces_the_recorded_scores_exactly(tmp_path: Path) -> None:
    run_experiment(parse_experiment(_exp(MODELS)), tmp_path / "rec")
    replay_models = [{"id": m, "provider": "replay", "card": m, "options": {"run": str(tmp_path / "rec")}}
                     for m in MODELS]
    res = run_experiment(parse_experiment(_exp(replay_models)), tmp_path / "replay")
    assert res.manifest.status == "finished"
    rec = {e.spec.episode_id: e for e in load_episodes(tmp_path / "rec")}
    rep = {e.spec.episode_id: e for e in load_episodes(tmp_path / "replay")}
    assert set(rep) == set(rec) and len(rec) == 2 * 4 * 6 * 2
    scores = [e.score.value for e in rec.values() if e.score is not None]
    assert 0 < sum(scores) < len(scores), "the recording must hold passes and failures"
    for eid, r in rec.items():
        p = rep[eid]
        assert p.status == r.status and p.score == r.score and p.submission == r.submission, eid
        assert [c.usage for c in p.calls] == [c.usage for c in r.calls]
        assert p.totals.flops_epoch == r.totals.flops_epoch
        assert [s.action for s in p.steps] == [s.action for s in r.steps]  # same actions
        t_rec, t_rep = load_transcript(tmp_path / "rec", eid), load_transcript(tmp_path / "replay", eid)
        assert [c.choices for c in t_rep.calls] == [c.choices for c in t_rec.calls]


def test_replay_names_the_episode_and_call_the_recording_lacks(tmp_path: Path) -> None:
    exp = _exp(["sim/1e22"])
    exp.update(scaffolds=["direct"], tasks=[{"name": "arith", "limit": 1}], epochs=1, baseline="direct")
    run_experiment(parse_experiment(exp), tmp_path / "rec")
    (ep,) = load_episodes(tmp_path / "rec")
    eid = ep.spec.episode_id
    asyncio.run(_ask_beyond_the_recording(tmp_path, eid))
    with pytest.raises(ConfigError, match="transcripts.sqlite: missing"):
        registry.get("model", "replay")(ModelConfig(id="m", provider="replay",
                                                    options={"run": str(tmp_path)}))


async def _ask_beyond_the_recording(tmp_path: Path, eid: str) -> None:
    model = registry.get("model", "replay")(ModelConfig(
        id="sim/1e22", provider="replay", options={"run": str(tmp_path / "rec")}))
    bound = model.bind(EpisodeBinding(episode_id=eid, seed=0, task_family="arith", task_id="x"))
    req = GenerateRequest(messages=[Message(role="user", content="anything")], role="answer")
    first = await bound.generate(req)
    assert first.choices == load_transcript(tmp_path / "rec", eid).calls[0].choices
    with pytest.raises(ModelError, match=rf"episode {eid}, call 1: the recording has only 1 calls"):
        await bound.generate(req)
    other = model.bind(EpisodeBinding(episode_id=eid, seed=0, task_family="arith", task_id="x"))
    with pytest.raises(ModelError, match=rf"episode {eid}, call 0: the scaffold asks for a 'act' call, "
                                         "the recording has a 'answer' call"):
        await other.generate(req.model_copy(update={"role": "act"}))
    unknown = model.bind(EpisodeBinding(episode_id="feedbeef", seed=0, task_family="arith", task_id="x"))
    with pytest.raises(ModelError, match="episode feedbeef, call 0: the recording has no such episode"):
        await unknown.generate(req)
    await model.aclose()
