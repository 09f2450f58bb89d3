"""Per-model concurrency and rpm limits, the response cache, and the no-card warning."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from ptebench.models import meter
from ptebench.models.base import GenerateRequest, ModelConfig
from ptebench.models.catalog import ModelCard
from ptebench.models.meter import MeteredModel, Trace
from ptebench.models.openai import OpenAIModel
from ptebench.models.retry import parse_retry_after
from ptebench.records import Limits
from tests.models.wire import WireServer


def make(srv: WireServer, **kw: Any) -> OpenAIModel:
    cfg: dict[str, Any] = {"id": "stub", "provider": "openai", "model": "stub-model",
                           "base_url": srv.url + "/v1", "timeout_s": 5.0}
    cfg.update(kw)
    return OpenAIModel(ModelConfig.model_validate(cfg))


async def test_max_concurrency_caps_requests_in_flight() -> None:
    """The server holds every request until the test releases it, one at a time, each time
    two are waiting: with the cap, never a third in flight; without it, all six would be
    held at once (no timing involved)."""
    with WireServer() as srv:
        srv.hold = True
        m = make(srv, max_concurrency=2)
        calls = asyncio.gather(*(m.generate(GenerateRequest(prompt=str(i))) for i in range(6)))
        for served in range(6):
            want = min(2, 6 - served)
            await asyncio.to_thread(srv.wait_held, want)
            srv.release_one()
        await calls
        await m.aclose()
    assert len(srv.requests) == 6
    assert srv.peak_in_flight == 2


async def test_rpm_spaces_request_starts() -> None:
    with WireServer() as srv:
        m = make(srv, rpm=300.0)  # one start per 0.2 s
        t0 = time.monotonic()
        await asyncio.gather(*(m.generate(GenerateRequest(prompt=str(i))) for i in range(4)))
        elapsed = time.monotonic() - t0
        await m.aclose()
    assert len(srv.requests) == 4
    # The 4th start is booked 3 intervals after the 1st, which starts no earlier than t0, so
    # the calls cannot all be done sooner: a lower bound that load can only widen. (The
    # server's arrival times are not used: a slow first connection would shrink their spread.)
    assert elapsed >= 3 * 0.2 - 0.01


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


async def test_response_cache_is_off_by_default_and_keyed_by_full_request(tmp_path: Path) -> None:
    with WireServer() as srv:
        plain = make(srv)
        await plain.generate(GenerateRequest(prompt="a"))
        await plain.generate(GenerateRequest(prompt="a"))
        assert len(srv.requests) == 2  # off: every call goes out
        cached = make(srv, options={"cache": True, "cache_dir": str(tmp_path)})
        first = await cached.generate(GenerateRequest(prompt="a", seed=1))
        again = await cached.generate(GenerateRequest(prompt="a", seed=1))
        other_seed = await cached.generate(GenerateRequest(prompt="a", seed=2))
        other_temp = await cached.generate(GenerateRequest(prompt="a", seed=1, temperature=1.0))
        await plain.aclose()
        await cached.aclose()
    assert len(srv.requests) == 5  # 2 uncached + first + other_seed + other_temp
    assert not first.cache_hit and again.cache_hit and not other_seed.cache_hit
    assert not other_temp.cache_hit
    assert again.usage == first.usage and again.text == first.text


async def test_no_card_runs_with_null_flops_and_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    meter._warned_models.discard("nocard-model")
    with WireServer() as srv, caplog.at_level(logging.WARNING, logger="ptebench.models"):
        m = make(srv)
        for _ in range(3):  # three episodes of the same model
            trace = Trace()
            mm = MeteredModel("nocard-model", m, None, trace, Limits())
            await mm.generate(GenerateRequest(prompt="x"))
            call = trace.calls[0]
            assert call.flops_epoch is None and call.flops_physical is None
            assert call.cost_usd is None and call.usage.prompt_tokens == 11
        await m.aclose()
    warnings = [r for r in caplog.records if "nocard-model" in r.getMessage()]
    assert len(warnings) == 1 and "null" in warnings[0].getMessage()


async def test_card_gives_flops_and_cost_per_call() -> None:
    card = ModelCard(name="c", params_total=1e9, n_layers=10, d_attn=512,
                     price_input_per_mtok=1.0, price_output_per_mtok=2.0)
    with WireServer() as srv:
        m = make(srv)
        trace = Trace()
        await MeteredModel("c", m, card, trace, Limits()).generate(GenerateRequest(prompt="x", role="answer"))
        await m.aclose()
    call = trace.calls[0]
    assert call.role == "answer"
    assert call.flops_epoch == 2 * 1e9 * (11 + 3)
    assert call.flops_physical is not None and call.flops_physical > call.flops_epoch
    assert call.cost_usd == pytest.approx((11 * 1.0 + 3 * 2.0) / 1e6)


def test_runner_with_a_cardless_model_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from ptebench.results.store import load
    from ptebench.runners.config import parse_experiment
    from ptebench.runners.local import run_experiment

    meter._warned_models.discard("cardless")
    with WireServer() as srv, caplog.at_level(logging.WARNING):
        exp = parse_experiment({
            "name": "cardless", "sandbox": "local", "epochs": 2,
            "models": [{"id": "cardless", "provider": "openai", "model": "stub",
                        "base_url": srv.url + "/v1"}],
            "scaffolds": ["direct"], "tasks": [{"name": "arith", "limit": 2}],
        })
        run_experiment(exp, tmp_path / "run")
    df = load(tmp_path / "run")
    assert len(df) == 4 and set(df.status) == {"ok"}
    assert df.flops_epoch.isna().all() and df.flops_physical.isna().all()
    assert (df.prompt_tokens == 11).all()
    assert sum("cardless" in r.getMessage() and "no catalog card" in r.getMessage()
               for r in caplog.records) == 1


def test_models_import_without_the_sdks_and_name_the_extra() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['openai'] = None; sys.modules['anthropic'] = None\n"
        "from ptebench import registry\n"
        "from ptebench.errors import MissingExtra\n"
        "from ptebench.models.base import ModelConfig\n"
        "assert {'openai', 'anthropic', 'vllm'} <= set(registry.names('model'))\n"
        "for p in ('openai', 'anthropic'):\n"
        "    try:\n"
        "        registry.get('model', p)(ModelConfig(id='x', provider=p, base_url='http://x'))\n"
        "    except MissingExtra as e:\n"
        "        print(e)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[2])
    assert res.returncode == 0, res.stderr
    assert "pip install 'ptebench[openai]'" in res.stdout
    assert "pip install 'ptebench[anthropic]'" in res.stdout
