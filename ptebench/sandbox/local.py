"""The local sandbox: a subprocess in a fresh temporary directory. No isolation.

For trusted tasks and for machines without Docker, and only when the user chose it
(``sandbox: local``). What it does enforce: a fresh directory per episode, a timeout that
kills the whole process group, output truncation with the original size recorded, and
resource rlimits (address space, file size, open files). It cannot stop network access,
reads of the host's files, or another user's processes — ``profile()`` says so.

Commands start in a small helper process (``ptebench.sandbox.spawnd``, one per provider),
not in the runner: forking the runner cost ~5 ms per action and blocked its event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import AsyncGenerator
from pathlib import Path

from ptebench.errors import SandboxError
from ptebench.registry import register
from ptebench.sandbox.base import DEFAULT_OUTPUT_LIMIT, ExecResult, Sandbox, SandboxSpec
from ptebench.sandbox.spawner import Rlimits, Spawner


def rlimits(spec: SandboxSpec) -> Rlimits:
    """(address space, file size, open files) caps of an action, soft and hard alike."""
    mem = spec.resources.memory_mb * 1024 * 1024
    disk = spec.resources.disk_mb * 1024 * 1024
    return mem * 4, disk, 1024  # address space ≫ RSS


class LocalSandbox:
    """A temp directory plus subprocesses. Paths under ``spec.workdir`` map into it."""

    name = "local"

    def __init__(self, spec: SandboxSpec, root: Path, spawner: Spawner | None = None) -> None:
        self.spec = spec
        self.root = root
        self._snapshots: dict[str, Path] = {}
        self._closed = False
        self._rlimits = rlimits(spec)
        self._spawner = spawner if spawner is not None else Spawner(self._rlimits)
        self._spawner.retain()

    @classmethod
    def create(cls, spec: SandboxSpec, spawner: Spawner | None = None) -> LocalSandbox:
        """A fresh sandbox; its actions start in ``spawner``'s process (default: a spawner of
        its own, started at the first action and stopped by ``close``)."""
        return cls(spec, Path(tempfile.mkdtemp(prefix="ptebench-local-")), spawner)

    def _host_path(self, path: str) -> Path:
        """Map a sandbox path to the host; refuse anything outside the sandbox directory."""
        wd = self.spec.workdir.rstrip("/")
        if path == wd or path.startswith(wd + "/"):
            path = path[len(wd) :].lstrip("/")
        p = Path(path)
        host = (p if p.is_absolute() else self.root / p).resolve()
        if host != self.root.resolve() and self.root.resolve() not in host.parents:
            raise PermissionError(f"local sandbox: {path!r} is outside the sandbox directory")
        return host

    def _env(self, extra: dict[str, str] | None) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": str(self.root),
            "LANG": "C.UTF-8",
            "PYTHONIOENCODING": "utf-8",
            "PTEBENCH_SANDBOX": "local",
        }
        env.update(self.spec.env)
        env.update(extra or {})
        return env

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
        if self._closed:
            raise SandboxError("local sandbox: exec after close")
        argv = ["bash", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        workdir = self._host_path(cwd) if cwd else self.root
        data = input.encode() if isinstance(input, str) else input
        t = time.monotonic()
        # The spawner process forks, applies the rlimits and its own session, kills the
        # whole group at the timeout and when the command ends (background jobs would hold
        # the pipes open), and keeps the first output_limit bytes of each stream.
        r = await self._spawner.run(argv, str(workdir), self._env(env), timeout, data,
                                    output_limit, self._rlimits)
        return ExecResult(
            exit_code=r.exit_code,
            stdout=r.stdout.decode("utf-8", errors="replace"),
            stderr=r.stderr.decode("utf-8", errors="replace"),
            stdout_bytes=r.out_total,
            stderr_bytes=r.err_total,
            truncated=r.out_total > len(r.stdout) or r.err_total > len(r.stderr),
            timed_out=r.timed_out,
            duration_s=time.monotonic() - t,
        )

    async def read_file(self, path: str) -> bytes:
        return await asyncio.to_thread(self._host_path(path).read_bytes)

    async def write_file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        host = self._host_path(path)
        raw = data.encode() if isinstance(data, str) else data

        def _write() -> None:
            host.parent.mkdir(parents=True, exist_ok=True)
            host.write_bytes(raw)
            host.chmod(mode)

        await asyncio.to_thread(_write)

    async def snapshot(self) -> str:
        snap = Path(tempfile.mkdtemp(prefix="ptebench-snap-"))
        await asyncio.to_thread(shutil.copytree, self.root, snap, symlinks=True, dirs_exist_ok=True)
        sid = snap.name
        self._snapshots[sid] = snap
        return sid

    async def restore(self, snapshot_id: str) -> Sandbox:
        src = self._snapshots.get(snapshot_id)
        if src is None:
            raise KeyError(f"unknown snapshot {snapshot_id!r}")
        child = LocalSandbox.create(self.spec, self._spawner)
        await asyncio.to_thread(shutil.copytree, src, child.root, symlinks=True, dirs_exist_ok=True)
        return child

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._spawner.release()
        for p in [self.root, *self._snapshots.values()]:
            await asyncio.to_thread(shutil.rmtree, p, True)

    def profile(self) -> dict[str, object]:
        r = self.spec.resources
        return {
            "backend": "local",
            "isolation": "none (host subprocess)",
            "network": "host (not enforced)",
            "rlimit_as_mb": r.memory_mb * 4,
            "rlimit_fsize_mb": r.disk_mb,
            "process_group_kill": True,
        }


@register("sandbox", "local")
class LocalProvider:
    """Hands out LocalSandboxes. Chosen only by the user (``sandbox: local``)."""

    name = "local"

    def __init__(self, **_: object) -> None:
        self.spawners: dict[Rlimits, Spawner] = {}
        """One spawner process per distinct set of limits (a run's tasks usually share one),
        started at the first action and stopped by ``aclose``."""

    def spawner(self, spec: SandboxSpec) -> Spawner:
        key = rlimits(spec)
        if key not in self.spawners:
            self.spawners[key] = Spawner(key)
            self.spawners[key].retain()  # the provider's own hold, until aclose
        return self.spawners[key]

    @contextlib.asynccontextmanager
    async def acquire(self, spec: SandboxSpec, labels: dict[str, str]) -> AsyncGenerator[Sandbox, None]:
        if spec.services:
            raise SandboxError(
                f"the task declares service containers ({', '.join(spec.services)}); "
                "they need the docker sandbox (sandbox: docker)")
        box = LocalSandbox.create(spec, self.spawner(spec))
        try:
            yield box
        finally:
            await box.close()

    async def aclose(self) -> None:
        for s in self.spawners.values():
            await s.aclose()
