"""The exec path a Docker sandbox gets by default: the exec server where the image can run
it, docker exec otherwise, and the choice recorded in the episode's profile."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator

import pytest

from ptebench.sandbox.base import SandboxSpec
from ptebench.sandbox.docker import DockerProvider, DockerSandbox
from tests.sandbox.conftest import SMALL, docker_gate

pytestmark = pytest.mark.docker

VARIANTS = {
    "label-false": ("LABEL ptebench.exec_server=false", "ptebench.exec_server=false"),
    "entrypoint": ('ENTRYPOINT ["/usr/bin/env"]', "the image has an ENTRYPOINT"),
    "no-python": ("RUN rm -f /usr/bin/python3 /usr/bin/python3.*",
                  "the image cannot run the exec server"),
}
"""Images FROM ptebench/base that must stay on docker exec, and the reason recorded."""


@pytest.fixture(scope="module")
def images() -> Iterator[dict[str, str]]:
    docker_gate()
    import docker

    c = docker.from_env()
    tags = {}
    try:
        for name, (line, _) in VARIANTS.items():
            tag = f"ptebench/test-exec-{name}:{os.getpid()}"
            df = f"FROM ptebench/base\n{line}\n".encode()
            c.images.build(fileobj=io.BytesIO(df), tag=tag, rm=True, forcerm=True)
            tags[name] = tag
        yield tags
    finally:
        for tag in tags.values():
            c.images.remove(tag, force=True)
        c.close()


async def test_the_default_is_the_exec_server_as_pid_1() -> None:
    docker_gate()
    p = DockerProvider(warm=0)
    try:
        async with p.acquire(SMALL, {"run": "pytest-exec-default", "episode": "d"}) as s:
            assert isinstance(s, DockerSandbox)
            prof = s.profile()
            assert prof["exec_path"] == "exec server over attach", prof
            assert str(prof["exec_path_reason"]).startswith("auto: the image runs it (python3 3.")
            pid1 = (await s.exec("tr '\\0' ' ' < /proc/1/cmdline; echo; id -un")).stdout
            # /proc/1/cmdline is readable (not its fds): the server, no docker-init in front
            assert "zlib" in pid1 and "docker-init" not in pid1 and pid1.endswith("agent\n"), pid1
    finally:
        await p.aclose()


@pytest.mark.parametrize("variant", list(VARIANTS))
async def test_images_that_cannot_run_the_server_fall_back_to_docker_exec(
        images: dict[str, str], variant: str) -> None:
    p = DockerProvider(warm=0)
    spec = SMALL.model_copy(update={"image": images[variant]})
    try:
        async with p.acquire(spec, {"run": "pytest-exec-default", "episode": variant}) as s:
            assert isinstance(s, DockerSandbox)
            prof = s.profile()
            assert prof["exec_path"] == "docker exec", prof
            assert VARIANTS[variant][1] in str(prof["exec_path_reason"]), prof["exec_path_reason"]
            assert (await s.exec("echo ok")).stdout == "ok\n"
    finally:
        await p.aclose()


async def test_a_forced_server_is_pid_1_even_under_an_entrypoint(images: dict[str, str]) -> None:
    p = DockerProvider(warm=0, exec_server=True)
    spec = SandboxSpec(image=images["entrypoint"])
    try:
        async with p.acquire(spec, {"run": "pytest-exec-default", "episode": "ep"}) as s:
            assert isinstance(s, DockerSandbox)
            assert s.profile()["exec_path_reason"] == "sandbox_options exec_server: true"
            pid1 = (await s.exec("tr '\\0' ' ' < /proc/1/cmdline")).stdout
            assert "zlib" in pid1 and "/usr/bin/env" not in pid1, pid1
    finally:
        await p.aclose()
