"""Sandbox fixtures shared by the conformance and attack suites.

Providers and the shared sandbox are module-scoped (one event loop per module) so the
Docker tests start few containers; tests whose point is independence acquire their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ptebench import registry
from ptebench.sandbox.base import Resources, Sandbox, SandboxProvider, SandboxSpec
from tests.conftest import require_docker

SMALL = SandboxSpec(resources=Resources(cpus=1.0, memory_mb=256, pids=64, disk_mb=64))
"""Tight limits so the attack tests hit them fast."""


def docker_gate() -> None:
    """Skip (or fail under PTEBENCH_REQUIRE_DOCKER=1) without an engine.

    Module-scoped fixtures run before the autouse function-scoped gate, so they check here;
    the image itself is built once per session by tests/conftest.py.
    """
    require_docker()


def make_provider(backend: str) -> SandboxProvider:
    if backend.startswith("docker"):
        docker_gate()
    if backend == "docker-exec":
        return registry.get("sandbox", "docker")(exec_server=False)
    if backend == "docker-execd":
        return registry.get("sandbox", "docker")(exec_server=True)
    return registry.get("sandbox", backend)()


BACKENDS = [
    pytest.param("local"),
    # both exec paths by name: the default (auto) picks the exec server on ptebench/base
    pytest.param("docker-exec", marks=pytest.mark.docker),
    pytest.param("docker-execd", marks=pytest.mark.docker),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def provider(request: pytest.FixtureRequest) -> AsyncIterator[SandboxProvider]:
    p = make_provider(request.param)
    yield p
    await p.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def box(provider: SandboxProvider) -> AsyncIterator[Sandbox]:
    """One sandbox shared by the tests that do not need a fresh one."""
    async with provider.acquire(SandboxSpec(), {"run": "pytest", "episode": "shared"}) as sb:
        yield sb
