"""Docker sandboxes: the hardened profile, a warm pool, snapshots, and cleanup by label.

The Docker SDK is synchronous; every engine call runs on ``engine.POOL`` so the event loop
never blocks. The SDK is imported only when a sandbox is acquired, so this module (and the
``docker`` registration) loads without the ``docker`` extra.

Snapshots are archives, not ``docker commit``: the root filesystem is read-only, so the
whole writable state is the workdir volume and the tmpfs mounts, which commit does not see.
A snapshot tars those (plus a commit of the container layer when a task turned
``read_only_root`` off); restore starts a fresh container (from the warm pool) and unpacks
them. docs/sandbox.md has the measured comparison with commit and replay.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import posixpath
import signal
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ptebench.errors import SandboxError
from ptebench.registry import register
from ptebench.sandbox import engine
from ptebench.sandbox.base import DEFAULT_OUTPUT_LIMIT, ExecResult, Resources, SandboxSpec
from ptebench.sandbox.execd import ExecClient, to_raw
from ptebench.sandbox.pool import LABEL_OWNER, Started, WarmPool, check_engine, remove
from ptebench.sandbox.profile import LABEL_EPISODE, LABEL_KIND, LABEL_RUN, describe, network_kind

T = TypeVar("T")


async def _blocking(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(engine.POOL, fn, *args)


def _labels(labels: dict[str, str]) -> dict[str, str]:
    """Runner labels as Docker labels: ``run`` → ``ptebench.run`` (prefixed ones kept)."""
    out = {k if k.startswith("ptebench.") else f"ptebench.{k}": str(v) for k, v in labels.items()}
    out.setdefault(LABEL_RUN, "adhoc")
    return out


@dataclass
class _Snapshot:
    spec: SandboxSpec
    labels: dict[str, str]
    workdir_tar: bytes
    tmpfs_tars: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)
    image: str | None = None


class DockerSandbox:
    """One running container under the hardened profile (see ptebench/sandbox/profile.py)."""

    name = "docker"

    def __init__(self, provider: DockerProvider, started: Started, spec: SandboxSpec,
                 labels: dict[str, str]) -> None:
        self._provider = provider
        self._s = started
        self.spec = spec
        self.labels = labels
        self.container = started.container
        self._closed = False

    @property
    def id(self) -> str:
        return str(self.container.id)

    def profile(self) -> dict[str, object]:
        out = describe(self._s.kwargs, self.container.attrs, self._provider.engine_facts)
        out["labels"] = dict(self.labels)
        out["container"] = self.container.name
        kind = network_kind(self.spec)
        out["network_kind"] = kind
        if kind == "episode-bridge":
            out["host_reachable"] = True
        out["services"] = [
            {"name": n, "image": s.image, "container": self._s.services[n].name if self._s.services else None,
             "user": s.user, "read_only_root": s.read_only_root, "cap_drop": ["ALL"],
             "no_new_privileges": True, "memory_mb": s.resources.memory_mb, "pids": s.resources.pids}
            for n, s in self.spec.services.items()
        ]
        return out

    async def exec_service(
        self, service: str, cmd: str | list[str], timeout: float | None = None,
        input: str | bytes | None = None, user: str | None = None,
        env: dict[str, str] | None = None,
    ) -> ExecResult:
        """Run ``cmd`` in a service container (for the task's setup and scorer only)."""
        self._check_open()
        services = self._s.services or {}
        if service not in services:
            raise SandboxError(f"no service {service!r} in this sandbox (it has {sorted(services)})")
        ct = services[service]
        argv = ["bash", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        if timeout is not None:
            argv = ["timeout", "-s", "KILL", f"{max(timeout, 0.001):.3f}", *argv]
        data = input.encode() if isinstance(input, str) else input
        api = self._provider.client.api
        deadline = None if timeout is None else time.monotonic() + timeout + engine.KILL_GRACE_S
        run_as = user or str(ct.attrs.get("Config", {}).get("User") or "root")

        def run() -> engine.RawExec:
            return engine.exec_stream(
                api, ct.id, argv, stdin=data, user=run_as, cwd="/", env=dict(env or {}),
                limit=DEFAULT_OUTPUT_LIMIT, deadline=deadline, on_deadline=lambda: None,
            )

        try:
            raw = await _blocking(run)
        except Exception as e:
            raise await _blocking(engine.container_fault, ct, e) from e
        timed_out = raw.host_killed or (timeout is not None and raw.exit_code == 137
                                        and raw.seconds >= timeout * 0.95)
        return ExecResult(
            exit_code=None if timed_out else raw.exit_code,
            stdout=raw.stdout.decode("utf-8", errors="replace"),
            stderr=raw.stderr.decode("utf-8", errors="replace"),
            stdout_bytes=raw.stdout_bytes, stderr_bytes=raw.stderr_bytes,
            truncated=raw.stdout_bytes > len(raw.stdout) or raw.stderr_bytes > len(raw.stderr),
            timed_out=timed_out, duration_s=raw.seconds,
        )

    def _abs(self, path: str) -> str:
        return posixpath.normpath(posixpath.join(self.spec.workdir, path))

    def _in_workdir(self, path: str) -> bool:
        return path == self.spec.workdir or path.startswith(self.spec.workdir.rstrip("/") + "/")

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxError(f"sandbox {self.container.name} is closed")

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
        raw = await self._exec_raw(cmd, timeout, input, cwd, user, env, output_limit)
        timed_out = raw.host_killed or (
            timeout is not None and raw.exit_code == 137 and raw.seconds >= timeout * 0.95
        )
        return ExecResult(
            exit_code=None if timed_out else raw.exit_code,
            stdout=raw.stdout.decode("utf-8", errors="replace"),
            stderr=raw.stderr.decode("utf-8", errors="replace"),
            stdout_bytes=raw.stdout_bytes,
            stderr_bytes=raw.stderr_bytes,
            truncated=raw.stdout_bytes > len(raw.stdout) or raw.stderr_bytes > len(raw.stderr),
            timed_out=timed_out,
            duration_s=raw.seconds,
        )

    async def _exec_raw(
        self, cmd: str | list[str], timeout: float | None, input: str | bytes | None,
        cwd: str | None, user: str | None, env: dict[str, str] | None, limit: int | None,
    ) -> engine.RawExec:
        self._check_open()
        argv = ["bash", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        if not argv:
            raise ValueError("exec needs a command")
        marker = uuid.uuid4().hex
        run_as = user or self.spec.user
        base = argv
        if timeout is not None:
            # timeout(1) runs the command in its own process group and kills the group;
            # the marker sweep below catches processes that left the group (setsid, daemons).
            argv = ["timeout", "-s", "KILL", f"{max(timeout, 0.001):.3f}", *argv]
        data = input.encode() if isinstance(input, str) else input
        exec_env = {**(env or {}), engine.EXEC_MARKER: marker}
        api = self._provider.client.api
        deadline = None if timeout is None else time.monotonic() + timeout + engine.KILL_GRACE_S

        def kill_tree() -> None:
            with contextlib.suppress(Exception):
                api_exec = api.exec_create(self.id, engine.sweep_argv(marker), user=run_as)
                api.exec_start(api_exec["Id"])

        def run() -> engine.RawExec:
            return engine.exec_stream(
                api, self.id, argv, stdin=data, user=run_as, cwd=self._abs(cwd or "."),
                env=exec_env, limit=limit, deadline=deadline, on_deadline=kill_tree,
            )

        execd = self._s.execd
        if execd is not None and run_as == self.spec.user:
            return await self._exec_server(execd, base, data,
                                           self._abs(cwd or "."), exec_env, timeout, limit)
        docker = engine.docker_module()
        fut = asyncio.get_running_loop().run_in_executor(engine.POOL, run)
        try:
            raw = await asyncio.shield(fut)
        except asyncio.CancelledError:
            await _blocking(kill_tree)  # a cancelled episode leaves no process running
            raise
        except docker.errors.APIError as e:
            raise await _blocking(engine.container_fault, self.container, e) from e
        except (OSError, docker.errors.DockerException) as e:
            raise await _blocking(engine.container_fault, self.container, e) from e
        if raw.host_killed or (timeout is not None and raw.exit_code == 137):
            await _blocking(kill_tree)  # processes that escaped timeout's process group
        if raw.exit_code is None and not raw.host_killed:
            raise await _blocking(engine.container_fault, self.container, None)
        return raw

    async def _exec_server(
        self, execd: ExecClient, argv: list[str], data: bytes | None, cwd: str,
        env: dict[str, str], timeout: float | None, limit: int | None,
    ) -> engine.RawExec:
        rid, fut = execd.submit(argv, data, cwd, env, timeout, limit)
        wait = None if timeout is None else timeout + engine.KILL_GRACE_S
        killed = False
        try:
            msg = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)), wait)
        except TimeoutError:  # the server did not answer in time: kill from the host side
            killed = True
            execd.kill(rid)
            try:
                msg = await asyncio.wait_for(asyncio.wrap_future(fut), 10)
            except TimeoutError as e:
                raise await _blocking(engine.container_fault, self.container, e) from e
        except asyncio.CancelledError:
            execd.kill(rid)
            raise
        except SandboxError as e:
            raise await _blocking(engine.container_fault, self.container, e) from e
        return to_raw(msg, killed)

    async def read_file(self, path: str) -> bytes:
        self._check_open()
        p = self._abs(path)
        if self._in_workdir(p):
            docker = engine.docker_module()
            try:
                stream, _ = await _blocking(self.container.get_archive, p)
                return await _blocking(engine.untar_one, stream, p)
            except docker.errors.NotFound as e:
                raise FileNotFoundError(p) from e
            except docker.errors.APIError as e:
                raise await _blocking(engine.container_fault, self.container, e) from e
        raw = await self._exec_raw(["cat", "--", p], None, None, None, None, None, None)
        if raw.exit_code != 0:
            err = raw.stderr.decode(errors="replace")
            if "No such file" in err:
                raise FileNotFoundError(p)
            if "Is a directory" in err:
                raise IsADirectoryError(p)
            raise SandboxError(f"cannot read {p}: {err.strip()}")
        return raw.stdout

    async def write_file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        self._check_open()
        p = self._abs(path)
        blob = data.encode() if isinstance(data, str) else data
        if self._in_workdir(p) and p != self.spec.workdir:
            rel = posixpath.relpath(p, self.spec.workdir)
            parts = rel.split("/")
            dirs = ["/".join(parts[:i]) for i in range(1, len(parts))]
            info = self._s.image
            tar = engine.tar_one(rel, blob, mode, info.uid, info.gid, dirs)
            try:
                await _blocking(self.container.put_archive, self.spec.workdir, tar)
            except engine.docker_module().errors.APIError as e:
                raise await _blocking(engine.container_fault, self.container, e) from e
            return
        script = 'mkdir -p -- "$(dirname -- "$0")" && cat > "$0" && chmod "$1" "$0"'
        raw = await self._exec_raw(["bash", "-c", script, p, f"{mode:o}"], None, blob, None,
                                   None, None, 64 << 10)
        if raw.exit_code != 0:
            raise SandboxError(f"cannot write {p}: {raw.stderr.decode(errors='replace').strip()}")

    async def _owner(self, path: str) -> str:
        """The user owning ``path`` in the container (the sandbox user if it cannot be read)."""
        res = await self._exec_raw(["stat", "-c", "%U", path], 30, None, None, "root", None,
                                   4096)
        name = res.stdout.decode().strip()
        return name if res.exit_code == 0 and name and name != "UNKNOWN" else self.spec.user

    async def snapshot(self) -> str:
        self._check_open()
        stream, _ = await _blocking(self.container.get_archive, self.spec.workdir + "/.")
        work = await _blocking(engine.reroot_tar, b"".join(await _blocking(list, stream)))
        tars: dict[str, list[tuple[str, bytes]]] = {}
        for path in self.spec.tmpfs:
            # With every capability dropped, root can neither read another user's private
            # files nor give files away on restore. So each user (the mount's owner first,
            # then the sandbox user) archives the entries it owns and later restores them.
            tars[path] = []
            for user in dict.fromkeys([await self._owner(path), self.spec.user]):
                script = ('cd "$0" && find . -mindepth 1 -user "$1" -print0 '
                          '| tar --null --no-recursion --ignore-failed-read -T - -cf -')
                raw = await self._exec_raw(["bash", "-c", script, path, user], None, None, None,
                                           user, None, None)
                if raw.exit_code not in (0, 1):  # 1: a file changed while being read
                    raise SandboxError(f"snapshot of {path} failed: {raw.stderr.decode()[-500:]}")
                tars[path].append((user, raw.stdout))
        image = None
        if not self.spec.read_only_root:
            repo = f"ptebench/snapshot-{uuid.uuid4().hex[:12]}"
            img = await _blocking(lambda: self.container.commit(
                repository=repo, tag="latest",
                conf={"Labels": {**self.labels, LABEL_OWNER: self._provider.owner,
                                 LABEL_KIND: "snapshot"}}))
            image = str(img.id)
            self._provider.snapshot_images.add(image)
        sid = f"snap-{uuid.uuid4().hex}"
        self._provider.snapshots[sid] = _Snapshot(self.spec, self.labels, work, tars, image)
        return sid

    async def restore(self, snapshot_id: str) -> DockerSandbox:
        snap = self._provider.snapshots.get(snapshot_id)
        if snap is None:
            raise SandboxError(f"unknown snapshot {snapshot_id!r} (snapshots live as long as "
                               "the provider that took them)")
        spec = snap.spec if snap.image is None else snap.spec.model_copy(
            update={"image": snap.image})
        sb = await self._provider.open(spec, snap.labels)
        try:
            if snap.workdir_tar:
                await _blocking(sb.container.put_archive, spec.workdir, snap.workdir_tar)
            for path, parts in snap.tmpfs_tars.items():
                for owner, tar in parts:
                    if not tar:  # nothing of this user's
                        continue
                    raw = await sb._exec_raw(
                        ["tar", "-C", path, "--no-same-owner", "--no-overwrite-dir", "-xf", "-"],
                        None, tar, None, owner, None, 64 << 10)
                    if raw.exit_code != 0:
                        raise SandboxError(
                            f"restore of {path} (as {owner}) failed: {raw.stderr.decode()[-500:]}")
        except BaseException:
            await sb.close()
            raise
        return sb

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._provider.live.pop(self.id, None)
        if self._s.execd is not None:
            self._s.execd.close()
        await _blocking(remove, self.container, self._s.volume, self._s.network, self._s.services)


def default_max_sandboxes(resources: Resources | None = None) -> int:
    """Concurrent sandboxes this machine can hold: 4 per CPU, and 75% of RAM at the spec's memory."""
    r = resources or Resources()
    cpus = os.cpu_count() or 1
    try:
        mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20)
    except (ValueError, OSError):
        mem_mb = 4096
    return max(1, min(4 * cpus, int(0.75 * mem_mb / max(r.memory_mb, 1))))


@register("sandbox", "docker")
class DockerProvider:
    """Hands out fresh hardened containers; removes everything it made on every exit path."""

    name = "docker"

    def __init__(
        self, max_sandboxes: int | None = None, warm: int = 1, exec_server: bool = False
    ) -> None:
        """``max_sandboxes``: concurrent sandboxes (default from CPUs and memory);
        ``warm``: containers kept started ahead of demand per spec (0 disables the pool);
        ``exec_server``: run commands through the in-container server (see execd.py)."""
        self.exec_server = exec_server
        self.max_sandboxes = max_sandboxes or default_max_sandboxes()
        self.owner = uuid.uuid4().hex[:16]
        self._client: Any = None
        self._pool: WarmPool | None = None
        self._warm = warm
        self._sem = asyncio.Semaphore(self.max_sandboxes)
        self._lock = threading.Lock()
        self.live: dict[str, DockerSandbox] = {}
        self.snapshots: dict[str, _Snapshot] = {}
        self.snapshot_images: set[str] = set()
        self.engine_facts: dict[str, Any] = {}

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = engine.client()
                self.engine_facts = check_engine(self._client)
                atexit.register(purge, self.owner)
                _terminate_on_sigterm()
        return self._client

    @property
    def pool(self) -> WarmPool:
        if self._pool is None:
            self._pool = WarmPool(self.client, self._warm, self.owner, self.exec_server)
        return self._pool

    async def open(self, spec: SandboxSpec, labels: dict[str, str]) -> DockerSandbox:
        """A started sandbox outside any context manager (``restore`` uses it); caller closes."""
        lab = _labels(labels)
        _ = self.client  # first use: connects (main thread, so the SIGTERM hook can be set)
        started = await self.pool.take(spec, lab) if self._warm else None
        if started is None:
            started = await self.pool.start(spec, lab, pooled=False)
        sb = DockerSandbox(self, started, spec, lab)
        self.live[sb.id] = sb
        return sb

    async def prewarm(self, spec: SandboxSpec, labels: dict[str, str]) -> None:
        """Start the warm containers for ``spec`` now (else the first acquire starts them)."""
        _ = self.client
        await self.pool.prewarm(spec, _labels(labels))

    @asynccontextmanager
    async def acquire(self, spec: SandboxSpec, labels: dict[str, str]) -> AsyncGenerator[DockerSandbox, None]:
        async with self._sem:
            sb = await self.open(spec, labels)
            try:
                yield sb
            finally:
                await asyncio.shield(sb.close())

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
        await asyncio.gather(*(sb.close() for sb in list(self.live.values())),
                             return_exceptions=True)
        self.snapshots.clear()
        if self._client is not None:
            await _blocking(purge, self.owner)


def purge(owner: str | None = None, run: str | None = None, passes: int = 1) -> dict[str, int]:
    """Remove ptebench containers, volumes, networks and snapshot images by label.

    Selects by owner (one provider), else by run, else everything this backend made. Returns
    counts of what was removed. Used at exit, by ``aclose`` and by ``ptebench sandbox
    cleanup``, which makes extra ``passes``: a killed client's in-flight create requests
    still complete in the engine after the first pass.
    """
    total = {"containers": 0, "volumes": 0, "images": 0}
    for i in range(passes):
        if i:
            time.sleep(1.0)
        n = _purge_once(owner, run)
        total = {k: total[k] + n[k] for k in total}
        if i and not any(n.values()):
            break
    return total


def _purge_once(owner: str | None, run: str | None) -> dict[str, int]:
    try:
        c = engine.client()
    except SandboxError:
        return {"containers": 0, "volumes": 0, "images": 0}
    sel = [f"{LABEL_OWNER}={owner}"] if owner else [f"{LABEL_RUN}={run}"] if run else []
    n = {"containers": 0, "volumes": 0, "images": 0}
    # Only the kinds this backend makes (other rooms label their own containers too).
    for kind in ("sandbox", "service", "probe"):
        flt = {"label": [f"{LABEL_KIND}={kind}", *sel]}
        for ct in c.containers.list(all=True, filters=flt, sparse=True):
            with contextlib.suppress(Exception):
                ct.remove(force=True, v=True)
                n["containers"] += 1
    for vol in c.volumes.list(filters={"label": [f"{LABEL_KIND}=workdir", *sel]}):
        with contextlib.suppress(Exception):
            vol.remove(force=True)
            n["volumes"] += 1
    for net in c.networks.list(filters={"label": [f"{LABEL_KIND}=network", *sel]}):
        with contextlib.suppress(Exception):
            net.remove()
    for img in c.images.list(filters={"label": [f"{LABEL_KIND}=snapshot", *sel]}):
        with contextlib.suppress(Exception):
            c.images.remove(img.id, force=True)
            n["images"] += 1
    c.close()
    return n


def _terminate_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so context managers and atexit cleanup run.

    Only when nobody installed a handler and we are on the main thread (signals can only be
    set there).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_exit)


def _raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


__all__ = ["LABEL_EPISODE", "DockerProvider", "DockerSandbox", "default_max_sandboxes", "purge"]
