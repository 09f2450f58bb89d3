"""Outside inputs from a provider are bounded (issue 16): a server dripping its body one byte
at a time cannot stretch a call past timeout_s, a huge response is refused instead of
stored, and negative or absurd usage never enters the totals. Real HTTP servers, the
official OpenAI SDK."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from ptebench.errors import ModelError
from ptebench.models.base import GenerateRequest, Message, ModelConfig
from ptebench.models.openai import OpenAIModel
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
