"""The runner's side of the local sandbox's spawner (``ptebench.sandbox.spawnd``).

One ``Spawner`` is one helper process, started on first use and shared by the sandboxes of
a provider (and their restored copies). ``run`` sends one action and awaits its result; the
event loop is never blocked by a fork or a pipe read. A spawner that dies fails the actions
in flight with a ``SandboxError`` naming it (their process groups are killed) and is started
again for the next action.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from ptebench.errors import SandboxError
from ptebench.sandbox.spawnd import FRAME

log = logging.getLogger("ptebench.sandbox")

SCRIPT = Path(__file__).with_name("spawnd.py")


class SpawnResult:
    """What the spawner reports for one finished action (bytes as kept, sizes in full)."""

    __slots__ = ("err_total", "exit_code", "out_total", "stderr", "stdout", "timed_out")

    def __init__(self, exit_code: int | None, timed_out: bool, stdout: bytes, stderr: bytes,
                 out_total: int, err_total: int) -> None:
        self.exit_code = exit_code
        self.timed_out = timed_out
        self.stdout = stdout
        self.stderr = stderr
        self.out_total = out_total
        self.err_total = err_total


class _Call:
    __slots__ = ("future", "pid")

    def __init__(self, future: asyncio.Future[SpawnResult]) -> None:
        self.future = future
        self.pid: int | None = None


INHERIT_MIN_AS = 1 << 30
"""Smallest address-space limit a spawner process puts itself under (its own ~25 MB and the
kept output of its running actions must fit); smaller limits are set per action."""

Rlimits = tuple[int, int, int]
"""(address space, file size, open files) in bytes, bytes and descriptors."""


class Spawner:
    """A client of one spawner process; ``retain``/``release`` count the sandboxes using it,
    and the process stops with the last release (or ``aclose``).

    ``rlimits``: limits the spawner process takes on itself, so that the actions that need
    exactly these inherit them and start by ``vfork`` (see ``spawnd``); actions with other
    limits still get theirs. None, or an address space under ``INHERIT_MIN_AS``: none.
    """

    def __init__(self, rlimits: Rlimits | None = None) -> None:
        self.inherited = rlimits if rlimits is not None and rlimits[0] >= INHERIT_MIN_AS else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._calls: dict[int, _Call] = {}
        self._ids = itertools.count(1)
        self._users = 0
        self._starting: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self.starts = 0
        """Spawner processes started so far (more than 1: one died and was replaced)."""

    @property
    def pid(self) -> int | None:
        """The running spawner process's id (None before the first action or after a stop)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def retain(self) -> None:
        self._users += 1

    async def release(self) -> None:
        self._users -= 1
        if self._users <= 0:
            await self.aclose()

    # -- the process --------------------------------------------------------------------
    async def _ensure(self) -> asyncio.StreamWriter:
        loop = asyncio.get_running_loop()
        if self._writer is not None and self._loop is loop and not self._writer.is_closing():
            return self._writer
        if self._starting is None or self._starting[0] is not loop:
            self._starting = (loop, asyncio.Lock())
        async with self._starting[1]:
            if self._writer is not None and self._loop is loop and not self._writer.is_closing():
                return self._writer
            self._stop_process()  # a dead one, or one bound to a closed loop
            ours, theirs = socket.socketpair()
            try:
                # own session: a Ctrl-C at the terminal goes to the runner, which stops it
                limits = [str(x) for x in self.inherited] if self.inherited else []
                proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", str(SCRIPT), str(theirs.fileno()), *limits],
                    pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, start_new_session=True, close_fds=True,
                )
            except OSError as e:
                ours.close()
                raise SandboxError(f"local sandbox: cannot start the spawner process "
                                   f"({sys.executable} {SCRIPT}): {e}") from e
            finally:
                theirs.close()
            reader, writer = await asyncio.open_connection(sock=ours)
            self._proc, self._loop, self._writer = proc, loop, writer
            self.starts += 1
            if self.starts > 1:
                log.warning("local sandbox: started a new spawner process (pid %d)", proc.pid)
            self._reader_task = loop.create_task(self._read_replies(reader, proc))
            return writer

    async def _read_replies(self, reader: asyncio.StreamReader,
                            proc: subprocess.Popen[bytes]) -> None:
        try:
            while True:
                hlen, plen = FRAME.unpack(await reader.readexactly(FRAME.size))
                msg: dict[str, Any] = json.loads(await reader.readexactly(hlen))
                payload = await reader.readexactly(plen) if plen else b""
                call = self._calls.get(int(msg["id"]))
                if call is None or call.future.done():
                    continue  # a cancelled call's late reply
                op = msg["op"]
                if op == "started":
                    call.pid = int(msg["pid"])
                elif op == "done":
                    k = int(msg["out_len"])
                    call.future.set_result(SpawnResult(
                        msg["exit"], bool(msg["timed_out"]), payload[:k], payload[k:],
                        int(msg["out_total"]), int(msg["err_total"])))
                elif op == "error":
                    call.future.set_exception(_start_error(msg))
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError, KeyError):
            pass
        await self._died(proc)

    async def _died(self, proc: subprocess.Popen[bytes]) -> None:
        """The spawner's socket closed: fail and kill what was in flight."""
        for _ in range(50):  # its exit status, once the kernel has it (the socket closes first)
            if proc.poll() is not None:
                break
            await asyncio.sleep(0.01)
        status = proc.poll()
        how = ("is still running but closed its socket" if status is None else
               f"was killed by signal {-status}" if status < 0 else f"exited with status {status}")
        if self._proc is proc:
            self._writer = None
        calls = [c for c in self._calls.values() if not c.future.done()]
        for c in calls:
            if c.pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(c.pid, signal.SIGKILL)
            c.future.set_exception(SandboxError(
                f"local sandbox: the spawner process (pid {proc.pid}) {how} while this command "
                "ran; its process group was killed and the command's result is lost"))
        if calls and self._users > 0:
            log.warning("local sandbox: the spawner process (pid %d) %s; %d command(s) failed",
                        proc.pid, how, len(calls))

    def _stop_process(self) -> None:
        if self._reader_task is not None and not self._reader_task.done():
            with contextlib.suppress(RuntimeError):  # its loop is closed
                self._reader_task.cancel()
        self._reader_task = None
        if self._writer is not None:
            with contextlib.suppress(RuntimeError, OSError):
                self._writer.close()  # EOF: the spawner kills what runs and exits
        self._writer = None
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1.0)
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    async def aclose(self) -> None:
        """Stop the spawner process (its running actions are killed). Idempotent."""
        task = self._reader_task
        if self._writer is not None:
            with contextlib.suppress(RuntimeError, OSError):
                self._writer.close()
        proc = self._proc
        if proc is not None and task is not None and not task.done():
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), 2.0)
        self._stop_process()

    # -- actions ------------------------------------------------------------------------
    async def run(self, argv: list[str], cwd: str, env: dict[str, str], timeout: float | None,
                  data: bytes | None, limit: int, rlimits: Rlimits) -> SpawnResult:
        """Run one action in the spawner.

        Raises:
            OSError: the command could not start (e.g. FileNotFoundError for a missing program).
            SandboxError: the spawner died while the command ran (or could not start).
        """
        writer = await self._ensure()
        loop = asyncio.get_running_loop()
        call_id = next(self._ids)
        call = _Call(loop.create_future())
        self._calls[call_id] = call
        head = json.dumps({"op": "exec", "id": call_id, "argv": argv, "cwd": cwd, "env": env,
                           "timeout": timeout, "limit": limit, "stdin": data is not None,
                           "rl": None if rlimits == self.inherited else list(rlimits)}).encode()
        payload = data or b""
        try:
            writer.write(FRAME.pack(len(head), len(payload)) + head + payload)
            if len(payload) > 65536:
                await writer.drain()
            return await call.future
        except asyncio.CancelledError:
            # cancelling this task cancelled the future too: it did not finish on its own
            finished = call.future.done() and not call.future.cancelled()
            if not finished and not writer.is_closing():
                kill = json.dumps({"op": "kill", "id": call_id}).encode()
                with contextlib.suppress(RuntimeError, OSError):
                    writer.write(FRAME.pack(len(kill), 0) + kill)
            raise
        except (ConnectionError, RuntimeError) as e:
            raise SandboxError(f"local sandbox: lost the spawner process: {e}") from e
        finally:
            self._calls.pop(call_id, None)


def _start_error(msg: dict[str, Any]) -> BaseException:
    """The exception a command that could not start raises (as the in-process spawn did)."""
    errno = msg.get("errno")
    if isinstance(errno, int):
        return OSError(errno, msg.get("strerror") or os.strerror(errno), msg.get("filename"))
    return SandboxError(f"local sandbox: cannot start the command: {msg.get('message')}")
