"""A lean JSON-over-HTTP client for OpenAI-compatible servers, with the SDK's error semantics.

Why not always the ``openai`` SDK: before sending, it walks every request through its
TypedDict transform (recursively, per message and per tool), and it builds typed models of
every response; against a local server that costs more CPU per call than the HTTP itself
(profiled: ~20% of a call's CPU in ``_async_transform_recursive`` with a two-message
request, growing with the history). ptebench already sends plain JSON it built itself, so
this client posts it as is with ``httpx`` and returns the parsed body.

Failures map as ``ptebench.models.retry.classify_sdk_error`` maps the SDK's: timeouts and
dropped connections → ``TransientError``; 408/409/429/5xx → ``TransientError`` (honouring
``Retry-After``); a body over the context window → ``ContextLengthError``; any other 4xx →
``ModelError`` with the provider's own message; a body that is not JSON → ``ModelError``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from ptebench.errors import ContextLengthError, ModelError
from ptebench.models.retry import RETRY_STATUS, TransientError, context_message, parse_retry_after


class JsonClient:
    """POSTs JSON bodies to ``base_url``; one per event loop (httpx pools bind to a loop)."""

    def __init__(self, base_url: str, api_key: str, timeout_s: float, max_connections: int,
                 where: str) -> None:
        self.where = where
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json",
                     "Content-Type": "application/json"},
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
        )

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The parsed JSON object the server answered to ``body``.

        Raises:
            TransientError: a timeout, a dropped connection, or a status worth retrying.
            ContextLengthError: the request is longer than the model's context window.
            ModelError: another 4xx (the provider's message), or a body that is not a JSON object.
        """
        try:
            r = await self._http.post(path.lstrip("/"), content=json.dumps(body).encode())
        except httpx.TimeoutException:
            raise TransientError(f"{self.where}: request timed out") from None
        except httpx.TransportError as e:
            raise TransientError(
                f"{self.where}: connection failed: {type(e).__name__}: {e}") from e
        if r.status_code >= 400:
            raise status_error(r.status_code, r.headers, r.content, self.where)
        try:
            data = json.loads(r.content)
        except ValueError as e:
            raise ModelError(f"{self.where}: response body is not valid JSON: {e}") from e
        if not isinstance(data, dict):
            raise ModelError(f"{self.where}: response is not a JSON object: {r.text[:200]!r}")
        return data

    async def close(self) -> None:
        await self._http.aclose()


def status_error(status: int, headers: Any, content: bytes, where: str) -> Exception:
    """The error for an HTTP error status: transient, context length, or fatal."""
    text = content.decode("utf-8", errors="replace").strip()
    code: object = None
    message = text[:2000]
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            code = err.get("code")
            if isinstance(err.get("message"), str) and err["message"]:
                message = err["message"]
        elif isinstance(err, str) and err:
            message = err
    msg = f"{where}: HTTP {status}: {message}"
    if status in RETRY_STATUS or status >= 500:
        return TransientError(msg, parse_retry_after(headers))
    if status in (400, 413) and (code == "context_length_exceeded" or context_message(message)):
        return ContextLengthError(msg)
    return ModelError(msg)
