"""Low-level helpers over the (synchronous) Docker SDK: exec streaming, archives, faults.

The SDK is imported lazily so ``import ptebench.sandbox`` works without the ``docker`` extra.
Everything here is blocking; ``docker.py`` runs it on a dedicated thread pool.
"""

from __future__ import annotations

import io
import socket
import struct
import tarfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from ptebench.errors import SandboxError, require

T = TypeVar("T")

EXEC_MARKER = "PTEBENCH_EXEC"
"""Env var set on every exec; a timeout kills every process still carrying its value."""
KILL_GRACE_S = 3.0
"""Extra seconds the host waits past a timeout before it kills the tree itself."""

# One pool for all blocking engine calls: the default executor has cpu+4 threads, too few
# when many episodes each hold a thread on a long-running exec.
POOL = ThreadPoolExecutor(max_workers=64, thread_name_prefix="ptebench-docker")

_SWEEP = (
    'for p in /proc/[0-9]*; do '
    'if grep -qzx "$0=$1" "$p/environ" 2>/dev/null; then kill -9 "${p#/proc/}" 2>/dev/null; fi; '
    "done; true"
)


def docker_module() -> Any:
    return require("docker", "docker")


def client(max_pool_size: int = 64) -> Any:
    """A Docker client from the environment (DOCKER_HOST etc.).

    Raises:
        SandboxError: the engine does not answer.
    """
    docker = docker_module()
    try:
        c = docker.from_env(max_pool_size=max_pool_size)
        c.ping()
    except Exception as e:
        raise SandboxError(f"cannot reach the Docker engine: {e}") from e
    return c


def is_transient(e: BaseException) -> bool:
    """Engine errors worth retrying: lost connections, timeouts, gateway-ish 5xx."""
    import requests

    if isinstance(e, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return True
    status = getattr(getattr(e, "response", None), "status_code", None)
    if status in (502, 503, 504):
        return True
    msg = str(e).lower()
    return status == 500 and any(
        s in msg for s in ("connection reset", "context deadline exceeded", "broken pipe", "eof")
    )


def retrying(fn: Callable[[], T], attempts: int = 3) -> T:
    """Call ``fn``, retrying transient engine errors with exponential backoff."""
    for attempt in Retrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.1, max=2.0),
        reraise=True,
    ):
        with attempt:
            return fn()
    raise AssertionError("unreachable")


def container_fault(container: Any, e: BaseException | None = None) -> SandboxError:
    """A SandboxError naming why the container cannot serve (dead, OOM-killed, engine error)."""
    try:
        container.reload()
        st = container.attrs.get("State", {})
    except Exception as e2:
        return SandboxError(f"container {container.name} is gone ({e2}); first error: {e}")
    if not st.get("Running", False):
        why = "OOM-killed" if st.get("OOMKilled") else f"exited with code {st.get('ExitCode')}"
        extra = f": {st['Error']}" if st.get("Error") else ""
        return SandboxError(f"container {container.name} is not running ({why}{extra})")
    return SandboxError(f"Docker engine error on {container.name}: {e}")


@dataclass
class RawExec:
    """Blocking exec outcome, bytes kept raw."""

    exit_code: int | None
    stdout: bytes = b""
    stderr: bytes = b""
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    host_killed: bool = False
    seconds: float = 0.0


class _Collector:
    """Keeps up to ``limit`` bytes per stream and counts the rest (an output flood costs no memory)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.bufs = [bytearray(), bytearray(), bytearray()]
        self.sizes = [0, 0, 0]

    def add(self, stream: int, data: bytes) -> None:
        if stream not in (1, 2):
            return
        self.sizes[stream] += len(data)
        buf = self.bufs[stream]
        if self.limit is None:
            buf += data
        elif len(buf) < self.limit:
            buf += data[: self.limit - len(buf)]


def drain_buffered(sockio: Any) -> bytes:
    """Bytes http.client already buffered past the 101 headers (else they would be lost)."""
    resp = getattr(sockio, "_response", None)
    fp = getattr(getattr(getattr(resp, "raw", None), "_fp", None), "fp", None)
    if fp is None:
        return b""
    sock = sockio._sock
    sock.setblocking(False)
    try:
        pre = fp.peek(1 << 16)
    except (BlockingIOError, OSError):
        pre = b""
    finally:
        sock.setblocking(True)
    return fp.read(len(pre)) if pre else b""


def exec_stream(
    api: Any,
    container_id: str,
    argv: list[str],
    *,
    stdin: bytes | None,
    user: str,
    cwd: str,
    env: dict[str, str],
    limit: int | None,
    deadline: float | None,
    on_deadline: Callable[[], None],
) -> RawExec:
    """Run ``argv`` via exec, demultiplex stdout/stderr, stop reading at ``deadline``.

    At the deadline ``on_deadline`` is called (it kills the process tree); reading then
    continues until the stream closes so the exit code is the real one.
    """
    t0 = time.monotonic()
    ex = retrying(
        lambda: api.exec_create(
            container_id, argv, stdin=stdin is not None, user=user, workdir=cwd, environment=env
        )
    )
    sockio = api.exec_start(ex["Id"], socket=True)
    sock: socket.socket = sockio._sock
    col = _Collector(limit)
    pending = bytearray(drain_buffered(sockio))
    killed = False
    writer: threading.Thread | None = None
    if stdin is not None:
        writer = threading.Thread(target=_feed, args=(sock, stdin), daemon=True)
        writer.start()
    try:
        while True:
            while len(pending) >= 8:
                stream, size = struct.unpack(">BxxxL", pending[:8])
                if len(pending) < 8 + size:
                    break
                col.add(stream, bytes(pending[8 : 8 + size]))
                del pending[: 8 + size]
            if deadline is not None and not killed:
                left = deadline - time.monotonic()
                if left <= 0:
                    killed = True
                    on_deadline()
                    sock.settimeout(KILL_GRACE_S + 10)
                    continue
                sock.settimeout(left)
            try:
                chunk = sock.recv(1 << 16)
            except TimeoutError:
                if killed:
                    break  # the tree would not die: give up on this exec's stream
                continue
            if not chunk:
                break
            pending += chunk
    finally:
        sockio.close()
        sock.close()
    code = retrying(lambda: api.exec_inspect(ex["Id"])).get("ExitCode")
    return RawExec(
        exit_code=code,
        stdout=bytes(col.bufs[1]),
        stderr=bytes(col.bufs[2]),
        stdout_bytes=col.sizes[1],
        stderr_bytes=col.sizes[2],
        host_killed=killed,
        seconds=time.monotonic() - t0,
    )


def _feed(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the command exited without reading all of its input


def sweep_argv(marker: str) -> list[str]:
    """Kill -9 every process whose environment carries this exec's marker."""
    return ["bash", "-c", _SWEEP, EXEC_MARKER, marker]


def tar_one(name: str, data: bytes, mode: int, uid: int, gid: int, dirs: list[str]) -> bytes:
    """A tar holding ``dirs`` (parents, in order) and file ``name``, owned by uid:gid."""
    buf = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in dirs:
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = tarfile.DIRTYPE, 0o755, uid, gid, now
            tf.addfile(ti)
        ti = tarfile.TarInfo(name)
        ti.size, ti.mode, ti.uid, ti.gid, ti.mtime = len(data), mode, uid, gid, now
        tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


class LinkInArchive(Exception):
    """get_archive of a symlink returns the link, not its target: resolve it another way."""


def set_pids_limit(api: Any, container_id: str, limit: int) -> None:
    """Change a running container's pids limit (the SDK's ``update`` has no such argument)."""
    res = api._post_json(api._url("/containers/{0}/update", container_id),
                         data={"PidsLimit": limit})
    api._raise_for_status(res)


def untar_one(chunks: Any, path: str) -> bytes:
    """The single regular file of a get_archive stream.

    Raises:
        LinkInArchive: ``path`` is a symbolic or hard link.
    """
    raw = b"".join(chunks)
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r") as tf:
        member = tf.next()
        if member is None:
            raise FileNotFoundError(path)
        if member.isdir():
            raise IsADirectoryError(path)
        if member.issym() or member.islnk():
            raise LinkInArchive(path)
        f = tf.extractfile(member)
        if f is None:
            raise FileNotFoundError(f"{path} is not a regular file")
        return f.read()


def reroot_tar(raw: bytes) -> bytes:
    """Strip the top directory from a get_archive tar so it can be put into that directory."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r") as src, tarfile.open(
        fileobj=out, mode="w", format=tarfile.PAX_FORMAT
    ) as dst:
        _copy_without_top_dir(src, dst)
    return out.getvalue()


class TooLarge(Exception):
    """An archive grew past the room it was given."""

    def __init__(self, size: int) -> None:
        super().__init__(f"{size} bytes")
        self.size = size


class _ChunkReader(io.RawIOBase):
    """A file over an iterator of byte chunks that refuses to read past ``limit`` bytes."""

    def __init__(self, chunks: Any, limit: int) -> None:
        self._it = iter(chunks)
        self._buf = b""
        self.n = 0
        self.limit = limit

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            try:
                self._buf = next(self._it)
            except StopIteration:
                return 0
            self.n += len(self._buf)
            if self.n > self.limit:
                raise TooLarge(self.n)
        k = min(len(b), len(self._buf))
        b[:k] = self._buf[:k]
        self._buf = self._buf[k:]
        return k


def reroot_tar_to(chunks: Any, dest: Any, limit: int) -> int:
    """``reroot_tar`` streamed from a get_archive stream into the file ``dest``, never
    holding the archive in memory. Returns the bytes read.

    Raises:
        TooLarge: the archive is larger than ``limit`` bytes.
    """
    src_f = _ChunkReader(chunks, limit)
    with tarfile.open(fileobj=io.BufferedReader(src_f, 1 << 16), mode="r|") as src, \
            tarfile.open(dest, mode="w", format=tarfile.PAX_FORMAT) as dst:
        _copy_without_top_dir(src, dst)
    return src_f.n


def _copy_without_top_dir(src: tarfile.TarFile, dst: tarfile.TarFile) -> None:
    """Copy every member of ``src`` into ``dst`` with its first path component removed
    (the archive's top folder itself is dropped)."""
    for m in src:
        _, _, rest = m.name.partition("/")
        if not rest:
            continue
        m.name = rest
        dst.addfile(m, src.extractfile(m) if m.isfile() else None)
