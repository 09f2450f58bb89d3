"""Recycling: a container of a ``reuse`` task serves a later episode only after a verified
reset, and an episode never sees what an earlier one left behind (both exec paths)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ptebench.sandbox.docker import DockerProvider, DockerSandbox
from tests.sandbox.conftest import SMALL, docker_gate

pytestmark = [pytest.mark.docker, pytest.mark.asyncio(loop_scope="module")]

REUSE = SMALL.model_copy(update={"reuse": True})

STATE = r"""
cd ~
echo "== workdir"; ls -lAn --time-style=+ . | sort
echo "== contents"; find . -type f -print0 | sort -z | xargs -0r sha256sum
echo "== root"; stat -c '%a %u %g' .
echo "== xattrs"; python3 -c 'import os; print(sorted(os.listxattr(".")))'
echo "== tmp"; ls -A /tmp /dev/shm /dev/mqueue
echo "== ipc"; tail -n +2 /proc/sysvipc/shm /proc/sysvipc/sem /proc/sysvipc/msg
echo "== procs"; ps -eo user=,args= | grep -v -e 'ps -eo' -e 'grep -v' -e 'bash -c' -e sort
echo "== env"; bash -lc 'echo "LEAK=$LEAK"'; bash -ic 'echo "LEAK=$LEAK"' 2>/dev/null
"""
"""What an episode can observe of its container (minus times and this command itself)."""

LEAVE = r"""
cd ~
echo answer=42 > notes.txt; mkdir -p deep/er; echo x > deep/er/f; chmod 000 deep/er/f
chmod 500 deep; ln -s /etc/passwd link; echo 'export LEAK=from-episode-1' >> .bashrc
echo 'export LEAK=from-episode-1' >> .profile
echo left > /tmp/left; echo left > /dev/shm/left; touch /dev/mqueue/left 2>/dev/null
chmod 777 ~
python3 - <<'EOF'
import ctypes, os
os.setxattr(os.path.expanduser("~"), "user.leak", b"1")
libc = ctypes.CDLL(None)
assert libc.shmget(0x1234, 4096, 0o1666) >= 0  # IPC_CREAT | 0666, never removed
assert libc.semget(0x1235, 1, 0o1666) >= 0
assert libc.msgget(0x1236, 0o1666) >= 0
EOF
setsid -f env -i sleep 1001; nohup sleep 1002 >/dev/null 2>&1 &
(trap '' TERM HUP; exec -a hidden sleep 1003) & disown -a
echo planted
"""
"""Episode 1's leftovers: files (unreadable, in a read-only dir, a link), shell start-up
files exporting a variable, /tmp, /dev/shm, an mqueue entry, the workdir's mode and an
xattr, System V IPC objects, and processes that left the exec's group and environment."""


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["docker-exec", "execd"])
async def rprovider(request: pytest.FixtureRequest) -> AsyncIterator[DockerProvider]:
    docker_gate()
    p = DockerProvider(warm=0, exec_server=request.param == "execd")
    yield p
    await p.aclose()


def container_exists(p: DockerProvider, cid: str) -> bool:
    import docker

    try:
        p.client.containers.get(cid)
    except docker.errors.NotFound:
        return False
    return True


async def test_a_recycled_container_shows_nothing_of_the_last_episode(
        rprovider: DockerProvider) -> None:
    async with rprovider.acquire(REUSE, {"run": "pytest-recycle", "episode": "e1"}) as s1:
        assert isinstance(s1, DockerSandbox)
        first = s1.id
        pristine = (await s1.exec(STATE)).stdout
        r = await s1.exec(LEAVE, timeout=20)
        assert r.stdout.strip().endswith("planted"), r
        dirty = (await s1.exec(STATE)).stdout
        for trace in ("notes.txt", "sleep 1001", "hidden", "LEAK=from-episode-1", "left",
                      "user.leak", "4660"):  # 4660 = 0x1234, the shm key
            assert trace in dirty, (trace, dirty)
        assert s1.profile()["recycle"]["use"] == 1
    failures = list(rprovider.recycle_failures)
    async with rprovider.acquire(REUSE, {"run": "pytest-recycle", "episode": "e2"}) as s2:
        assert isinstance(s2, DockerSandbox)
        assert s2.id == first, f"not recycled: {rprovider.recycle_failures}"
        prof = s2.profile()
        assert prof["recycle"]["use"] == 2, prof["recycle"]
        assert prof["recycle"]["before_use"].startswith("reset, verified")
        assert prof["labels"]["ptebench.episode"] == "e2" and "e2" in prof["container"]
        seen = (await s2.exec(STATE)).stdout
        assert seen == pristine
        assert (await s2.exec("cat ~/notes.txt /tmp/left")).exit_code != 0
        assert (await s2.exec("echo ok > ~/w && cat ~/w")).stdout == "ok\n"
    assert rprovider.recycle_failures == failures


@pytest.mark.parametrize("leftover", [
    "touch /tmp/root-left",  # root's file in sticky /tmp: the agent's reset cannot delete it
    "setsid -f sleep 1005",  # root's process: the agent's kill cannot reach it
], ids=["root-file", "root-process"])
async def test_a_failed_verification_removes_the_container(
        rprovider: DockerProvider, leftover: str) -> None:
    async with rprovider.acquire(REUSE, {"run": "pytest-recycle", "episode": "bad"}) as s1:
        assert isinstance(s1, DockerSandbox)
        first = s1.id
        r = await s1.exec(leftover, user="root", timeout=10)
        assert r.exit_code == 0, r
    assert not container_exists(rprovider, first), "a container that failed its reset is removed"
    assert "verification failed" in rprovider.recycle_failures[-1]
    async with rprovider.acquire(REUSE, {"run": "pytest-recycle", "episode": "next"}) as s2:
        assert isinstance(s2, DockerSandbox)
        assert s2.id != first and s2.profile()["recycle"]["use"] == 1
        seen = (await s2.exec("ls -A /tmp; ps -eo args")).stdout
        assert "root-left" not in seen and "sleep 1005" not in seen, seen


async def test_a_closed_handle_cannot_reach_the_next_episode(rprovider: DockerProvider) -> None:
    """Code that kept the last episode's sandbox object gets an error, not the new episode."""
    async with rprovider.acquire(REUSE, {"run": "pytest-recycle", "episode": "h1"}) as s1:
        old = s1
    async with rprovider.acquire(REUSE, {"run": "pytest-recycle", "episode": "h2"}) as s2:
        assert isinstance(s2, DockerSandbox) and isinstance(old, DockerSandbox)
        assert s2.id == old.id
        with pytest.raises(Exception, match="closed"):
            await old.exec("touch ~/from-the-past")
        assert (await s2.exec("ls -A ~")).stdout.count("from-the-past") == 0


async def test_tasks_without_reuse_never_share_a_container(rprovider: DockerProvider) -> None:
    ids = []
    for ep in ("n1", "n2"):
        async with rprovider.acquire(SMALL, {"run": "pytest-recycle", "episode": ep}) as s:
            assert isinstance(s, DockerSandbox)
            ids.append(s.id)
            assert "recycle" not in s.profile()
    assert ids[0] != ids[1] and not container_exists(rprovider, ids[0])


async def test_recycle_off_gives_every_episode_a_new_container() -> None:
    docker_gate()
    p = DockerProvider(warm=0, recycle=False)
    ids = []
    try:
        for ep in ("o1", "o2"):
            async with p.acquire(REUSE, {"run": "pytest-recycle", "episode": ep}) as s:
                assert isinstance(s, DockerSandbox)
                ids.append(s.id)
    finally:
        await p.aclose()
    assert ids[0] != ids[1] and p.recycled == 0

