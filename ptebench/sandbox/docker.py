"""Docker sandboxes: the hardened profile, a warm pool, snapshots, and cleanup by label.

The Docker SDK is synchronous; every engine call runs on ``engine.POOL`` so the event loop
never blocks. The SDK is imported only when a sandbox is acquired, so this module (and the
``docker`` registration) loads without the ``docker`` extra.

Snapshots are archives, not ``docker commit``: the root filesystem is read-only, so the
whole writable state is the workdir volume and the tmpfs mounts, which commit does not see.
A snapshot tars those (plus a commit of the container layer when a task turned
``read_only_root`` off); restore starts a fresh container (from the warm pool) and unpacks
them. docs/sandbox.md has the measured comparison with commit and replay.

Commands go through the exec server (execd.py) where the image can run it, else through
docker exec (``exec_server: auto``, the default). A task that declares ``reuse`` gets its
released containers reset, verified and handed to later episodes (recycle.py).
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
from pathlib import Path
from typing import Any, TypeVar

from ptebench.errors import ConfigError, SandboxError
from ptebench.registry import register
from ptebench.sandbox import engine, recycle
from ptebench.sandbox.base import (
    DEFAULT_OUTPUT_LIMIT,
    ExecResult,
    Resources,
    SandboxSpec,
    shell_argv,
)
from ptebench.sandbox.execd import ExecClient, to_raw
from ptebench.sandbox.pool import (
    LABEL_OWNER,
    ExecServerMode,
    Started,
    WarmPool,
    check_engine,
    remove,
)
from ptebench.sandbox.profile import (
    LABEL_EPISODE,
    LABEL_KIND,
    LABEL_RUN,
    SHM_PATH,
    describe,
    network_kind,
)
from ptebench.sandbox.snapstore import SnapshotStore

T = TypeVar("T")

_KILLALL = ('n=0; while kill -9 -1 2>/dev/null; do n=$((n+1)); '
            '[ "$n" -ge 2000 ] && break; done; echo "$n"')
"""Kill every process this uid may signal but the shell itself and init, until none is left
(bash builtins only: runs where fork fails)."""

_KILLALL_ROOT = r"""keep=" 1 $$ "; ka=; kt=
for d in /proc/[0-9]*; do
  read -r st < "$d/stat" 2>/dev/null || continue
  f=(${st##*) }); p=${d#/proc/}
  if [ "${f[1]}" = 1 ] && { [ -z "$kt" ] || [ "${f[19]}" -lt "$kt" ]; }; then ka=$p; kt=${f[19]}; fi
done
keep="$keep$ka "; n=0
while :; do
  found=0
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    case "$keep" in *" $p "*) continue;; esac
    read -r st < "$d/stat" 2>/dev/null || continue
    f=(${st##*) }); [ "${f[0]}" = Z ] && continue
    kill -9 "$p" 2>/dev/null && found=1
  done
  [ "$found" = 0 ] && break
  n=$((n+1)); [ "$n" -ge 2000 ] && break
done
echo "$n"
"""
"""The same when the agent is root (the docker-exec path of Harbor images): kill every process
but PID 1 (docker-init), the keepalive (its oldest child) and this shell — the exec plumbing
whose death would stop the container. Zombies are init's to reap and not counted; bash
builtins only, as above."""


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
    workdir_tar: Path
    tmpfs_tars: dict[str, list[tuple[str, Path]]] = field(default_factory=dict)
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
        self.use = started.uses
        """Which use of its container this sandbox is (1: a new container)."""

    @property
    def id(self) -> str:
        return str(self.container.id)

    @property
    def started(self) -> Started:
        """The container and what came with it (kept across uses when it is recycled)."""
        return self._s

    def profile(self) -> dict[str, object]:
        out = describe(self._s.kwargs, self.container.attrs, self._provider.engine_facts,
                       self.spec.user)
        out["labels"] = dict(self.labels)
        out["container"] = self.container.name
        out["container_id"] = self.id[:12]  # a recycled container keeps it across episodes
        out["exec_path_reason"] = self._s.exec_reason
        if self._provider.may_recycle(self.spec):
            pristine = self._s.pristine
            out["recycle"] = {
                "use": self.use,
                "before_use": "new container" if self.use == 1 else
                "reset, verified against the pristine fingerprint",
                "pristine_sha256": None if pristine is None else recycle.digest(pristine),
            }
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
        argv, script_in = shell_argv(argv)  # the script on stdin: not in cmdline nor environ
        marker = uuid.uuid4().hex
        run_as = user or self.spec.user
        base = argv
        if timeout is not None:
            # timeout(1) runs the command in its own process group and kills the group;
            # the marker sweep below catches processes that left the group (setsid, daemons).
            argv = ["timeout", "-s", "KILL", f"{max(timeout, 0.001):.3f}", *argv]
        data = input.encode() if isinstance(input, str) else input
        if script_in:
            data = script_in + (data or b"")
        home = self._s.image.homes.get(run_as)
        exec_env = {**({"HOME": home} if home else {}), **(env or {}), engine.EXEC_MARKER: marker}
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

    async def exec_raw(self, argv: list[str], timeout: float, stdin: bytes | None,
                       limit: int) -> engine.RawExec:
        """Run one of ptebench's own commands (the reset) as the sandbox user, from ``/``."""
        return await self._exec_raw(argv, timeout, stdin, "/", None, None, limit)

    async def _exec_server(
        self, execd: ExecClient, argv: list[str], data: bytes | None, cwd: str,
        env: dict[str, str], timeout: float | None, limit: int | None,
    ) -> engine.RawExec:
        try:
            rid, fut = execd.submit(argv, data, cwd, env, timeout, limit)
        except SandboxError as e:  # the server is gone: say why (the container died, ...)
            raise await _blocking(engine.container_fault, self.container, e) from e
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

    async def stop_agent(self) -> int:
        """SIGKILL every process of the sandbox user (the agent's): the runner calls this
        before scoring, so nothing the agent left running can tamper with the state or
        with the scorer's pipes. No fork is needed (the exec server kills in-process;
        bash's ``kill`` is a builtin), and when a fork bomb exhausted the pids limit so
        that not even the kill can start, the limit is lifted for it and put back.
        Returns how many kill rounds found processes.

        Raises:
            SandboxError: the container is gone or the kill could not run (an
                infrastructure failure, never the agent's score).
        """
        self._check_open()
        execd = self._s.execd
        if execd is not None:
            try:
                msg = await asyncio.wait_for(asyncio.wrap_future(execd.killall()), 30)
            except (TimeoutError, SandboxError) as e:
                raise await _blocking(engine.container_fault, self.container, e) from e
            return int(msg["rounds"])
        # a root agent shares its uid with PID 1 and the keepalive: spare them by pid
        argv = ["bash", "-c", _KILLALL_ROOT if self._s.image.uid == 0 else _KILLALL]
        try:
            raw = await self._exec_raw(argv, None, None, "/", self.spec.user, None, 4096)
            if raw.exit_code == 0:
                return int(raw.stdout.decode().strip() or 0)
            why = f"exit {raw.exit_code}: {raw.stderr.decode(errors='replace')[-300:]}"
        except SandboxError as e:
            why = str(e)
        limit = self.spec.resources.pids
        await _blocking(engine.set_pids_limit, self._provider.client.api, self.id, limit + 64)
        try:
            raw = await self._exec_raw(argv, None, None, "/", self.spec.user, None, 4096)
        finally:
            await _blocking(engine.set_pids_limit, self._provider.client.api, self.id, limit)
        if raw.exit_code != 0:
            raise SandboxError(f"cannot stop the agent's processes in {self.container.name} "
                               f"({why}; with the pids limit lifted: exit {raw.exit_code})")
        return int(raw.stdout.decode().strip() or 0)

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
            except engine.LinkInArchive:
                pass  # a symlink: resolved inside the container, with the sandbox user's rights
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

    async def _archivers(self, path: str) -> list[str]:
        """Who archives the entries of tmpfs ``path``: its owner, then the sandbox user —
        each only if it owns an entry there (one command as the sandbox user, so no
        ``docker exec`` on the exec-server path when everything is the agent's). Another
        user's entry is visible to that listing: it, or a directory above it that is not
        the agent's, is listed; when the listing fails anywhere (a directory the agent
        cannot read, the mount root included), both archive, as before."""
        script = ('set -o pipefail; stat -c %U -- "$0" && '
                  'find "$0" -mindepth 1 -printf "%u\\n" 2>/dev/null | sort -u')
        res = await self._exec_raw(["bash", "-c", script, path], 30, None, None, None, None,
                                   1 << 16)
        lines = res.stdout.decode().split()
        owner = lines[0] if lines and lines[0] != "UNKNOWN" else self.spec.user
        if res.exit_code != 0:
            return list(dict.fromkeys([owner, self.spec.user]))
        present = set(lines[1:])
        return [u for u in dict.fromkeys([owner, self.spec.user]) if u in present]

    async def snapshot(self) -> str:
        """Archive the writable state to files under the provider's snapshot directory.

        Raises:
            SandboxError: the snapshot would pass the per-snapshot cap or the run's budget
                (the refusal is also recorded in ``provider.snapshot_refusals``).
        """
        self._check_open()
        store = self._provider.snapshot_store
        sid = f"snap-{uuid.uuid4().hex}"
        folder = store.begin(sid)
        try:
            stream, _ = await _blocking(self.container.get_archive, self.spec.workdir + "/.")
            work = folder / "workdir.tar"
            await _blocking(engine.reroot_tar_to, stream, work, store.room(sid))
            store.charge(sid, work.stat().st_size)
            tars: dict[str, list[tuple[str, Path]]] = {}
            for k, path in enumerate([*self.spec.tmpfs, SHM_PATH]):
                # With every capability dropped, root can neither read another user's private
                # files nor give files away on restore. So each user (the mount's owner first,
                # then the sandbox user) archives the entries it owns and later restores them.
                tars[path] = []
                for n, user in enumerate(await self._archivers(path)):
                    script = ('cd "$0" && find . -mindepth 1 -user "$1" -print0 '
                              '| tar --null --no-recursion --ignore-failed-read -T - -cf -')
                    raw = await self._exec_raw(["bash", "-c", script, path, user], None, None,
                                               None, user, None, store.room(sid) + 1)
                    if raw.exit_code not in (0, 1):  # 1: a file changed while being read
                        raise SandboxError(
                            f"snapshot of {path} failed: {raw.stderr.decode()[-500:]}")
                    if raw.stdout_bytes > len(raw.stdout):
                        raise store.refuse(sid, raw.stdout_bytes)
                    f = folder / f"tmpfs{k}-{n}.tar"
                    f.write_bytes(raw.stdout)
                    store.charge(sid, len(raw.stdout))
                    tars[path].append((user, f))
            image = None
            if not self.spec.read_only_root:
                repo = f"ptebench/snapshot-{uuid.uuid4().hex[:12]}"
                img = await _blocking(lambda: self.container.commit(
                    repository=repo, tag="latest",
                    conf={"Labels": {**self.labels, LABEL_OWNER: self._provider.owner,
                                     LABEL_KIND: "snapshot"}}))
                image = str(img.id)
                self._provider.snapshot_images.add(image)
        except engine.TooLarge as e:
            store.drop(sid)
            raise store.refuse(sid, e.size) from None
        except BaseException:
            store.drop(sid)
            raise
        self._provider.snapshots[sid] = _Snapshot(self.spec, self.labels, work, tars, image)
        return sid

    async def discard_snapshot(self, snapshot_id: str) -> None:
        """Free a snapshot no restore will need again (its files and its image, if any)."""
        await self._provider.drop_snapshots([snapshot_id])

    async def restore(self, snapshot_id: str) -> DockerSandbox:
        snap = self._provider.snapshots.get(snapshot_id)
        if snap is None:
            raise SandboxError(f"unknown snapshot {snapshot_id!r} (snapshots live as long as "
                               "the episode that took them)")
        spec = snap.spec if snap.image is None else snap.spec.model_copy(
            update={"image": snap.image})
        sb = await self._provider.open(spec, snap.labels)
        try:
            if snap.workdir_tar.stat().st_size:
                def put() -> None:
                    with snap.workdir_tar.open("rb") as f:
                        sb.container.put_archive(spec.workdir, f)
                await _blocking(put)
            for path, parts in snap.tmpfs_tars.items():
                for owner, tar_file in parts:
                    tar = tar_file.read_bytes()
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

    def retire(self) -> None:
        """Refuse every further use of this handle (its container lives on elsewhere)."""
        self._closed = True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._provider.live.pop(self.id, None)
        if await self._provider.recycle_container(self):
            return
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
        self, max_sandboxes: int | None = None, warm: int = 1,
        exec_server: ExecServerMode = "auto", snapshot_dir: str | None = None,
        snapshot_budget_mb: int | None = None, snapshot_max_mb: int | None = None,
        recycle: bool = True,
    ) -> None:
        """``max_sandboxes``: concurrent sandboxes (default from CPUs and memory);
        ``warm``: containers kept started ahead of demand per spec (0 disables the pool);
        ``exec_server``: run commands through the in-container server (execd.py) — ``auto``
        where the image can run it (python3 ≥ 3.9, no ENTRYPOINT, no label
        ``ptebench.exec_server=false``), else docker exec; true or false to force a path;
        ``snapshot_dir`` / ``snapshot_budget_mb`` / ``snapshot_max_mb``: where snapshots are
        kept on disk, how much all live ones may hold, and the cap of one (snapstore.py);
        ``recycle``: reset, verify and reuse the containers of tasks that declare ``reuse``
        (false: every episode gets a new container).

        Raises:
            ConfigError: an option out of range (the experiment's sandbox_options).
        """
        counts: list[tuple[str, object, int]] = [
            ("max_sandboxes", max_sandboxes, 1), ("warm", warm, 0),
            ("snapshot_budget_mb", snapshot_budget_mb, 1), ("snapshot_max_mb", snapshot_max_mb, 1)]
        bad = [f"{k}: {v!r} (must be an integer ≥ {lo})" for k, v, lo in counts
               if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < lo)]
        if exec_server not in (True, False, "auto"):
            bad.append(f"exec_server: {exec_server!r} (auto, true or false)")
        if recycle not in (True, False):
            bad.append(f"recycle: {recycle!r} (true or false)")
        if bad:
            raise ConfigError("sandbox_options: " + "; ".join(bad))
        self.exec_server: ExecServerMode = exec_server
        self.recycle = recycle
        self.recycled = 0
        """Containers handed to a later episode after a verified reset."""
        self.recycle_failures: list[str] = []
        """Containers removed instead of recycled, and why (a failed reset or verification)."""
        self.max_sandboxes = max_sandboxes or default_max_sandboxes()
        self._snap_opts = (snapshot_dir, snapshot_budget_mb, snapshot_max_mb)
        self._snap_store: SnapshotStore | None = None
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
    def snapshot_store(self) -> SnapshotStore:
        if self._snap_store is None:
            self._snap_store = SnapshotStore(*self._snap_opts)
        return self._snap_store

    @property
    def snapshot_refusals(self) -> list[str]:
        return self._snap_store.refusals if self._snap_store is not None else []

    async def drop_snapshots(self, sids: list[str]) -> None:
        """Free snapshots: their files now, their committed images (rw-root tasks) too."""
        for sid in sids:
            snap = self.snapshots.pop(sid, None)
            if snap is None:
                continue
            if self._snap_store is not None:
                self._snap_store.drop(sid)
            if snap.image is not None and snap.image in self.snapshot_images:
                self.snapshot_images.discard(snap.image)
                with contextlib.suppress(Exception):
                    await _blocking(self.client.images.remove, snap.image, True)

    async def drop_episode_snapshots(self, labels: dict[str, str]) -> None:
        ep = _labels(labels).get(LABEL_EPISODE)
        if ep is not None:
            await self.drop_snapshots([sid for sid, s in self.snapshots.items()
                                       if s.labels.get(LABEL_EPISODE) == ep])

    @property
    def pool(self) -> WarmPool:
        if self._pool is None:
            self._pool = WarmPool(self.client, self._warm, self.owner, self.exec_server,
                                  cap=self.max_sandboxes)
        return self._pool

    @property
    def created(self) -> int:
        """Containers this provider started (pooled, cold, restored; not counting reuses)."""
        return self._pool.created if self._pool is not None else 0

    def may_recycle(self, spec: SandboxSpec) -> bool:
        """A container of ``spec`` may serve a later episode after a verified reset: the
        task declared ``reuse``, recycling is on, and the whole writable state is what the
        reset covers (read-only root, no service containers)."""
        return (self.recycle and spec.reuse and spec.read_only_root and not spec.services)

    async def recycle_container(self, sb: DockerSandbox) -> bool:
        """Reset a closed sandbox's container, verify it and give it back to the pool.

        The reset runs through a new handle: the closed one (which an episode's code may
        still hold) stays closed. False when the container is not recyclable or failed
        (the caller removes it; the reason is in ``recycle_failures``).
        """
        started = sb.started
        pool = self._pool
        if (not self.may_recycle(sb.spec) or started.pristine is None or pool is None
                or pool.closed):
            return False
        handle = DockerSandbox(self, started, sb.spec, sb.labels)
        why = await recycle.reset(handle, started.pristine, started.image.workdir_tar)
        handle.retire()
        if why is None and pool.give_back(sb.spec, sb.labels, started):
            self.recycled += 1
            return True
        if why is not None:
            self.recycle_failures.append(f"{sb.container.name}: {why}")
        return False

    async def open(self, spec: SandboxSpec, labels: dict[str, str]) -> DockerSandbox:
        """A started sandbox outside any context manager (``restore`` uses it); caller closes."""
        lab = _labels(labels)
        _ = self.client  # first use: connects (main thread, so the SIGTERM hook can be set)
        reuse = self.may_recycle(spec)
        started = await self.pool.take(spec, lab) if self._warm or reuse else None
        if started is None:
            # a container that may serve several episodes carries none in its labels
            started = await self.pool.start(spec, lab, pooled=reuse)
            if reuse:
                await self.pool.name_after(started, lab)
        started.uses += 1
        sb = DockerSandbox(self, started, spec, lab)
        self.live[sb.id] = sb
        if reuse and started.pristine is None and started.image.python is not None:
            try:
                started.pristine = await recycle.fingerprint(sb)
            except SandboxError as e:  # not recycled then; the episode is not affected
                self.recycle_failures.append(f"{sb.container.name}: no fingerprint: {e}")
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
                # the episode is over: no restore will need its snapshots
                await asyncio.shield(self.drop_episode_snapshots(labels))

    def node_problem(self) -> str | None:
        """Why this machine cannot hand out sandboxes (no engine answering at DOCKER_HOST, or
        no ``ptebench/base`` image), or None: the check the Ray executor runs on each node
        before giving it episodes."""
        from ptebench.sandbox.images import BASE_IMAGE

        try:
            c = engine.client()
        except SandboxError as e:
            where = os.environ.get("DOCKER_HOST") or "the default socket"
            return f"no Docker engine at {where}: {e}"
        try:
            c.images.get(BASE_IMAGE)
        except Exception as e:  # ImageNotFound, or the engine failing the query
            return (f"the Docker engine has no {BASE_IMAGE} image ({type(e).__name__}); "
                    "build it there with `ptebench sandbox build`")
        finally:
            c.close()
        return None

    def purge_run(self, run_id: str) -> dict[str, int]:
        """Remove what any provider left on this machine's engine for one run (e.g. the
        containers of a worker killed mid-episode)."""
        return purge(run=run_id)

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
        await asyncio.gather(*(sb.close() for sb in list(self.live.values())),
                             return_exceptions=True)
        self.snapshots.clear()
        if self._snap_store is not None:
            self._snap_store.close()
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
