"""The context budget: older observations elided with a marker; a provider's
context-length error (real OpenAI and Anthropic error bodies) ends the episode as ``limit``
with the best submission so far — through the real SDKs against a wire-format server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ptebench.models.base import ModelConfig
from ptebench.models.context import MARKER, estimate_tokens
from ptebench.models.openai import OpenAIModel
from ptebench.records import Limits
from ptebench.results.store import RunStore
from ptebench.runners.config import parse_experiment
from ptebench.runners.local import run_experiment
from tests.models.wire import WireServer, anthropic_message, openai_chat
from tests.scaffolds.kit import play_with

FAST = {"retry_initial_s": 0.01, "retry_max_wait_s": 0.5}


def replies(texts: list[str]) -> Any:
    """A server reply function that answers the i-th request with texts[i], in the format
    of the endpoint asked (OpenAI chat or Anthropic messages)."""
    it = iter(texts)

    def reply(path: str, body: dict[str, Any]) -> dict[str, Any]:
        text = next(it)
        if path.endswith("/messages"):
            return anthropic_message([{"type": "text", "text": text}])
        return openai_chat(text)

    return reply


async def test_react_elides_the_oldest_observations_to_fit_the_budget() -> None:
    big = "Thought: look\nAction: bash: python3 -c \"print('x' * 2000)\""
    texts = [big] * 5 + ["Thought: done\nAction: submit: banana"]
    with WireServer(reply=replies(texts)) as srv:
        model = OpenAIModel(ModelConfig(
            id="m", provider="openai", model="stub", base_url=srv.url + "/v1", options=FAST,
        ))
        played = await play_with(
            model, "react", {"max_steps": 10}, "agent", limits=Limits(context_tokens=3000),
        )
        await model.aclose()
    assert played.submission == "banana" and played.limit is None
    last = srv.requests[-1]["body"]["messages"]
    observations = [m["content"] for m in last if m["content"].startswith("Observation")]
    assert len(observations) == 5
    marker = MARKER.split("{")[0]
    assert [marker in o for o in observations] == [True, True, True, False, False]
    assert all("x" * 2000 in o for o in observations[3:])  # the recent ones are whole
    assert played.ctx.trace.calls[-1].elided_observations == 3
    # every request sent fits the budget by the estimate (reply cap included)
    from ptebench.models.base import Message

    for r in srv.requests:
        sent = [Message(role=m["role"], content=m["content"]) for m in r["body"]["messages"]]
        assert estimate_tokens(sent) + r["body"]["max_tokens"] <= 3000


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_context_length_error_is_a_limit_keeping_the_best(provider: str, tmp_path: Path) -> None:
    # reflexion(react): trial 1 answers (judged wrong), trial 2 overflows the context
    texts = [
        "Thought: read\nAction: bash: cat word.txt", "Thought: ok\nAction: submit: banana",
        "impossible", "I should double-check.",
    ]
    with WireServer(reply=replies(texts)) as srv:
        srv.faults = [""] * len(texts) + ["context"]
        base = srv.url + ("/v1" if provider == "openai" else "")
        exp = parse_experiment({
            "name": "ctx",
            "models": [{"id": "m", "provider": provider, "model": "stub", "base_url": base,
                        "max_retries": 1, "options": FAST}],
            "scaffolds": ["reflexion"],
            "tasks": [{"name": "tests.scaffolds.kit:TinyTask", "ids": ["agent"]}],
            "sandbox": "local",
            "baseline": "reflexion",
        })
        run_experiment(exp, tmp_path / "run")
    (ep,) = list(RunStore(tmp_path / "run").iter_episodes())
    assert len(srv.requests) == len(texts) + 1  # not retried: a context error is final
    assert ep.status == "limit" and "context" in (ep.reason or "")
    assert ep.submission == "banana" and ep.score is not None and ep.score.value == 1.0
    assert ep.calls[-1].error is not None and ep.calls[-1].role == "act"
