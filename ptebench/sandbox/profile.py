"""The hardened profile: the container settings every Docker sandbox gets by default.

A task relaxes a setting only through its ``SandboxSpec`` (e.g. ``network: internal``);
nothing else can. ``container_kwargs`` turns a spec into the Docker SDK's ``containers.create``
arguments, and ``describe`` turns those arguments back into the flat dict recorded in each
episode, so the record says what was applied, not what was asked.

Why the workdir is a volume and not the container layer: this engine's storage driver
(fuse-overlayfs) rejects ``storage_opt size``, so the writable layer cannot be bounded.
The root filesystem is read-only instead, and the only writable places are size-limited
tmpfs mounts: the workdir is a tmpfs-backed *volume* (``put_archive``/``get_archive`` work
on volumes of a read-only container, not on plain tmpfs mounts) and the spec's tmpfs paths
(``/tmp`` by default). tmpfs pages are charged to the container's memory cgroup too.
"""

from __future__ import annotations

from typing import Any

from ptebench.sandbox.base import SandboxSpec, ServiceSpec

LABEL_RUN = "ptebench.run"
LABEL_EPISODE = "ptebench.episode"
LABEL_KIND = "ptebench.kind"
"""sandbox (a container), service (a task's service container), workdir (its volume),
network, snapshot (a temporary image), base."""
LABEL_SERVICE = "ptebench.service"
"""On a service container: the service's name."""
LABEL_POOL = "ptebench.pool"
"""Set on containers started ahead of demand; the episode is then in the container name."""

INTERNAL_NETWORK_OPTIONS = {"com.docker.network.bridge.inhibit_ipv4": "true"}
"""Driver options of a task's ``internal`` network. ``internal=True`` alone drops forwarded
traffic only: the host keeps an address on the bridge (the gateway), and host services on
0.0.0.0 answer there. With ``inhibit_ipv4`` the host gets no address on the bridge, so the
sandboxes on it reach each other and nothing else (tests/sandbox/test_attacks.py,
``test_internal_network_has_no_route_out``)."""

KEEPALIVE = ["sleep", "infinity"]
"""PID 2 of a docker-exec sandbox (docker-init is PID 1); commands arrive through exec.
Both run as root (uid 0 without capabilities), so the agent's uid can neither signal them
nor open their ``/proc/<pid>/fd``; every command names its own user."""

SHM_PATH = "/dev/shm"
SHM_MB = 64
"""Size of ``/dev/shm`` (an engine tmpfs, writable by everyone): recorded in the profile
and archived by snapshots like the spec's tmpfs mounts."""

LOG_CONFIG = {"type": "none", "config": {}}
"""No container log: whatever reaches a sandbox's stdout/stderr never lands on the host's disk
(the exec server's attach stream is not a log and still works)."""


def _tmpfs_opts(opts: str, extra: str) -> str:
    """Add options unless the task already set them or their opposite (the task's value
    wins: ``suid`` keeps ``nosuid`` out, ``exec`` keeps ``noexec`` out)."""
    have = {o.split("=", 1)[0] for o in opts.split(",") if o}
    have |= {"no" + h for h in have} | {h[2:] for h in have if h.startswith("no")}
    add = [o for o in extra.split(",") if o.split("=", 1)[0] not in have]
    return ",".join([o for o in opts.split(",") if o] + add)


WORKDIR_MODE = 0o755
"""Mode of the workdir volume's root (a recycled container's reset puts it back)."""


def volume_options(spec: SandboxSpec, uid: int = 1000, gid: int = 1000) -> dict[str, str]:
    """Driver options of the workdir volume: a tmpfs bounded by ``resources.disk_mb``."""
    return {
        "type": "tmpfs",
        "device": "tmpfs",
        "o": f"size={spec.resources.disk_mb}m,uid={uid},gid={gid},mode={WORKDIR_MODE:04o},"
             "nosuid,nodev",
    }


def container_kwargs(
    spec: SandboxSpec, labels: dict[str, str], volume: str, network: str | None = None,
    command: list[str] | None = None,
) -> dict[str, Any]:
    """Arguments for ``client.containers.create`` (image and name excluded) under the profile.

    ``command`` replaces the keepalive (the exec server), with stdin kept open; it is then
    the entrypoint too, so the server is PID 1 even in an image with an ENTRYPOINT.
    """
    r = spec.resources
    mem = f"{r.memory_mb}m"
    tmpfs = {
        path: _tmpfs_opts(opts, "nosuid,nodev,mode=1777") for path, opts in spec.tmpfs.items()
    }
    server = command is not None
    kw: dict[str, Any] = {
        "command": [] if server else KEEPALIVE,
        "stdin_open": server,
        # The exec server is PID 1 as the sandbox user (non-dumpable, see execd.py); else
        # PID 1 and the keepalive are root's, out of the agent's reach.
        "user": spec.user if server else "root",
        "working_dir": spec.workdir,
        "environment": dict(spec.env),
        "labels": dict(labels),
        "init": not server,  # the exec server is init itself (reaps orphans)
        "shm_size": SHM_MB << 20,
        "log_config": dict(LOG_CONFIG),
        "detach": True,
        "cap_drop": ["ALL"],
        # default seccomp stays on (never unconfined); only a task's spec lifts no-new-privileges
        "security_opt": ["no-new-privileges:true"] if spec.no_new_privileges else [],
        "privileged": False,
        "pids_limit": r.pids,
        "mem_limit": mem,
        "memswap_limit": mem,  # = memory: no swap beyond the limit
        "nano_cpus": int(r.cpus * 1e9),
        "read_only": spec.read_only_root,
        "tmpfs": tmpfs,
        "volumes": {volume: {"bind": spec.workdir, "mode": "rw"}},
        "ipc_mode": "private",
        "ulimits": [{"Name": "core", "Soft": 0, "Hard": 0}],
    }
    if command is not None:
        kw["entrypoint"] = list(command)
    mode = network_kind(spec)
    if mode == "none":
        kw["network_mode"] = "none"
    elif mode in ("internal", "episode-bridge"):
        if network is None:
            raise ValueError(f"network {spec.network!r} needs the name of the episode's network")
        kw["network"] = network
    # network "full" without services: the engine's default bridge (the experiment must allow it).
    return kw


def network_kind(spec: SandboxSpec) -> str:
    """none | internal (the episode's own network, no route out) | episode-bridge (the
    episode's own network with a route out: full internet plus services) | full."""
    if spec.network == "full":
        return "episode-bridge" if spec.services else "full"
    if spec.network == "internal" or spec.services:
        return "internal"
    return "none"


def service_kwargs(svc: ServiceSpec, labels: dict[str, str]) -> dict[str, Any]:
    """``containers.create`` arguments of a service container under the hardened profile
    (image, name and network excluded)."""
    r = svc.resources
    mem = f"{r.memory_mb}m"
    kw: dict[str, Any] = {
        "environment": dict(svc.env),
        "labels": dict(labels),
        "init": True,
        "detach": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "privileged": False,
        "pids_limit": r.pids,
        "mem_limit": mem,
        "memswap_limit": mem,
        "nano_cpus": int(r.cpus * 1e9),
        "read_only": svc.read_only_root,
        "tmpfs": {p: _tmpfs_opts(o, "nosuid,nodev,mode=1777") for p, o in svc.tmpfs.items()},
        "ipc_mode": "private",
        "ulimits": [{"Name": "core", "Soft": 0, "Hard": 0}],
    }
    if svc.command is not None:
        kw["command"] = list(svc.command)
    if svc.entrypoint is not None:
        kw["entrypoint"] = list(svc.entrypoint)
    if svc.user is not None:
        kw["user"] = svc.user
    if svc.workdir is not None:
        kw["working_dir"] = svc.workdir
    if svc.healthcheck is not None:
        h = svc.healthcheck
        kw["healthcheck"] = {
            "test": ["CMD", *h.test], "interval": int(h.interval_s * 1e9),
            "timeout": int(h.timeout_s * 1e9), "retries": h.retries,
            "start_period": int(h.start_period_s * 1e9),
        }
    return kw


def describe(
    kw: dict[str, Any], attrs: dict[str, Any] | None = None, engine: dict[str, Any] | None = None,
    user: str | None = None,
) -> dict[str, object]:
    """The profile recorded in the episode; ``attrs`` (container inspect) wins where given.
    ``user``: the spec's user, whom commands run as (default: the container's user)."""
    host: dict[str, Any] = (attrs or {}).get("HostConfig", {})
    sec = host.get("SecurityOpt", kw["security_opt"]) or []
    seccomp = "unconfined" if any("seccomp=unconfined" in s for s in sec) else "default"
    out: dict[str, object] = {
        "backend": "docker",
        "user": user or kw["user"],
        # commands run as the spec's user (every exec names it); PID 1 may be root's
        "pid1_user": (attrs or {}).get("Config", {}).get("User", kw["user"]),
        "network": host.get("NetworkMode", kw.get("network_mode") or kw.get("network", "bridge")),
        "cap_drop": host.get("CapDrop", kw["cap_drop"]),
        "cap_add": host.get("CapAdd") or [],
        "no_new_privileges": any("no-new-privileges" in s for s in sec),
        "seccomp": seccomp,
        "privileged": host.get("Privileged", False),
        "pids_limit": host.get("PidsLimit", kw["pids_limit"]),
        "memory_bytes": host.get("Memory"),
        "memory_swap_bytes": host.get("MemorySwap"),
        "nano_cpus": host.get("NanoCpus", kw["nano_cpus"]),
        "read_only_root": host.get("ReadonlyRootfs", kw["read_only"]),
        "tmpfs": host.get("Tmpfs", kw["tmpfs"]),
        "shm_bytes": host.get("ShmSize", kw["shm_size"]),
        "log_driver": (host.get("LogConfig") or {}).get("Type", kw["log_config"]["type"]),
        "workdir": kw["working_dir"],
        "workdir_storage": "tmpfs volume (storage_opt size unsupported on fuse-overlayfs)",
        "init": "docker-init" if host.get("Init", kw["init"]) else "exec server (PID 1)",
        "exec_path": "exec server over attach" if kw["stdin_open"] else "docker exec",
        # "none" has only lo; "internal" bridges carry no host address (inhibit_ipv4);
        # "full" is the engine's default bridge, where the host answers.
        "host_reachable": kw.get("network_mode") != "none" and "network" not in kw,
        "services": [],
        "docker_socket_mounted": any(
            "docker.sock" in str(m) for m in (attrs or {}).get("Mounts", [])
        ),
    }
    if engine:
        out["engine"] = engine
    return out
