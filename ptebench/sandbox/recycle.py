"""Recycling a container between episodes: reset it, verify the reset, else remove it.

A task that declares ``reuse: true`` in its sandbox spec lets a released container serve a
later episode (the container create/start/remove cycle is what bounds a Docker run on a
small host: ~5 per second on 2 cores). Before it goes back to the pool:

1. every process of the episode is killed (``stop_agent``: all processes of the agent's
   uid, without forking);
2. ``RESET`` (run inside the container as the sandbox user, with ``python3 -I``) deletes
   everything in the workdir, the task's tmpfs mounts, ``/dev/shm`` and ``/dev/mqueue``,
   removes the IPC namespace's System V objects, restores the workdir root's mode and
   xattrs, and unpacks the image's own workdir content again (the archive the container
   was started with);
3. it then prints the container's fingerprint, which the host compares with the one taken
   when the container was new: the live processes (pid, name, start time: the same
   processes, none added), the mount table, every entry of every writable mount (path,
   mode, owner, size, link target, sha256 of regular files, xattrs) and the IPC objects.

Any difference, any error, a timeout, or a container that is no longer running removes the
container instead (the reason is kept in ``DockerProvider.recycle_failures``). What the
fingerprint cannot see is documented in docs/sandbox.md (*Recycling*).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from ptebench.errors import SandboxError
from ptebench.sandbox.profile import SHM_PATH, WORKDIR_MODE

if TYPE_CHECKING:
    from ptebench.sandbox.docker import DockerSandbox

RESET_TIMEOUT_S = 60.0
"""Budget of one reset or fingerprint exec (past it the container is removed)."""

RESET = r"""
import ctypes, hashlib, io, json, os, re, stat, sys, tarfile
mode, workdir, wmode = sys.argv[1], sys.argv[2], int(sys.argv[3], 8)
wipe_roots = sys.argv[2:3] + sys.argv[4:]
SKIP_FS = {"proc", "sysfs", "cgroup", "cgroup2", "devpts", "securityfs", "debugfs", "bpf",
           "tracefs", "fusectl", "pstore", "configfs", "binfmt_misc"}
errors = []
def rm(path):
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        try:
            os.chmod(path, 0o700)
        except OSError:
            pass
        for e in os.scandir(path):
            rm(e.path)
        os.rmdir(path)
    else:
        os.unlink(path)
def wipe():
    for root in wipe_roots + ["/dev/mqueue"]:
        try:
            names = os.listdir(root)
        except OSError:
            continue
        for n in names:
            try:
                rm(os.path.join(root, n))
            except OSError:
                pass  # what stays is in the fingerprint: the container is then removed
    try:
        os.chmod(workdir, wmode)
        for n in os.listxattr(workdir, follow_symlinks=False):
            os.removexattr(workdir, n, follow_symlinks=False)
    except OSError:
        pass
    libc = ctypes.CDLL(None, use_errno=True)
    for kind, rmid in (("shm", lambda i: libc.shmctl(i, 0, None)),
                       ("sem", lambda i: libc.semctl(i, 0, 0)),
                       ("msg", lambda i: libc.msgctl(i, 0, None))):
        try:
            with open("/proc/sysvipc/" + kind) as f:
                ids = [int(ln.split()[1]) for ln in f.read().splitlines()[1:] if ln.strip()]
        except OSError:
            continue
        for i in ids:
            rmid(i)
    data = sys.stdin.buffer.read()
    if data:
        kw = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            tf.extractall(workdir, **kw)
def procs():
    chain, p = set(), os.getpid()
    while p > 1:  # this command and whatever runs it (timeout, the exec's shell)
        chain.add(p)
        with open("/proc/%d/stat" % p) as f:
            p = int(f.read().rsplit(")", 1)[1].split()[1])
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) not in chain:
            try:
                with open("/proc/%s/stat" % d) as f:
                    s = f.read()
            except OSError:
                continue  # exited meanwhile
            out.append([int(d), s[s.index("(") + 1:s.rindex(")")], s.rsplit(")", 1)[1].split()[19]])
    return sorted(out)
def unescape(s):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)
def mounts():
    out = []
    with open("/proc/self/mountinfo") as f:
        for ln in f:
            a, _, b = ln.partition(" - ")
            a = a.split()
            out.append([unescape(a[4]), b.split()[0], a[5].split(",")[0]])
    return sorted(out)
def xattrs(path):
    try:
        return sorted([n, os.getxattr(path, n, follow_symlinks=False).hex()]
                      for n in os.listxattr(path, follow_symlinks=False))
    except OSError as e:
        return [] if e.errno in (95, 61) else [["error", e.strerror]]
def digest(path):
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for b in iter(lambda: f.read(1 << 16), b""):
                h.update(b)
    except OSError as e:
        return "unreadable: %s" % e.strerror
    return h.hexdigest()
def tree(root):
    rows = []
    def add(path, rel, st):
        reg, lnk = stat.S_ISREG(st.st_mode), stat.S_ISLNK(st.st_mode)
        rows.append([rel, st.st_mode, st.st_uid, st.st_gid, st.st_size if reg else 0,
                     os.readlink(path) if lnk else "", digest(path) if reg else "", xattrs(path)])
    def walk(path, rel, dev):
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as e:
            rows.append([rel, "unlistable: %s" % e.strerror]); return
        for e in entries:
            st = e.stat(follow_symlinks=False)
            add(e.path, rel + "/" + e.name, st)
            if stat.S_ISDIR(st.st_mode) and st.st_dev == dev:
                walk(e.path, rel + "/" + e.name, dev)
    st = os.lstat(root)
    add(root, ".", st)
    if stat.S_ISDIR(st.st_mode):
        walk(root, ".", st.st_dev)
    return rows
def ipc():
    out = {}
    for kind in ("shm", "sem", "msg"):
        try:
            with open("/proc/sysvipc/" + kind) as f:
                out[kind] = [ln for ln in f.read().splitlines()[1:] if ln.strip()]
        except OSError as e:
            out[kind] = "unreadable: %s" % e.strerror
    return out
if mode == "reset":
    wipe()
    sys.stdin.close()
m = mounts()
paths = {mp: tree(mp) for mp, fs, rw in m if rw == "rw" and fs not in SKIP_FS}
json.dump({"procs": procs(), "mounts": m, "paths": paths, "ipc": ipc()}, sys.stdout,
          sort_keys=True)
"""
"""Runs as the sandbox user: ``reset WORKDIR MODE TMPFS...`` wipes, unpacks stdin (the
image's workdir tar) into the workdir and prints the fingerprint; ``fingerprint`` only
prints it."""


def _argv(sb: DockerSandbox, mode: str) -> list[str]:
    return ["python3", "-I", "-c", RESET, mode, sb.spec.workdir, f"{WORKDIR_MODE:o}",
            *sb.spec.tmpfs, SHM_PATH]


async def _run(sb: DockerSandbox, mode: str, stdin: bytes | None) -> dict[str, Any]:
    raw = await sb.exec_raw(_argv(sb, mode), RESET_TIMEOUT_S, stdin, 4 << 20)
    if raw.exit_code != 0:
        err = raw.stderr.decode(errors="replace").strip()[-300:]
        raise SandboxError(f"{mode} exited {raw.exit_code}: {err}")
    if raw.stdout_bytes > len(raw.stdout):
        raise SandboxError(f"{mode}: fingerprint larger than {len(raw.stdout)} bytes")
    out: dict[str, Any] = json.loads(raw.stdout)
    return out


async def fingerprint(sb: DockerSandbox) -> dict[str, Any]:
    """The container's state as RESET sees it (taken when it is new).

    Raises:
        SandboxError: the fingerprint could not be taken.
    """
    return await _run(sb, "fingerprint", None)


def digest(fp: dict[str, Any]) -> str:
    """A short sha256 of a fingerprint (recorded in the profile)."""
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]


def difference(pristine: dict[str, Any], now: dict[str, Any]) -> str | None:
    """What differs between two fingerprints, briefly; None when they are equal."""
    if pristine == now:
        return None
    parts: list[str] = []
    for key in ("procs", "mounts", "ipc"):
        if pristine.get(key) != now.get(key):
            a, b = pristine.get(key), now.get(key)
            if isinstance(a, list) and isinstance(b, list):
                extra = [x for x in b if x not in a]
                gone = [x for x in a if x not in b]
                parts.append(f"{key}: added {extra[:3]} removed {gone[:3]}")
            else:
                parts.append(f"{key}: {str(b)[:200]}")
    pa, pn = pristine.get("paths", {}), now.get("paths", {})
    for mp in sorted(set(pa) | set(pn)):
        a, b = pa.get(mp, []), pn.get(mp, [])
        if a != b:
            extra = [x[0] for x in b if x not in a]
            gone = [x[0] for x in a if x not in b]
            parts.append(f"{mp}: differs at {extra[:3]} (pristine had {gone[:3]})")
    return "; ".join(parts)[:600] or "fingerprints differ"


async def reset(sb: DockerSandbox, pristine: dict[str, Any], workdir_tar: bytes) -> str | None:
    """Reset a released container and verify it against ``pristine``.

    Returns None when the container is back to its pristine state, else why it is not (the
    caller then removes it). Never raises for the container's state.
    """
    try:
        await sb.stop_agent()
        now = await _run(sb, "reset", workdir_tar)
    except (SandboxError, ValueError, OSError) as e:
        return f"reset failed: {e}"
    why = difference(pristine, now)
    return None if why is None else f"verification failed: {why}"
