"""The Sandbox protocol: where an agent's actions run.

A backend (local subprocess, Docker) provides a ``SandboxProvider`` registered under kind
'sandbox'. The runner acquires one sandbox per episode with ``provider.acquire(spec, labels)``
— an async context manager, so it is released on success, error and cancellation alike.
A sandbox is never shared by two episodes at once; a task that declares ``reuse: true`` lets
the Docker backend hand a released container to a later episode after a verified reset
(docs/sandbox.md, *Recycling*), and every other one is removed.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Literal, Protocol, runtime_checkable

from pydantic import Field

from ptebench.records import Record

DEFAULT_OUTPUT_LIMIT = 1 << 20
"""Default cap on captured stdout/stderr per exec (bytes); the original size is kept."""


def shell_argv(argv: list[str]) -> tuple[list[str], bytes]:
    """``bash -c SCRIPT ...`` rewritten so that SCRIPT is on neither the command line nor
    the environment: it travels on the process's stdin, ahead of the caller's input.

    ``/proc/<pid>/cmdline`` is readable by every process of the sandbox, and
    ``/proc/<pid>/environ`` by every process of the same uid: a check script running as the
    agent user (ctf ``fix_codebase``) would leak its hidden tests to an agent process it
    starts or one left running. One argument is also capped at 128 KiB (longer commands
    failed with E2BIG). Instead the wrapper reads the script with bash's ``read`` builtin up
    to a NUL byte — no fork, and bash reads a pipe byte by byte, so nothing past the NUL is
    consumed — then evals it: the rest of stdin is the caller's ``input``, so scripts that
    read their own stdin see exactly what they did before. Scripts cannot contain a NUL
    byte (bash variables cannot hold one either). Other argv lists are returned unchanged
    with an empty prefix. Returns (argv, bytes to send on stdin before the input).
    """
    if len(argv) < 3 or argv[0] not in ("bash", "/bin/bash") or argv[1] != "-c":
        return argv, b""
    script = argv[2].encode()
    if b"\0" in script:
        raise ValueError("a shell script cannot contain a NUL byte")
    wrapper = ("IFS= read -r -d '' __ptebench_s; "
               """eval "unset __ptebench_s;"$'\\n'"$__ptebench_s\"""")
    return [argv[0], "-c", wrapper, *argv[3:]], script + b"\0"


class Resources(Record):
    """Resource limits of a sandbox."""

    cpus: float = Field(default=1.0, gt=0, le=256)
    memory_mb: int = Field(default=1024, ge=16, le=1 << 20)
    pids: int = Field(default=256, ge=8, le=1 << 20)
    disk_mb: int = Field(default=512, ge=1, le=1 << 20)


class Healthcheck(Record):
    """When a service is ready (Docker's HEALTHCHECK): ``test`` exits 0 inside the service."""

    test: list[str]
    """argv run in the service container, e.g. ``["bash", "-c", "</dev/tcp/127.0.0.1/9000"]``."""
    interval_s: float = 0.5
    timeout_s: float = 5.0
    retries: int = 60
    start_period_s: float = 0.0


class ServiceSpec(Record):
    """A container the task runs beside the agent's, on the episode's own internal network.

    The agent reaches it by its name (a DNS alias on that network) and cannot read its
    filesystem. It gets the hardened profile too (no capabilities, no-new-privileges,
    memory/pids/CPU limits, labels); only the task's scorer and setup can exec in it.
    """

    image: str = "ptebench/base"
    """Image to start (a task format with ``build`` resolves it to a built tag first)."""
    build: str | None = None
    """Dockerfile (relative to the task folder) to build the image from (context: its folder)."""
    command: list[str] | None = None
    """The service's main process (default: the image's own CMD/ENTRYPOINT)."""
    entrypoint: list[str] | None = None
    """Replaces the image's ENTRYPOINT when given."""
    user: str | None = None
    """User of the main process (default: the image's USER)."""
    workdir: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    resources: Resources = Field(default_factory=lambda: Resources(memory_mb=256, pids=128))
    read_only_root: bool = True
    """Root filesystem read-only, the ``tmpfs`` mounts writable."""
    tmpfs: dict[str, str] = Field(default_factory=lambda: {"/tmp": "size=64m"})
    healthcheck: Healthcheck | None = None
    """The agent's container starts once this passes (else once the service runs)."""


class SandboxSpec(Record):
    """What a task asks of its sandbox (the `sandbox:` block of task.yaml)."""

    image: str = "ptebench/base"
    """Image to start (docker) — ignored by the local backend."""
    build: str | None = None
    """Dockerfile (relative to the task folder) to build an image FROM ${PTEBENCH_BASE}."""
    user: str = "agent"
    """User the agent's commands run as (local backend: the current user)."""
    workdir: str = "/home/agent"
    """Working directory of the agent (local backend: a fresh temp dir)."""
    network: Literal["none", "internal", "full"] = "none"
    """none: no network; internal: a private network for the task's own services; full:
    internet (must also be allowed by the experiment)."""
    resources: Resources = Field(default_factory=Resources)
    read_only_root: bool = True
    """Root filesystem read-only, with the workdir and tmpfs writable."""
    tmpfs: dict[str, str] = Field(default_factory=lambda: {"/tmp": "size=64m"})
    """Writable tmpfs mounts: path → mount options. nosuid and nodev are added unless the
    options say ``suid`` / ``dev``."""
    no_new_privileges: bool = True
    """Setuid binaries cannot raise privileges. A task about a misconfigured setuid binary
    sets false: the setuid bit then works, every capability stays dropped, and the episode's
    recorded profile shows the relaxation."""
    env: dict[str, str] = Field(default_factory=dict)
    services: dict[str, ServiceSpec] = Field(default_factory=dict)
    """Service containers by name (a DNS name on the episode's network). With services, a
    ``none`` network becomes the episode's own internal network (agent + services only)."""
    reuse: bool = False
    """The task declares that its episodes may run in a container an earlier episode used,
    once that container is reset and the reset verified (every process of the episode
    killed, the writable paths and IPC objects back to the pristine fingerprint; any
    mismatch removes the container instead). Only a task whose whole state lives in those
    paths may say so; honoured for a read-only root without services (docker backend)."""


class ExecResult(Record):
    """Outcome of one command."""

    exit_code: int | None
    """Exit status; None when the command was killed by the timeout."""
    stdout: str = ""
    stderr: str = ""
    stdout_bytes: int = 0
    """Size of the full stdout before truncation."""
    stderr_bytes: int = 0
    """Size of the full stderr before truncation."""
    truncated: bool = False
    timed_out: bool = False
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


@runtime_checkable
class Sandbox(Protocol):
    """One isolated environment for one episode."""

    @property
    def name(self) -> str:
        """Backend name (local, docker)."""
        ...

    async def exec(
        self,
        cmd: str | list[str],
        timeout: float | None = None,
        input: str | bytes | None = None,
        cwd: str | None = None,
        user: str | None = None,
        env: dict[str, str] | None = None,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
    ) -> ExecResult:
        """Run ``cmd`` (a shell string run by ``bash -lc``-free ``bash -c``, or an argv list).

        The whole process tree is killed at ``timeout`` seconds (then ``timed_out`` is True).
        Output past ``output_limit`` bytes per stream is truncated, the full size recorded.
        """
        ...

    async def read_file(self, path: str) -> bytes:
        """Bytes of ``path`` (relative paths are under the workdir).

        Raises:
            FileNotFoundError: no such file in the sandbox.
        """
        ...

    async def write_file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        """Create or replace ``path``, making parent directories, owned by the sandbox user."""
        ...

    async def snapshot(self) -> str:
        """Capture the current state; returns an id for ``restore``."""
        ...

    async def restore(self, snapshot_id: str) -> Sandbox:
        """A new, independent sandbox in the captured state (the caller closes it)."""
        ...

    async def close(self) -> None:
        """Release everything the sandbox holds. Idempotent."""
        ...

    def profile(self) -> dict[str, object]:
        """The isolation settings this sandbox actually has (recorded in the episode)."""
        ...


@runtime_checkable
class ServiceSandbox(Protocol):
    """A sandbox whose task declared services: the scorer and setup can exec in them."""

    async def exec_service(
        self, service: str, cmd: str | list[str], timeout: float | None = None,
        input: str | bytes | None = None, user: str | None = None,
        env: dict[str, str] | None = None,
    ) -> ExecResult:
        """Run ``cmd`` in service ``service``'s container (never visible to the agent)."""
        ...


class SandboxProvider(Protocol):
    """A backend: hands out fresh sandboxes."""

    name: str

    def acquire(
        self, spec: SandboxSpec, labels: dict[str, str]
    ) -> AbstractAsyncContextManager[Sandbox]:
        """A fresh sandbox for one episode, closed when the context exits."""
        ...

    async def aclose(self) -> None:
        """Release pools and temporary images at the end of a run."""
        ...
