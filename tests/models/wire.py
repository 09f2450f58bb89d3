"""A local HTTP server speaking the OpenAI and Anthropic wire formats, with injectable faults.

Real sockets, real HTTP/1.1, real JSON bodies: the official SDKs talk to it unmodified.
Each request pops the next entry of ``faults`` (if any) before answering normally:

* ``"429"``: rate limited, with ``Retry-After: <retry_after>``
* ``"500"``: internal server error
* ``"400"``: bad request with an OpenAI/Anthropic-style error body
* ``"hang"``: sleep ``hang_s`` (past the client's timeout), then drop
* ``"drop"``: close the connection without a response
* ``"badjson"``: 200 with a body that is not JSON
* ``"context"``: 400 "over the context window", in the provider's own words (OpenAI's
  ``context_length_exceeded`` body on OpenAI paths, Anthropic's "prompt is too long" else)

Normal answers come from ``reply(path, body) -> dict`` (default: a canned answer for the
endpoint). Every request body and its headers are recorded in ``requests``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[str, dict[str, Any]], dict[str, Any]]


def openai_chat(
    text: str = "hello",
    tool_calls: list[dict[str, Any]] | None = None,
    n: int = 1,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": text if not tool_calls else None}
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "stub-model",
        "choices": [
            {
                "index": i,
                "message": msg,
                "finish_reason": "tool_calls" if tool_calls else "stop",
                "logprobs": None,
            }
            for i in range(n)
        ],
        "usage": usage
        or {"prompt_tokens": 11, "completion_tokens": 3 * n, "total_tokens": 11 + 3 * n},
    }


def openai_completion(text: str = " return 1", n: int = 1) -> dict[str, Any]:
    return {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1,
        "model": "stub-base",
        "choices": [
            {"index": i, "text": text, "finish_reason": "stop", "logprobs": None} for i in range(n)
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 2 * n, "total_tokens": 7 + 2 * n},
    }


def anthropic_message(
    content: list[dict[str, Any]] | None = None,
    stop_reason: str = "end_turn",
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-stub",
        "content": content if content is not None else [{"type": "text", "text": "hi there"}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage or {"input_tokens": 20, "output_tokens": 5},
    }


def context_error(path: str) -> dict[str, Any]:
    """The body each API sends for a request over the context window (their documented
    error shapes: OpenAI's error code, Anthropic's invalid_request_error message)."""
    if path.endswith("/messages"):
        return {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": "prompt is too long: 208310 tokens > 200000 maximum",
            },
        }
    return {
        "error": {
            "message": "This model's maximum context length is 8192 tokens. However, your "
            "messages resulted in 9013 tokens. Please reduce the length of the messages.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    }


def default_reply(path: str, body: dict[str, Any]) -> dict[str, Any]:
    n = int(body.get("n", 1) or 1)
    if path.endswith("/chat/completions"):
        return openai_chat(n=n)
    if path.endswith("/completions"):
        return openai_completion(n=n)
    if path.endswith("/messages"):
        return anthropic_message()
    return {"object": "list", "data": [{"id": "stub-model", "object": "model"}]}


class WireServer:
    """Start with ``with WireServer() as srv:``; ``srv.url`` is the base URL (no /v1)."""

    def __init__(
        self, reply: Reply = default_reply, retry_after: float = 0.2, hang_s: float = 3.0,
        port: int = 0,
    ) -> None:
        self.reply = reply
        self.retry_after = retry_after
        self.hang_s = hang_s
        self.faults: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.request_times: list[float] = []
        self._lock = threading.Lock()
        self.in_flight = 0
        self.peak_in_flight = 0
        self.delay_s = 0.0
        self.hold = False
        """Hold each successful request until ``release_one`` (event-based concurrency tests)."""
        self._held = threading.Condition(self._lock)
        self._n_held = 0
        self._releases = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._send(200, json.dumps(server.reply(self.path, {})).encode())

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append(
                        {"path": self.path, "body": body, "headers": dict(self.headers)}
                    )
                    server.request_times.append(time.monotonic())
                    fault = server.faults.pop(0) if server.faults else None
                    server.in_flight += 1
                    server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
                try:
                    self._answer(fault, body)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self, fault: str | None, body: dict[str, Any]) -> None:
                if fault == "429":
                    err = {"error": {"message": "Rate limit reached", "type": "rate_limit_error"}}
                    self._send(429, json.dumps(err).encode(), {"Retry-After": str(server.retry_after)})
                elif fault == "500":
                    self._send(500, b'{"error": {"message": "boom", "type": "server_error"}}')
                elif fault == "400":
                    err = {
                        "type": "error",
                        "error": {"message": "max_tokens: too large for model", "type": "invalid_request_error"},
                    }
                    self._send(400, json.dumps(err).encode())
                elif fault in ("hang", "drop"):
                    if fault == "hang":
                        time.sleep(server.hang_s)
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                elif fault == "context":
                    self._send(400, json.dumps(context_error(self.path)).encode())
                elif fault == "badjson":
                    self._send(200, b'{"id": "x", "choices": [ {"trunc')
                else:
                    if server.hold:
                        server._wait_release()
                    if server.delay_s:
                        time.sleep(server.delay_s)
                    self._send(200, json.dumps(server.reply(self.path, body)).encode())

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        # serve_forever polls for shutdown every poll_interval (default 0.5 s: half a second lost
        # per server, per test); 10 ms keeps shutdown prompt at negligible cost.
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.01}, daemon=True)

    def _wait_release(self) -> None:
        with self._held:
            self._n_held += 1
            self._held.notify_all()
            while self._releases == 0:
                self._held.wait()
            self._releases -= 1
            self._n_held -= 1

    def wait_held(self, n: int, timeout: float = 60.0) -> None:
        """Block until at least ``n`` requests are being held."""
        with self._held:
            if not self._held.wait_for(lambda: self._n_held >= n, timeout):
                raise TimeoutError(f"only {self._n_held} request(s) held, wanted {n}")

    def release_one(self) -> None:
        with self._held:
            self._releases += 1
            self._held.notify_all()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> WireServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def main() -> None:
    """Serve until killed: ``python -m tests.models.wire PORT`` (a launcher test's "model server")."""
    import sys

    print("stub server starting", flush=True)
    with WireServer(port=int(sys.argv[1])) as srv:
        print(f"serving at {srv.url}", flush=True)
        while True:
            time.sleep(1)


if __name__ == "__main__":
    main()
