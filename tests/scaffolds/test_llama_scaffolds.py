"""The agent scaffolds end to end on a real model: Gemma 3 270M (GGUF) behind llama.cpp's
OpenAI chat server, launched by ptebench, on the tiny agentic task in a Docker sandbox.

A 270M model rarely solves anything; what is checked is the harness: every episode ends
``ok`` or ``limit`` (never ``error``) with its calls metered, whatever the model writes —
unparseable actions, invented observations, prose verdicts — and the chat histories pass
Gemma's chat template (which rejects two user turns in a row).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ptebench.results.store import RunStore
from ptebench.runners.config import parse_experiment
from ptebench.runners.local import run_experiment
from tests.models.test_llama_e2e import gguf_path

N_CTX = 4096
MAX_TOKENS = 48
SCAFFOLDS = [
    {"name": "react", "params": {"max_steps": 2, "max_tokens": MAX_TOKENS}},
    {"name": "reflexion", "params": {"max_iters": 2, "max_tokens": MAX_TOKENS,
                                     "actor_params": {"max_steps": 1, "max_tokens": MAX_TOKENS}}},
    {"name": "tot", "params": {"steps": 2, "n_select": 1, "n_propose": 2, "n_evaluate": 1,
                               "max_tokens": MAX_TOKENS}},
    {"name": "lats", "params": {"iterations": 2, "n_children": 2, "rollout_depth": 1,
                                "rollout_samples": 1, "max_tokens": MAX_TOKENS}},
]


@pytest.mark.llama
@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(3600)  # CPU inference: ~6 tokens/s on a loaded 2-core machine
def test_agent_scaffolds_run_gemma_without_harness_errors(tmp_path: Path) -> None:
    log_file = tmp_path / "llama-server.log"
    exp = parse_experiment({
        "name": "gemma-agents",
        "models": [{
            "id": "gemma-local", "provider": "vllm", "model": "gemma-3-270m",
            "card": "gemma-3-270m", "max_concurrency": 1, "timeout_s": 300,
            "options": {"launch": {"template": "llama_cpp", "model_path": str(gguf_path()),
                                   "n_ctx": N_CTX, "log_file": str(log_file),
                                   "startup_timeout_s": 300}},
        }],
        "scaffolds": SCAFFOLDS,
        "tasks": [{"name": "tests.scaffolds.kit:TinyTask", "ids": ["agent"]}],
        "sandbox": "docker",
        "baseline": "react",
        # the server's window, not the card's 32k: older observations are elided to fit
        "limits": {"context_tokens": N_CTX, "steps": 20, "wall_s": 1200},
        "concurrency": {"episodes": 1},
    })
    t0 = time.monotonic()
    run_experiment(exp, tmp_path / "run")
    wall = time.monotonic() - t0
    eps = list(RunStore(tmp_path / "run").iter_episodes())
    assert sorted(e.spec.scaffold for e in eps) == sorted(s["name"] for s in SCAFFOLDS)
    for ep in eps:
        where = f"{ep.spec.scaffold}: {ep.status} {ep.reason}"
        assert ep.status in ("ok", "limit"), where
        assert ep.calls and all(c.error is None and c.usage.prompt_tokens > 0 for c in ep.calls), where
        assert ep.score is not None, where
    print("\ngemma-3-270m on tiny/agent: " + "; ".join(
        f"{e.spec.scaffold} {e.status} score {e.score.value if e.score else None} "
        f"{len(e.calls)} calls {len(e.steps)} steps" for e in eps
    ) + f"; wall {wall:.0f}s")
