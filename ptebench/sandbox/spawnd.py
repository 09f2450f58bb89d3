"""The local sandbox's spawner: a small, long-lived helper process that starts the actions.

Why: a fork of the runner costs time in proportion to its memory (hundreds of MB once pandas,
pydantic models and transcripts are loaded: ~5 ms per action), and ``preexec_fn`` rules out
``vfork``. This program imports only the standard library and forks itself instead; the
runner sends it one request per action over a socket and never forks or reads an action's
pipes itself.

Run by ``ptebench.sandbox.spawner`` as ``python -I -S spawnd.py FD [AS FSIZE NOFILE]`` (FD:
its end of a socketpair). It must stay importable without ptebench (``-S``: no site-packages).

With the three limits given, the spawner puts itself under them (soft and hard) and its
actions inherit them: no Python code runs between fork and exec, so ``subprocess`` uses
``vfork`` (a fork with ``preexec_fn`` cost ~1.3 ms of system time per action even in this
small process). Without them, each request names its limits and a ``preexec_fn`` sets them.

Frames, both ways: ``struct ">II"`` (header length, payload length), a JSON header, a payload.

* exec ``{"op": "exec", "id", "argv", "cwd", "env", "timeout", "limit", "stdin", "rl"}`` +
  stdin bytes (``rl``: [address space, file size, open files], or null to inherit the
  spawner's own) → ``{"op": "started", "id", "pid"}`` at once, then ``{"op": "done", "id", "exit",
  "timed_out", "out_total", "err_total", "out_len"}`` + the kept stdout and stderr bytes, or
  ``{"op": "error", "id", "errno", "strerror", "filename", "message"}`` when it cannot start.
* kill ``{"op": "kill", "id"}``: SIGKILL to the action's process group (its ``done`` follows).

Every action runs in its own session (its process group), under the requested rlimits,
killed as a group at its timeout and again when it exits (background jobs), with its output
cut at ``limit`` bytes per stream (the full size counted). When the runner's end of the
socket closes (the runner exited or died), every running action's group is killed and the
spawner exits.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
from typing import Any

FRAME = struct.Struct(">II")
READ_CHUNK = 65536
MAX_JOBS = 192
"""Actions running at once; later requests wait their turn. Each holds 4 descriptors here,
so this stays under an inherited 1024-file limit, and the kept output of them all (2 ×
``limit`` each) under the address-space limits the runner lets a spawner inherit."""
PIPE_GRACE_S = 5.0
"""How long the pipes may stay open after the action exited and its group was killed (a
process that left the group still holds them): then what was read is returned."""


def frame(header: dict[str, Any], payload: bytes = b"") -> bytes:
    head = json.dumps(header).encode()
    return FRAME.pack(len(head), len(payload)) + head + payload


def _limits(rl: list[int]) -> None:
    """In the child, before exec: the sandbox's resource caps (hard too: it cannot raise them)."""
    as_, fsize, nofile = rl
    resource.setrlimit(resource.RLIMIT_AS, (as_, as_))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))


def _killpg(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class _Stream:
    """One output pipe: keeps the first ``limit`` bytes, counts them all."""

    def __init__(self, fd: int, limit: int) -> None:
        self.fd = fd
        self.limit = limit
        self.kept = bytearray()
        self.total = 0
        self.open = True


class Job:
    """One action: its process, pipes, timeout and reply."""

    def __init__(self, server: Server, req: dict[str, Any], data: bytes) -> None:
        self.server = server
        self.id = int(req["id"])
        self.req = req
        self.data = memoryview(data)
        self.loop = asyncio.get_running_loop()
        self.proc: subprocess.Popen[bytes] | None = None
        self.streams: list[_Stream] = []
        self.stdin_fd: int | None = None
        self.pidfd: int | None = None
        self.exited = False
        self.exit_code: int | None = None
        self.timed_out = False
        self.sent = False
        self._timers: list[asyncio.TimerHandle] = []

    def start(self) -> None:
        req = self.req
        rl = [int(x) for x in req["rl"]] if req.get("rl") is not None else None
        try:
            proc = subprocess.Popen(
                req["argv"], stdin=subprocess.PIPE if req["stdin"] else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=req["cwd"], env=req["env"],
                start_new_session=True, close_fds=True,
                preexec_fn=None if rl is None else (lambda: _limits(rl)),
            )
        except OSError as e:
            self._error(e.errno, e.strerror, e.filename, f"{type(e).__name__}: {e}")
            return
        except (subprocess.SubprocessError, ValueError, TypeError) as e:
            self._error(None, None, None, f"{type(e).__name__}: {e}")
            return
        self.proc = proc
        self.server.jobs[self.id] = self
        self.server.send(frame({"op": "started", "id": self.id, "pid": proc.pid}))
        limit = int(req["limit"])
        for pipe in (proc.stdout, proc.stderr):
            assert pipe is not None  # stdout=PIPE, stderr=PIPE
            fd = pipe.fileno()
            os.set_blocking(fd, False)
            stream = _Stream(fd, limit)
            self.streams.append(stream)
            self.loop.add_reader(fd, self._read, stream)
        if proc.stdin is not None:
            self.stdin_fd = proc.stdin.fileno()
            os.set_blocking(self.stdin_fd, False)
            self.loop.add_writer(self.stdin_fd, self._write)
        timeout = req["timeout"]
        if timeout is not None:
            self._timers.append(self.loop.call_later(max(0.0, float(timeout)), self._timeout))
        if self.server.use_pidfd:
            # readable once the process exits: no SIGCHLD storm through the loop's wakeup fd
            self.pidfd = os.pidfd_open(proc.pid)
            self.loop.add_reader(self.pidfd, self.poll)
        self.poll()  # it may have exited before the SIGCHLD handler knew it

    def cancelled(self) -> None:
        self._error(None, None, None, "cancelled before it started")

    def _error(self, errno: int | None, strerror: str | None, filename: Any, message: str) -> None:
        self.sent = True
        self.server.send(frame({"op": "error", "id": self.id, "errno": errno,
                                "strerror": strerror, "filename": filename, "message": message}))

    def _read(self, s: _Stream) -> None:
        try:
            chunk = os.read(s.fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._close_stream(s)
            self.maybe_finish()
            return
        s.total += len(chunk)
        room = s.limit - len(s.kept)
        if room > 0:
            s.kept += chunk[:room]

    def _close_stream(self, s: _Stream) -> None:
        if s.open:
            s.open = False
            self.loop.remove_reader(s.fd)

    def _write(self) -> None:
        assert self.stdin_fd is not None  # the writer is registered only with a stdin pipe
        try:
            n = os.write(self.stdin_fd, self.data[:READ_CHUNK])
        except BlockingIOError:
            return
        except OSError:  # EPIPE, ECONNRESET: the command does not read its input
            n = len(self.data)
        self.data = self.data[n:]
        if not self.data:
            self._close_stdin()

    def _close_stdin(self) -> None:
        if self.stdin_fd is not None and self.proc is not None and self.proc.stdin is not None:
            self.loop.remove_writer(self.stdin_fd)
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            self.stdin_fd = None

    def _timeout(self) -> None:
        if not self.exited and self.proc is not None:
            self.timed_out = True
            _killpg(self.proc.pid)

    def kill(self) -> None:
        if self.proc is not None:
            _killpg(self.proc.pid)

    def poll(self) -> None:
        """Reap the action if it exited: kill its group first, while the zombie leader still
        holds the group id (after reaping, the id could name another process's group)."""
        if self.exited or self.proc is None:
            return
        pid = self.proc.pid
        try:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            info = None
        if info is None:
            return
        if self.pidfd is not None:
            self.loop.remove_reader(self.pidfd)
            os.close(self.pidfd)
            self.pidfd = None
        _killpg(pid)
        try:
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            code = -signal.SIGKILL
        self.proc.returncode = code  # reaped here: Popen must not wait for it again
        self.exited, self.exit_code = True, code
        self._close_stdin()
        if any(s.open for s in self.streams):
            self._timers.append(self.loop.call_later(PIPE_GRACE_S, self._give_up))
        self.maybe_finish()

    def _give_up(self) -> None:
        for s in self.streams:
            self._close_stream(s)
        self.maybe_finish()

    def maybe_finish(self) -> None:
        if self.sent or not self.exited or any(s.open for s in self.streams):
            return
        self.sent = True
        for t in self._timers:
            t.cancel()
        assert self.proc is not None  # exited implies started
        for pipe in (self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                pipe.close()  # type: ignore[union-attr]
        self.server.jobs.pop(self.id, None)
        self.server.start_waiting()
        out, err = self.streams
        self.server.send(frame({
            "op": "done", "id": self.id, "exit": None if self.timed_out else self.exit_code,
            "timed_out": self.timed_out, "out_total": out.total, "err_total": err.total,
            "out_len": len(out.kept)}, bytes(out.kept) + bytes(err.kept)))


class Server:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.jobs: dict[int, Job] = {}
        self.waiting: collections.deque[Job] = collections.deque()
        self.writer: asyncio.StreamWriter | None = None
        self.use_pidfd = hasattr(os, "pidfd_open")

    def send(self, data: bytes) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write(data)

    def submit(self, job: Job) -> None:
        if len(self.jobs) < MAX_JOBS:
            job.start()
        else:
            self.waiting.append(job)

    def start_waiting(self) -> None:
        while self.waiting and len(self.jobs) < MAX_JOBS:
            self.waiting.popleft().start()

    def reap(self) -> None:
        for job in list(self.jobs.values()):
            job.poll()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        if self.use_pidfd:
            try:
                os.close(os.pidfd_open(os.getpid()))
            except OSError:  # a kernel before 5.3
                self.use_pidfd = False
        if not self.use_pidfd:
            loop.add_signal_handler(signal.SIGCHLD, self.reap)
        reader, self.writer = await asyncio.open_connection(sock=self.sock)
        try:
            while True:
                try:
                    head = await reader.readexactly(FRAME.size)
                    hlen, plen = FRAME.unpack(head)
                    req = json.loads(await reader.readexactly(hlen))
                    data = await reader.readexactly(plen) if plen else b""
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # the runner closed its end or died
                op = req.get("op")
                if op == "exec":
                    self.submit(Job(self, req, data))
                elif op == "kill":
                    job = self.jobs.get(int(req["id"]))
                    if job is not None:
                        job.kill()
                    else:  # not started yet: never start it
                        for w in list(self.waiting):
                            if w.id == int(req["id"]):
                                self.waiting.remove(w)
                                w.cancelled()
                await self.writer.drain()
        finally:
            for job in list(self.jobs.values()):
                job.kill()


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    if len(sys.argv) == 5:
        _limits([int(x) for x in sys.argv[2:5]])
    asyncio.run(Server(sock).serve())


if __name__ == "__main__":
    main()
