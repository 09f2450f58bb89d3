"""The local sandbox: a subprocess in a fresh temporary directory. No isolation.

For trusted tasks and for machines without Docker, and only when the user chose it
(``sandbox: local``). What it does enforce: a fresh directory per episode, a timeout that
kills the whole process group, output truncation with the original size recorded, and
resource rlimits (address space, file size, CPU time, open files). It cannot stop network
access, reads of the host's files, or another user's processes — ``profile()`` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncGenerator
from pathlib import Path

from ptebench.errors import SandboxError
from ptebench.registry import register
from ptebench.sandbox.base import DEFAULT_OUTPUT_LIMIT, ExecResult, Sandbox, SandboxSpec

_READ_CHUNK = 65536


class _Capture:
    """Reads a stream to its end, keeping the first ``limit`` bytes and counting the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept = bytearray()
        self.total = 0

    async def drain(self, stream: asyncio.StreamReader | None) -> None:
        if stream is None:
            return
        while True:
            chunk = await stream.read(_READ_CHUNK)
            if not chunk:
                return
            self.total += len(chunk)
            room = self.limit - len(self.kept)
            if room > 0:
                self.kept += chunk[:room]

    def text(self) -> str:
        return bytes(self.kept).decode("utf-8", errors="replace")


def _rlimits(spec: SandboxSpec) -> None:
    """Runs in the child before exec: its own session (process group) and resource caps."""
    os.setsid()
    mem = spec.resources.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem * 4, mem * 4))  # address space ≫ RSS
    disk = spec.resources.disk_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (disk, disk))
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


class LocalSandbox:
    """A temp directory plus subprocesses. Paths under ``spec.workdir`` map into it."""

    name = "local"

    def __init__(self, spec: SandboxSpec, root: Path) -> None:
        self.spec = spec
        self.root = root
        self._snapshots: dict[str, Path] = {}
        self._closed = False

    @classmethod
    def create(cls, spec: SandboxSpec) -> LocalSandbox:
        return cls(spec, Path(tempfile.mkdtemp(prefix="ptebench-local-")))

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
        argv = ["bash", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        workdir = self._host_path(cwd) if cwd else self.root
        data = input.encode() if isinstance(input, str) else input
        t = time.monotonic()
        spec = self.spec
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if data is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=workdir,
            env=self._env(env),
            preexec_fn=lambda: _rlimits(spec),
        )

        async def feed() -> None:
            if data is not None and proc.stdin is not None:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    proc.stdin.write(data)
                    await proc.stdin.drain()
                proc.stdin.close()

        out, err = _Capture(output_limit), _Capture(output_limit)
        readers = [
            asyncio.create_task(feed()),
            asyncio.create_task(out.drain(proc.stdout)),
            asyncio.create_task(err.drain(proc.stderr)),
        ]
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            timed_out = True
        finally:
            # Kill the whole group: the command on timeout, and background jobs it left behind
            # (which would otherwise hold the pipes open).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            _, pending = await asyncio.wait(readers, timeout=5)
            for task in pending:  # a process that escaped the group still holds a pipe
                task.cancel()
        return ExecResult(
            exit_code=None if timed_out else proc.returncode,
            stdout=out.text(),
            stderr=err.text(),
            stdout_bytes=out.total,
            stderr_bytes=err.total,
            truncated=out.total > len(out.kept) or err.total > len(err.kept),
            timed_out=timed_out,
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
        child = LocalSandbox.create(self.spec)
        await asyncio.to_thread(shutil.copytree, src, child.root, symlinks=True, dirs_exist_ok=True)
        return child

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
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
        pass

    @contextlib.asynccontextmanager
    async def acquire(self, spec: SandboxSpec, labels: dict[str, str]) -> AsyncGenerator[Sandbox, None]:
        if spec.services:
            raise SandboxError(
                f"the task declares service containers ({', '.join(spec.services)}); "
                "they need the docker sandbox (sandbox: docker)")
        box = LocalSandbox.create(spec)
        try:
            yield box
        finally:
            await box.close()

    async def aclose(self) -> None:
        return None
