"""The local sandbox's spawner process: actions start there, never in the runner, and its
death or the runner's never leaves a hang or a stray process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ptebench.errors import SandboxError
from ptebench.sandbox.base import Resources, SandboxSpec
from ptebench.sandbox.local import LocalProvider, LocalSandbox
from ptebench.sandbox.spawner import INHERIT_MIN_AS

REPO = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead for our purpose
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def _pgrep(pattern: str) -> list[int]:
    r = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return [int(x) for x in r.stdout.split()]


async def _wait_gone(pattern: str, seconds: float = 10.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := _pgrep(pattern)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return left


async def test_actions_are_children_of_the_spawner_not_of_the_runner() -> None:
    provider = LocalProvider()
    async with provider.acquire(SandboxSpec(), {}) as box:
        r = await box.exec("echo $PPID")
        spawner = provider.spawner(SandboxSpec())
        assert spawner.pid is not None and spawner.pid != os.getpid()
        assert int(r.stdout) == spawner.pid
        with open(f"/proc/{spawner.pid}/status") as f:
            rss_kb = int(next(ln for ln in f if ln.startswith("VmRSS:")).split()[1])
        assert rss_kb < 64 * 1024, "the spawner is meant to stay small (stdlib only)"
    pid = spawner.pid
    await provider.aclose()
    assert not _alive(pid)


@pytest.mark.parametrize("memory_mb", [256, 64])
async def test_limits_hold_whether_inherited_or_set_per_action(memory_mb: int) -> None:
    """256 MB: the spawner takes the limits on itself (address space 1 GiB) and actions
    inherit them; 64 MB: they are set in each action. Either way soft = hard, and the
    action cannot raise them."""
    spec = SandboxSpec(resources=Resources(memory_mb=memory_mb, disk_mb=32))
    inherited = memory_mb * 4 * 1024 * 1024 >= INHERIT_MIN_AS
    provider = LocalProvider()
    try:
        async with provider.acquire(spec, {}) as box:
            r = await box.exec("ulimit -Sv; ulimit -Hv; ulimit -Hf; ulimit -Hn; "
                               "ulimit -v unlimited 2>/dev/null && echo raised || echo refused")
            kb = memory_mb * 4 * 1024
            assert r.stdout.split() == [str(kb), str(kb), str(32 * 1024), "1024", "refused"], r
            assert (provider.spawner(spec).inherited is not None) == inherited
            big = await box.exec("head -c 40000000 /dev/zero > big.bin")  # 40 MB > 32 MB
            assert big.exit_code != 0 and (Path(box.root) / "big.bin").stat().st_size <= 32 << 20  # type: ignore[attr-defined]
    finally:
        await provider.aclose()


async def test_a_killed_spawner_fails_its_commands_clearly_and_is_replaced() -> None:
    box = LocalSandbox.create(SandboxSpec())
    try:
        running = asyncio.create_task(box.exec("sleep 57.25; echo never", timeout=60))
        while not _pgrep("sleep 57.25"):
            await asyncio.sleep(0.02)
        spawner = box._spawner
        old = spawner.pid
        assert old is not None
        os.kill(old, signal.SIGKILL)
        with pytest.raises(SandboxError, match=rf"spawner process \(pid {old}\) was killed by signal 9"):
            await asyncio.wait_for(running, 10)  # an error, never a hang
        assert await _wait_gone("sleep 57.25") == [], "its process group was killed"
        r = await box.exec("echo back")
        assert r.stdout == "back\n" and spawner.pid not in (None, old) and spawner.starts == 2
    finally:
        await box.close()


async def test_a_cancelled_command_is_killed() -> None:
    box = LocalSandbox.create(SandboxSpec())
    try:
        running = asyncio.create_task(box.exec("sleep 58.5 & sleep 58.25; echo never"))
        while len(_pgrep("sleep 58.[25]")) < 2:  # both started: the cancel must kill them
            await asyncio.sleep(0.02)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert await _wait_gone("sleep 58.[25]") == []
        assert (await box.exec("echo still")).stdout == "still\n"
    finally:
        await box.close()


async def test_a_program_that_cannot_start_raises_as_before() -> None:
    box = LocalSandbox.create(SandboxSpec())
    try:
        with pytest.raises(FileNotFoundError):
            await box.exec(["/no/such/program"])
        with pytest.raises(FileNotFoundError):
            await box.exec("true", cwd="no/such/dir")
    finally:
        await box.close()


def test_a_killed_runner_takes_its_spawner_and_actions_with_it(tmp_path: Path) -> None:
    """SIGKILL of the runner: the spawner sees its socket close, kills what runs, exits."""
    script = tmp_path / "runner.py"
    script.write_text(
        "import asyncio, sys\n"
        "from ptebench.sandbox.base import SandboxSpec\n"
        "from ptebench.sandbox.local import LocalSandbox\n"
        "async def main():\n"
        "    box = LocalSandbox.create(SandboxSpec())\n"
        "    t = asyncio.create_task(box.exec('sleep 59.75'))\n"
        "    await asyncio.sleep(0.5)\n"
        "    print(box._spawner.pid, flush=True)\n"
        "    await t\n"
        "asyncio.run(main())\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None
    spawner = int(proc.stdout.readline())
    deadline = time.monotonic() + 10
    while not _pgrep("sleep 59.75") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _pgrep("sleep 59.75"), "the action started"
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while (_alive(spawner) or _pgrep("sleep 59.75")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(spawner) and _pgrep("sleep 59.75") == []
