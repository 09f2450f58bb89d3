"""Starting hardened containers, and keeping a few started ahead of demand (the warm pool).

A pooled container serves one episode at a time: ``take`` removes it from the pool, and the
sandbox that gets it removes it on close — unless the task declared ``reuse`` and the
container passed a verified reset (recycle.py), which ``give_back`` returns to the pool.
Docker labels are fixed at creation, so a pooled container carries the run's labels plus
``ptebench.pool=warm``; the episode it serves is written into its name on ``take`` (and
recorded in the sandbox profile).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from ptebench.errors import SandboxError
from ptebench.sandbox import engine
from ptebench.sandbox.base import SandboxSpec, ServiceSpec
from ptebench.sandbox.execd import COMMAND, ExecClient
from ptebench.sandbox.profile import (
    INTERNAL_NETWORK_OPTIONS,
    LABEL_EPISODE,
    LABEL_KIND,
    LABEL_POOL,
    LABEL_SERVICE,
    container_kwargs,
    network_kind,
    service_kwargs,
    volume_options,
)

LABEL_OWNER = "ptebench.owner"
"""Id of the provider (one process) that made the object: its exit handler removes them."""


POOL_NAME_PART = "pool"
"""Episode part of a warm container's name until an episode takes it (and renames it)."""


def episode_of(name: str, labels: dict[str, str]) -> str:
    """The episode a container serves, for listings: its label, else (a pooled container,
    whose labels were fixed before it was taken) the episode its name was given on take,
    else "(warm pool)" for a container no episode has taken yet."""
    if labels.get(LABEL_EPISODE):
        return labels[LABEL_EPISODE]
    if not labels.get(LABEL_POOL):
        return ""
    if f"-{POOL_NAME_PART}-" in name:
        return "(warm pool)"
    return name.removeprefix("ptebench-")[:-9] or name


LABEL_EXEC_SERVER = "ptebench.exec_server"
"""Image label: ``false`` keeps the image on docker exec even where the server could run."""

ExecServerMode = bool | Literal["auto"]

PYTHON_PROBE = ("import ctypes, os, sys; assert sys.version_info >= (3, 9); "
                "ctypes.CDLL(None).prctl; os.waitstatus_to_exitcode; "
                "print('ptebench-exec-server-ok %d.%d.%d' % sys.version_info[:3])")
"""What the exec server needs of the image's python3 (execd.SERVER), checked by running it."""


@dataclass
class ImageInfo:
    """What a sandbox needs to know about its image before starting it."""

    uid: int
    gid: int
    workdir_tar: bytes
    """The image's own workdir content (the tmpfs workdir would otherwise hide it)."""
    homes: dict[str, str] = field(default_factory=dict)
    """Home directory of each user in /etc/passwd (HOME of a command run as that user)."""
    entrypoint: list[str] | None = None
    """The image's ENTRYPOINT (the exec server is chosen by default only without one)."""
    exec_label: str | None = None
    """The image's ``ptebench.exec_server`` label, if any."""
    python: str | None = None
    """Version of the image's python3 when it can run the exec server as the spec's user
    (checked by running it), else None."""
    python_why: str = "not probed"
    """Why ``python`` is None."""

    def exec_server(self, mode: ExecServerMode) -> tuple[bool, str]:
        """Whether a container of this image runs its commands through the exec server,
        and why (recorded in the profile as ``exec_path_reason``)."""
        if mode is True:
            return True, "sandbox_options exec_server: true"
        if mode is False:
            return False, "sandbox_options exec_server: false"
        if (self.exec_label or "").lower() in ("false", "0", "no"):
            return False, f"auto: the image's label {LABEL_EXEC_SERVER}={self.exec_label}"
        if self.entrypoint:
            return False, "auto: the image has an ENTRYPOINT"
        if self.python is None:
            return False, f"auto: the image cannot run the exec server ({self.python_why})"
        return True, f"auto: the image runs it (python3 {self.python})"


@dataclass
class Started:
    """A running container and its workdir volume."""

    container: Any
    volume: Any
    kwargs: dict[str, Any]
    image: ImageInfo
    network: Any = None
    """The sandbox's own internal network (spec ``network: internal``), else None."""
    execd: ExecClient | None = None
    """Connection to the opt-in exec server, else None (commands use docker exec)."""
    services: dict[str, Any] | None = None
    """The task's service containers by name (on ``network``), else None."""
    exec_reason: str = ""
    """Why this exec path (ImageInfo.exec_server)."""
    pristine: dict[str, Any] | None = None
    """Fingerprint when new (recycle.py), taken for a task that declared ``reuse``."""
    uses: int = 0
    """Episodes (or forks) this container has served so far."""


def _name_part(s: str, n: int = 40) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]", "-", s)[:n] or "x"


def image_info(client: Any, image: str, user: str, workdir: str,
               probe_python: bool = False) -> ImageInfo:
    """uid/gid of ``user`` and the workdir content of ``image``, read from a never-started
    container; with ``probe_python``, whether the image's python3 can run the exec server
    as ``user`` (one short container run per image and user).

    Raises:
        SandboxError: the image does not exist (build it, or run ``ptebench sandbox build``).
    """
    docker = engine.docker_module()
    try:
        probe = engine.retrying(
            lambda: client.containers.create(image, ["true"], network_mode="none",
                                             labels={LABEL_KIND: "probe"})
        )
    except docker.errors.ImageNotFound as e:
        hint = " (run `ptebench sandbox build`)" if image.startswith("ptebench/base") else ""
        raise SandboxError(f"image {image!r} not found{hint}") from e
    try:
        passwd = engine.untar_one(probe.get_archive("/etc/passwd")[0], "/etc/passwd").decode()
        rows = [f for f in (ln.split(":") for ln in passwd.splitlines()) if len(f) > 5]
        ids = {f[0]: (int(f[2]), int(f[3])) for f in rows}
        homes = {f[0]: f[5] for f in rows}
        if user.isdigit():
            uid, gid = int(user), int(user)
        elif user in ids:
            uid, gid = ids[user]
        else:
            raise SandboxError(f"user {user!r} does not exist in image {image!r}")
        try:
            tar = engine.reroot_tar(b"".join(probe.get_archive(workdir)[0]))
        except docker.errors.NotFound:
            tar = b""
        config = probe.attrs.get("Config") or {}
    finally:
        probe.remove(force=True, v=True)  # v: an image from a commit declares volumes
    info = ImageInfo(uid, gid, tar, homes, entrypoint=config.get("Entrypoint") or None,
                     exec_label=(config.get("Labels") or {}).get(LABEL_EXEC_SERVER))
    if probe_python:
        info.python, info.python_why = python_version(client, image, user)
    return info


def python_version(client: Any, image: str, user: str) -> tuple[str | None, str]:
    """(version, "") when ``python3 -I`` in ``image`` runs the exec server's needs as
    ``user`` under the hardened profile, else (None, why)."""
    docker = engine.docker_module()
    ct = None
    try:
        ct = engine.retrying(lambda: client.containers.create(
            image, entrypoint=["python3", "-I", "-c", PYTHON_PROBE], command=[], user=user,
            network_mode="none", cap_drop=["ALL"], security_opt=["no-new-privileges:true"],
            read_only=True, mem_limit="128m", pids_limit=32, labels={LABEL_KIND: "probe"}))
        ct.start()
        code = ct.wait(timeout=60).get("StatusCode")
        out = ct.logs(stdout=True, stderr=True).decode(errors="replace").strip()
    except docker.errors.DockerException as e:
        return None, f"python3 does not start: {str(e)[-200:]}"
    except Exception as e:  # a wait that timed out (requests) or a lost connection
        return None, f"python3 probe failed: {type(e).__name__}: {e}"
    finally:
        if ct is not None:
            with contextlib.suppress(Exception):
                ct.remove(force=True, v=True)
    if code == 0 and out.startswith("ptebench-exec-server-ok "):
        return out.split()[1], ""
    return None, f"python3 probe exited {code}: {out[-200:]}"


def start(
    client: Any, spec: SandboxSpec, labels: dict[str, str], info: ImageInfo, name: str,
    exec_server: bool = False,
) -> Started:
    """Create the episode's network and services (when the task has any), then the workdir
    volume and the container under the hardened profile, and start it.

    Raises:
        SandboxError: the engine refused (with its reason), or a service did not become
            healthy; nothing is left behind.
    """
    docker = engine.docker_module()
    vol = None
    ct = None
    net = None
    services: dict[str, Any] = {}
    try:
        kind = network_kind(spec)
        if kind in ("internal", "episode-bridge"):
            # One network per sandbox: episodes of a run must not reach each other.
            internal = kind == "internal"
            net = engine.retrying(lambda: client.networks.create(
                f"{name}-net", driver="bridge", internal=internal,
                options=INTERNAL_NETWORK_OPTIONS if internal else {},
                labels={**labels, LABEL_KIND: "network"}))
        for svc_name, svc in spec.services.items():
            assert net is not None  # network_kind gives services an episode network
            services[svc_name] = start_service(client, svc_name, svc, labels, name, net.name)
        wait_healthy(services, spec.services)
        vol = engine.retrying(lambda: client.volumes.create(
            name=f"{name}-work", driver="local",
            driver_opts=volume_options(spec, info.uid, info.gid),
            labels={**labels, LABEL_KIND: "workdir"},
        ))
        kw = container_kwargs(spec, labels, vol.name, net.name if net is not None else None,
                              COMMAND if exec_server else None)
        ct = engine.retrying(lambda: client.containers.create(spec.image, name=name, **kw))
        engine.retrying(ct.start)
        if info.workdir_tar:
            ct.put_archive(spec.workdir, info.workdir_tar)
        execd = ExecClient(client.api, ct.id, name) if exec_server else None
        return Started(ct, vol, kw, info, net, execd, services or None)
    except docker.errors.DockerException as e:
        remove(ct, vol, net, services)
        raise SandboxError(f"cannot start a sandbox from {spec.image!r}: {e}") from e
    except BaseException:
        remove(ct, vol, net, services)
        raise


def start_service(
    client: Any, svc_name: str, svc: ServiceSpec, labels: dict[str, str], sandbox: str,
    network: str,
) -> Any:
    """Create and start one service container on ``network``, reachable there as ``svc_name``."""
    docker = engine.docker_module()
    lab = {**labels, LABEL_KIND: "service", LABEL_SERVICE: svc_name}
    kw = service_kwargs(svc, lab)
    endpoint = client.api.create_endpoint_config(aliases=[svc_name])
    try:
        ct = engine.retrying(lambda: client.containers.create(
            svc.image, name=f"{sandbox}-{_name_part(svc_name, 20)}", network=network,
            networking_config={network: endpoint}, **kw))
    except docker.errors.ImageNotFound as e:
        raise SandboxError(f"service {svc_name}: image {svc.image!r} not found") from e
    try:
        engine.retrying(ct.start)
    except BaseException:
        remove(ct, None)
        raise
    return ct


def wait_healthy(services: dict[str, Any], specs: dict[str, ServiceSpec]) -> None:
    """Wait until every service runs and, where it has a healthcheck, reports healthy.

    Raises:
        SandboxError: a service exited, or stayed unhealthy past its healthcheck's budget.
    """
    import time

    for svc_name, ct in services.items():
        h = specs[svc_name].healthcheck
        budget = 30.0 if h is None else h.start_period_s + h.retries * (h.interval_s + h.timeout_s)
        deadline = time.monotonic() + budget
        while True:
            ct.reload()
            st = ct.attrs.get("State", {})
            health = (st.get("Health") or {}).get("Status")
            if not st.get("Running", False):
                logs = ct.logs(tail=20).decode(errors="replace").strip()
                raise SandboxError(f"service {svc_name} exited with code {st.get('ExitCode')}: {logs[-600:]}")
            if h is None or health == "healthy":
                break
            if health == "unhealthy" or time.monotonic() > deadline:
                log = (st.get("Health") or {}).get("Log") or [{}]
                raise SandboxError(f"service {svc_name} did not become healthy: "
                                   f"{str(log[-1].get('Output', '')).strip()[-400:]}")
            time.sleep(min(0.1, h.interval_s))


def remove(container: Any | None, volume: Any | None, network: Any | None = None,
           services: dict[str, Any] | None = None) -> None:
    """Remove a container, its services, volume and network, ignoring what is already gone."""
    for c in [container, *(services or {}).values()]:
        if c is not None:
            with contextlib.suppress(Exception):
                c.remove(force=True, v=True)
    if volume is not None:
        with contextlib.suppress(Exception):
            volume.remove(force=True)
    if network is not None:
        with contextlib.suppress(Exception):
            network.remove()


class WarmPool:
    """Pre-started containers per (spec, run labels), refilled in the background, and the
    recycled ones given back (at most ``cap`` ready per key)."""

    def __init__(self, client: Any, size: int, owner: str, exec_server: ExecServerMode = False,
                 cap: int = 64) -> None:
        self.client = client
        self.exec_server: ExecServerMode = exec_server
        self.size = size
        self.cap = cap
        self.owner = owner
        self.created = 0
        """Containers started (pooled or not) by this pool."""
        self._ready: dict[str, list[Started]] = {}
        self._filling: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._infos: dict[tuple[str, str, str], ImageInfo] = {}
        self.closed = False

    async def info(self, spec: SandboxSpec) -> ImageInfo:
        k = (spec.image, spec.user, spec.workdir)
        if k not in self._infos:
            # python3 is probed for the exec server's automatic choice and for recycling
            probe = self.exec_server == "auto" or spec.reuse
            self._infos[k] = await asyncio.get_running_loop().run_in_executor(
                engine.POOL, image_info, self.client, spec.image, spec.user, spec.workdir, probe
            )
        return self._infos[k]

    @staticmethod
    def key(spec: SandboxSpec, labels: dict[str, str]) -> str:
        run = sorted((k, v) for k, v in labels.items() if k != LABEL_EPISODE)
        return spec.model_dump_json() + repr(run)

    async def start(self, spec: SandboxSpec, labels: dict[str, str], pooled: bool) -> Started:
        info = await self.info(spec)
        run = labels.get("ptebench.run", "adhoc")
        # a pooled container serves an episode not known yet: never name the one whose
        # acquire triggered the refill
        ep = POOL_NAME_PART if pooled else labels.get(LABEL_EPISODE, "x")
        name = f"ptebench-{_name_part(run, 24)}-{_name_part(ep, 24)}-{uuid.uuid4().hex[:8]}"
        lab = {**labels, LABEL_OWNER: self.owner, LABEL_KIND: "sandbox"}
        if pooled:
            lab.pop(LABEL_EPISODE, None)
            lab[LABEL_POOL] = "warm"
        server, why = info.exec_server(self.exec_server)
        self.created += 1
        started = await asyncio.get_running_loop().run_in_executor(
            engine.POOL, start, self.client, spec, lab, info, name, server
        )
        started.exec_reason = why
        return started

    async def take(self, spec: SandboxSpec, labels: dict[str, str]) -> Started | None:
        """A pre-started (or recycled) container for this spec, renamed after the episode,
        or None."""
        k = self.key(spec, labels)
        ready = self._ready.get(k, [])
        got = ready.pop() if ready else None  # the last given back: its pages are warm
        self._schedule_fill(k, spec, labels)
        if got is not None:
            await self.name_after(got, labels)
        return got

    async def name_after(self, got: Started, labels: dict[str, str]) -> None:
        """Rename a container after the episode it now serves."""
        if LABEL_EPISODE not in labels:
            return
        new = f"ptebench-{_name_part(labels[LABEL_EPISODE])}-{uuid.uuid4().hex[:8]}"
        with contextlib.suppress(Exception):  # the name is a convenience, not a contract
            await asyncio.get_running_loop().run_in_executor(
                engine.POOL, got.container.rename, new
            )
            got.container.attrs["Name"] = "/" + new  # Container.name reads attrs

    def give_back(self, spec: SandboxSpec, labels: dict[str, str], started: Started) -> bool:
        """Keep a recycled container for the next episode of this spec; False when the
        pool is closed or already holds ``cap`` (the caller removes it then)."""
        ready = self._ready.setdefault(self.key(spec, labels), [])
        if self.closed or len(ready) >= self.cap:
            return False
        ready.append(started)
        return True

    def _schedule_fill(self, k: str, spec: SandboxSpec, labels: dict[str, str]) -> None:
        missing = self.size - len(self._ready.get(k, [])) - self._filling.get(k, 0)
        for _ in range(max(0, missing)):
            self._filling[k] = self._filling.get(k, 0) + 1
            t = asyncio.get_running_loop().create_task(self._fill_one(k, spec, labels))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    async def _fill_one(self, k: str, spec: SandboxSpec, labels: dict[str, str]) -> None:
        try:
            s = await self.start(spec, labels, pooled=True)
        except Exception:
            return  # a failed warm start is retried cold by the next acquire, which reports it
        finally:
            self._filling[k] -= 1
        if self.closed:
            await asyncio.get_running_loop().run_in_executor(
                engine.POOL, remove, s.container, s.volume, s.network, s.services
            )
        else:
            self._ready.setdefault(k, []).append(s)

    async def prewarm(self, spec: SandboxSpec, labels: dict[str, str]) -> None:
        """Fill the pool for this spec now and wait for it."""
        self._schedule_fill(self.key(spec, labels), spec, labels)
        while any(self._filling.values()):
            await asyncio.sleep(0.02)

    async def aclose(self) -> None:
        self.closed = True
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        loop = asyncio.get_running_loop()
        ready = [s for lst in self._ready.values() for s in lst]
        self._ready.clear()
        await asyncio.gather(
            *(loop.run_in_executor(engine.POOL, remove, s.container, s.volume, s.network,
                                   s.services)
              for s in ready)
        )

    def stats(self) -> dict[str, int]:
        return {"ready": sum(len(v) for v in self._ready.values()),
                "filling": sum(self._filling.values())}


def check_engine(client: Any) -> dict[str, Any]:
    """Engine facts recorded with the profile (version, storage driver, cgroup version)."""
    try:
        info = client.info()
    except Exception as e:
        raise SandboxError(f"cannot query the Docker engine: {e}") from e
    return {
        "server_version": info.get("ServerVersion"),
        "storage_driver": info.get("Driver"),
        "cgroup_version": info.get("CgroupVersion"),
        "seccomp": any("seccomp" in s for s in info.get("SecurityOptions", [])),
    }
