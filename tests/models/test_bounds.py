"""Outside inputs from a provider are bounded (issue 16): a server dripping its body one byte
at a time cannot stretch a call past timeout_s, a huge response is refused instead of
stored, and negative or absurd usage never enters the totals. Real HTTP servers, the
official OpenAI SDK."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ptebench.errors import ModelError
from ptebench.models.base import GenerateRequest, Message, ModelConfig
from ptebench.models.meter import MeteredModel, Trace
from ptebench.models.openai import OpenAIModel
from ptebench.records import Limits
from ptebench.results.store import RunStore
from ptebench.results.transcript import load_transcript
from ptebench.runners.config import parse_experiment
from ptebench.runners.local import run_experiment
from tests.models.wire import WireServer, openai_chat


@pytest.fixture
def dripping() -> Iterator[tuple[str, threading.Event]]:
    """An HTTP server that sends the headers of a valid chat completion at once, then its
    body one byte every 2 s (each read succeeds well within any per-read timeout)."""
    body = json.dumps(openai_chat("dripped")).encode()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         + f"Content-Length: {len(body)}\r\n\r\n".encode())
            for b in body:
                if stop.wait(2.0):
                    return
                try:
                    conn.sendall(bytes([b]))
                except OSError:
                    return

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}", stop
    stop.set()
    t.join()
    srv.close()


def model(url: str, **kw: Any) -> OpenAIModel:
    cfg: dict[str, Any] = {"id": "stub", "provider": "openai", "model": "stub-model",
                           "base_url": url + "/v1", "timeout_s": 3.0, "max_retries": 0,
                           "options": {"retry_initial_s": 0.01, "retry_max_wait_s": 0.1}}
    cfg.update(kw)
    return OpenAIModel(ModelConfig.model_validate(cfg))


def ask() -> GenerateRequest:
    return GenerateRequest(messages=[Message(role="user", content="hi")])


async def test_a_dripping_server_cannot_outlast_timeout_s(dripping: tuple[str, threading.Event]) -> None:
    url, _ = dripping
    m = model(url)
    # the body would take 2 s per byte × hundreds of bytes; the call ends at its deadline
    with pytest.raises(ModelError, match="no complete response within timeout_s=3s"):
        await m.generate(ask())
    await m.aclose()


async def test_a_huge_response_is_refused_not_stored() -> None:
    with WireServer(reply=lambda p, b: openai_chat("x" * 5_000_000)) as srv:
        m = model(srv.url)
        with pytest.raises(ModelError, match="5,000,000-character response is more than max_response_chars=4,000,000"):
            await m.generate(ask())
        bigger = model(srv.url, options={"max_response_chars": 6_000_000})
        assert len((await bigger.generate(ask())).text) == 5_000_000
        await m.aclose()
        await bigger.aclose()


@pytest.mark.parametrize("usage", [
    {"prompt_tokens": -5, "completion_tokens": 3, "total_tokens": -2},
    {"prompt_tokens": 10**15, "completion_tokens": 3, "total_tokens": 10**15 + 3},
])
async def test_absurd_usage_is_refused(usage: dict[str, int]) -> None:
    with WireServer(reply=lambda p, b: openai_chat("ok", usage=usage)) as srv:
        m = model(srv.url)
        with pytest.raises(ModelError, match=r"usage\.prompt_tokens=.*outside 0\.\.100,000,000"):
            await m.generate(ask())
        await m.aclose()


async def test_a_call_cancelled_in_flight_is_recorded() -> None:
    """SIGTERM of a run cancels its episodes' tasks: the call the server is holding is
    recorded with its error, in the trace and its transcript, not dropped."""
    with WireServer() as srv:
        srv.hold = True
        trace = Trace()
        metered = MeteredModel("stub", model(srv.url, timeout_s=60.0), None, trace, Limits())
        call = asyncio.ensure_future(metered.generate(ask()))
        await asyncio.to_thread(srv.wait_held, 1)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        srv.release_one()
    assert len(trace.calls) == 1
    assert trace.calls[0].error is not None
    assert trace.calls[0].error.startswith("cancelled after ")
    assert trace.transcript.transcript.calls[0].error == trace.calls[0].error


def test_a_wall_clock_stop_records_the_call_in_flight(tmp_path: Path) -> None:
    """The episode's wall_s runs out while the server holds the request: the episode is
    scored as a limit and keeps the cancelled call (ModelCall and transcript entry)."""
    with WireServer() as srv:
        srv.hold = True
        exp = parse_experiment({
            "name": "t", "sandbox": "local", "scaffolds": ["direct"],
            "tasks": [{"name": "arith", "limit": 1}], "limits": {"wall_s": 1},
            "models": [{"id": "stub", "provider": "openai", "model": "stub-model",
                        "base_url": srv.url + "/v1", "timeout_s": 60, "max_retries": 0}],
        })
        res = run_experiment(exp, tmp_path / "r")
        srv.release_one()
    [ep] = list(RunStore(res.run_dir).iter_episodes())
    assert ep.status == "limit", ep.reason
    assert len(ep.calls) == 1
    assert ep.calls[0].error is not None and ep.calls[0].error.startswith("cancelled after ")
    tr = load_transcript(res.run_dir, ep.spec.episode_id)
    assert tr.calls[0].error == ep.calls[0].error
