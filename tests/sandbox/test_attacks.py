"""The attack suite: each test tries to break one protection of the hardened profile.

Every test asserts the protection held. Where the engine cannot enforce a setting (docker
info says so), the test skips with that reason, and fails under PTEBENCH_REQUIRE_DOCKER=1 —
it never passes without trying. Cgroup limits are read from v1 or v2 files, whichever the
container has. Network attacks target only loopback, the host's bridge address, and an
address that the container cannot route to: nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from ptebench.errors import SandboxError
from ptebench.sandbox.base import SandboxSpec
from ptebench.sandbox.docker import DockerProvider, DockerSandbox
from tests.sandbox.conftest import SMALL, docker_gate

pytestmark = [pytest.mark.docker, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["docker-exec", "execd"])
async def dprovider(request: pytest.FixtureRequest) -> AsyncIterator[DockerProvider]:
    """Both exec paths face every attack: docker exec and the opt-in exec server."""
    docker_gate()
    p = DockerProvider(warm=0, exec_server=request.param == "execd")
    yield p
    await p.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sb(dprovider: DockerProvider) -> AsyncIterator[DockerSandbox]:
    async with dprovider.acquire(SMALL, {"run": "pytest-attacks", "episode": "shared"}) as s:
        yield s


def engine_info(p: DockerProvider) -> dict[str, Any]:
    return p.client.info()


def require_engine(p: DockerProvider, key: str, what: str) -> None:
    """Skip when the engine cannot enforce a setting; under PTEBENCH_REQUIRE_DOCKER=1 (CI)
    fail instead, so a protection is never reported as tested when it was not."""
    info = engine_info(p)
    if not info.get(key, False):
        problem = f"the engine cannot enforce {what}: docker info {key}={info.get(key)!r}"
        if os.environ.get("PTEBENCH_REQUIRE_DOCKER") == "1":
            pytest.fail(f"PTEBENCH_REQUIRE_DOCKER=1 but {problem}")
        pytest.skip(problem)


CGROUP_LIMITS = """
cd /sys/fs/cgroup
if [ -f cgroup.controllers ]; then
  echo v2; cat memory.max memory.swap.max cpu.max
else
  echo v1; cat memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes \
    cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us
fi
"""


async def cgroup_limits(sb: DockerSandbox) -> dict[str, int]:
    """memory, memory+swap (bytes), CPU quota and period (µs) as the container's own cgroup
    files say — cgroup v1 or v2 (where swap is counted apart from memory)."""
    out = (await sb.exec(CGROUP_LIMITS)).stdout.split()
    version, vals = out[0], out[1:]
    if version == "v2":
        mem, swap, quota, period = (int(v) for v in vals)
        return {"memory": mem, "memory_swap": mem + swap, "quota": quota, "period": period}
    mem, memsw, quota, period = (int(v) for v in vals)
    return {"memory": mem, "memory_swap": memsw, "quota": quota, "period": period}


@pytest.fixture
def host_listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP server on the host's 0.0.0.0 recording who connects."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", 0))
    srv.listen()
    srv.settimeout(0.2)
    seen: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                conn, addr = srv.accept()
                seen.append(addr[0])
                conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1], seen
    stop.set()
    t.join()
    srv.close()


CONNECT = """
import socket, sys
for host in sys.argv[2:]:
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((host, int(sys.argv[1]))); print(host, "CONNECTED")
    except OSError as e:
        print(host, "blocked", e.errno)
"""


async def test_no_egress_to_host_loopback_bridge_or_public(
    sb: DockerSandbox, host_listener: tuple[int, list[str]]
) -> None:
    port, seen = host_listener
    # 172.17.0.1: the host on the default bridge; 192.0.2.1: TEST-NET, unroutable here anyway.
    r = await sb.exec(["python3", "-c", CONNECT, str(port), "127.0.0.1", "172.17.0.1",
                       "192.0.2.1"], timeout=20)
    assert "CONNECTED" not in r.stdout, r.stdout
    assert r.stdout.count("blocked") == 3
    assert seen == []
    ifaces = (await sb.exec("tail -n +3 /proc/net/dev | cut -d: -f1")).stdout.split()
    assert ifaces == ["lo"]


async def test_no_dns(sb: DockerSandbox) -> None:
    r = await sb.exec(["python3", "-c", "import socket; socket.getaddrinfo('example.com', 80)"],
                      timeout=20)
    assert r.exit_code != 0 and "gaierror" in r.stderr


async def test_fork_bomb_hits_the_pids_limit(dprovider: DockerProvider, sb: DockerSandbox) -> None:
    require_engine(dprovider, "PidsLimit", "a pids limit")
    bomb = """
import os, time, signal
kids = []
try:
    while True:
        pid = os.fork()
        if pid == 0:
            time.sleep(30); os._exit(0)
        kids.append(pid)
except OSError as e:
    print(len(kids), e.errno)
for k in kids:
    os.kill(k, signal.SIGKILL)
"""
    r = await sb.exec(["python3", "-c", bomb], timeout=60)
    forks, errno = map(int, r.stdout.split())
    assert errno == 11 and forks < SMALL.resources.pids  # EAGAIN at the cgroup's pids.max
    assert (await sb.exec("echo alive")).stdout == "alive\n"


async def test_memory_bomb_is_killed_and_swap_is_not_an_escape(
    dprovider: DockerProvider, sb: DockerSandbox
) -> None:
    require_engine(dprovider, "MemoryLimit", "a memory limit")
    require_engine(dprovider, "SwapLimit", "memory+swap = memory")
    bomb = "b = []\nwhile True:\n    b.append(bytearray(16 << 20))\n    print(len(b), flush=True)"
    r = await sb.exec(["python3", "-c", bomb], timeout=60)
    assert r.exit_code == 137 and not r.timed_out
    assert int(r.stdout.split()[-1]) * 16 < 2 * SMALL.resources.memory_mb
    limits = await cgroup_limits(sb)
    assert limits["memory"] == limits["memory_swap"] == SMALL.resources.memory_mb << 20
    assert (await sb.exec("echo alive")).stdout == "alive\n"


async def test_disk_fill_is_bounded(sb: DockerSandbox) -> None:
    r = await sb.exec("head -c 200M /dev/zero > fill.bin; echo rc=$?; stat -c %s fill.bin; rm fill.bin",
                      timeout=60)
    assert "No space left on device" in r.stderr
    assert int(r.stdout.split()[-1]) <= SMALL.resources.disk_mb << 20
    r = await sb.exec("head -c 200M /dev/zero > /tmp/fill.bin; stat -c %s /tmp/fill.bin; rm /tmp/fill.bin",
                      timeout=60)
    assert "No space left on device" in r.stderr
    assert int(r.stdout.split()[-1]) <= 64 << 20


async def test_output_flood_is_truncated_and_bounded(sb: DockerSandbox) -> None:
    r = await sb.exec("yes flood", timeout=3, output_limit=1 << 16)
    assert r.timed_out and r.truncated
    assert len(r.stdout) == 1 << 16 and r.stdout_bytes > 1 << 20


async def test_sleep_forever_and_escaped_processes_are_killed(sb: DockerSandbox) -> None:
    cmd = ("setsid sleep 977 & nohup bash -c 'sleep 978' >/dev/null 2>&1 & "
           "(trap '' HUP TERM; sleep 979) & sleep infinity")
    r = await sb.exec(cmd, timeout=1)
    assert r.timed_out and r.exit_code is None
    await asyncio.sleep(0.3)
    ps = await sb.exec("ps -eo args")
    assert not [ln for ln in ps.stdout.splitlines() if ln.startswith(("sleep 97", "sleep inf"))
                and ln != "sleep infinity"], ps.stdout
    # Only the container's own keepalive is left (the exec server replaces it).
    keepalive = 0 if sb.profile()["exec_path"] == "exec server over attach" else 1
    assert ps.stdout.splitlines().count("sleep infinity") == keepalive


async def test_cannot_write_outside_workdir(sb: DockerSandbox) -> None:
    for path in ("/etc/evil", "/usr/bin/evil", "/evil", "/root/evil", "/home/evil"):
        r = await sb.exec(f"echo x > {path}")
        assert r.exit_code != 0, path
        assert "Read-only file system" in r.stderr or "Permission denied" in r.stderr
    r = await sb.exec("echo x > /etc/evil", user="root")
    assert "Read-only file system" in r.stderr


async def test_no_privilege_escalation(sb: DockerSandbox) -> None:
    status = (await sb.exec("cat /proc/self/status")).stdout
    fields = dict(ln.split(":\t", 1) for ln in status.splitlines() if ":\t" in ln)
    assert fields["NoNewPrivs"].strip() == "1"
    assert fields["Seccomp"].strip() == "2"  # filter mode: the default profile is on
    assert int(fields["CapEff"], 16) == 0 and int(fields["CapBnd"], 16) == 0
    # Root inside has no capabilities either: a setuid-root copy of `id` stays powerless
    # (no-new-privileges, nosuid mounts) and root cannot mount or chown.
    assert (await sb.exec("mkdir -p -m 1777 drop")).exit_code == 0
    r = await sb.exec("cp /usr/bin/id drop/suid-id && chmod 4755 drop/suid-id && stat -c %a:%U drop/suid-id",
                      user="root")
    assert r.stdout.strip() == "4755:root", r.stderr
    r = await sb.exec("drop/suid-id -u")
    assert r.stdout.strip() == "1000", r.stderr
    assert (await sb.exec("mount -t tmpfs x /mnt", user="root")).exit_code != 0
    r = await sb.exec("chown root drop && echo chowned", user="root")
    assert "chowned" not in r.stdout
    r = await sb.exec("su -c id root </dev/null")
    assert "uid=0" not in r.stdout


async def test_setuid_works_only_where_the_task_lifts_no_new_privileges(dprovider: DockerProvider) -> None:
    """The one relaxation a setuid task asks for (``no_new_privileges: false``, a ``suid``
    tmpfs) makes a setuid-root binary run with euid 0 — and nothing more: every capability
    stays dropped, and the recorded profile shows the relaxation."""
    spec = SMALL.model_copy(update={
        "no_new_privileges": False,
        "tmpfs": {"/tmp": "size=16m", "/opt": "size=16m,mode=0755,exec,suid"},
    })
    async with dprovider.acquire(spec, {"run": "pytest-attacks", "episode": "suid"}) as s:
        prof = s.profile()
        assert prof["no_new_privileges"] is False and prof["cap_drop"] == ["ALL"]
        r = await s.exec("cp /usr/bin/find /opt/f && chmod 4755 /opt/f && "
                         "echo s3cret > /opt/secret && chmod 600 /opt/secret", user="root")
        assert r.exit_code == 0, r.stderr
        assert (await s.exec("cat /opt/secret")).exit_code != 0
        r = await s.exec(r"/opt/f /opt/secret -exec cat {} \; -exec grep -E '^(Uid|CapEff)' /proc/self/status \;")
        assert r.stdout.splitlines()[0] == "s3cret", r.stdout + r.stderr
        fields = dict(ln.split(":\t", 1) for ln in r.stdout.splitlines()[1:])
        assert fields["Uid"].split()[:2] == ["1000", "0"], "real uid agent, effective uid root"
        assert int(fields["CapEff"], 16) == 0, "euid 0 brings no capability"
        # the second -exec runs only when the first succeeded
        r = await s.exec(r"/opt/f /opt -maxdepth 0 -exec mount -t tmpfs x /mnt \; -exec echo MOUNTED \;")
        assert "MOUNTED" not in r.stdout, "root by uid alone cannot mount"


async def test_host_files_are_not_visible(sb: DockerSandbox, tmp_path: Path) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("TOP-SECRET-7f3a")
    r = await sb.exec(f"cat {secret}; ls /work /root 2>&1; cat /proc/1/root/etc/hostname")
    assert "TOP-SECRET-7f3a" not in r.stdout
    mounts = (await sb.exec("cat /proc/self/mountinfo")).stdout
    assert str(tmp_path) not in mounts and "/work" not in mounts


async def test_docker_socket_is_unreachable(sb: DockerSandbox) -> None:
    r = await sb.exec("ls -la /var/run/docker.sock /run/docker.sock /var/run 2>&1")
    assert "docker.sock" not in r.stdout.replace("cannot access '/var/run/docker.sock'", "").replace(
        "cannot access '/run/docker.sock'", "")
    r = await sb.exec(["python3", "-c", CONNECT, "2375", "172.17.0.1"], timeout=20)
    assert "blocked" in r.stdout
    assert sb.profile()["docker_socket_mounted"] is False


async def test_cpu_quota_and_profile_are_applied(dprovider: DockerProvider, sb: DockerSandbox) -> None:
    require_engine(dprovider, "CpuCfsQuota", "a CPU quota")
    limits = await cgroup_limits(sb)
    quota, period = limits["quota"], limits["period"]
    assert quota / period == pytest.approx(SMALL.resources.cpus)
    prof = sb.profile()
    assert prof["network"] == "none" and prof["cap_drop"] == ["ALL"]
    assert prof["read_only_root"] is True and prof["privileged"] is False
    assert prof["memory_bytes"] == prof["memory_swap_bytes"] == SMALL.resources.memory_mb << 20
    assert prof["pids_limit"] == SMALL.resources.pids
    assert prof["init"] == ("exec server (PID 1)" if dprovider.exec_server else "docker-init")
    assert prof["log_driver"] == "none" and prof["shm_bytes"] == 64 << 20
    assert prof["labels"] == {"ptebench.run": "pytest-attacks", "ptebench.episode": "shared"}


async def test_network_is_only_relaxed_through_the_spec(dprovider: DockerProvider) -> None:
    spec = SandboxSpec(network="full")
    async with dprovider.acquire(spec, {"run": "pytest-attacks", "episode": "net"}) as s:
        assert s.profile()["network"] == "default"
        ifaces = (await s.exec("tail -n +3 /proc/net/dev | cut -d: -f1")).stdout.split()
        assert "eth0" in ifaces


def host_addresses() -> list[str]:
    """The host's own IPv4 addresses (loopback aside): where a host service would answer."""
    import subprocess

    try:
        out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True,
                             timeout=10, check=False).stdout
    except OSError:
        out = ""
    addrs = [ln.split()[3].split("/")[0] for ln in out.splitlines() if len(ln.split()) > 3]
    if not addrs:
        addrs = socket.gethostbyname_ex(socket.gethostname())[2]
    return [a for a in addrs if not a.startswith("127.")]


async def test_internal_network_has_no_route_out(
    dprovider: DockerProvider, host_listener: tuple[int, list[str]]
) -> None:
    """An internal network joins a task's own containers and nothing else: no public address,
    no host address — neither the bridge's gateway nor any other address of the host
    (docker0, eth0) — while a sibling on the same network answers."""
    port, seen = host_listener
    spec = SandboxSpec(network="internal")
    async with dprovider.acquire(spec, {"run": "pytest-attacks", "episode": "internal"}) as s:
        prof = s.profile()
        net = s.container.client.networks.get(prof["network"])
        assert net.attrs["Internal"] is True and prof["host_reachable"] is False
        gateway = net.attrs["IPAM"]["Config"][0].get("Gateway", "")
        targets = ["192.0.2.1", "10.255.255.1", gateway, "172.17.0.1", *host_addresses()]
        r = await s.exec(["python3", "-c", CONNECT, str(port), *targets], timeout=120)
        assert "CONNECTED" not in r.stdout, r.stdout
        assert r.stdout.count("blocked") == len(targets), r.stdout
        # the network is not dead: a second container on it is reachable
        sibling = s.container.client.containers.run(
            "ptebench/base", ["python3", "-m", "http.server", "8080"], detach=True,
            network=prof["network"], labels={"ptebench.run": "pytest-attacks"}, user="agent")
        try:
            sibling.reload()
            ip = sibling.attrs["NetworkSettings"]["Networks"][prof["network"]]["IPAddress"]
            probe = ("import socket, time\n"
                     "for _ in range(50):\n"
                     f"    try: socket.create_connection(({ip!r}, 8080), 1); print('UP'); break\n"
                     "    except OSError: time.sleep(0.2)\n")
            assert "UP" in (await s.exec(["python3", "-c", probe], timeout=60)).stdout
        finally:
            sibling.remove(force=True)
    assert seen == []


FORGER = r"""
import json, os, signal, sys, time
forged = "".join(json.dumps({"id": i, "code": 0, "out": "Rk9SR0VE", "err": "", "out_n": 6,
                             "err_n": 0, "timed_out": False, "s": 0.0}) + "\n"
                 for i in range(1, 400))
report = open(sys.argv[1], "w", buffering=1)
end = time.time() + float(sys.argv[2])
while time.time() < end:
    for what, act in (("stop", lambda: os.kill(1, signal.SIGSTOP)),
                      ("kill", lambda: os.kill(1, signal.SIGKILL)),
                      ("write", lambda: open("/proc/1/fd/1", "w").write(forged)),
                      ("read", lambda: open("/proc/1/fd/0", "rb").read(1)),
                      ("environ", lambda: open("/proc/1/environ", "rb").read())):
        try:
            act(); report.write(what + " OK\n")
        except OSError as e:
            report.write(what + " " + type(e).__name__ + "\n")
    time.sleep(0.05)
"""


async def test_pid1_pipes_cannot_be_hijacked(dprovider: DockerProvider) -> None:
    """The attack run's forger: a background process SIGSTOPs PID 1, writes forged JSON
    results to its stdout (the host's response pipe on the exec-server path) and reads its
    stdin (the requests, with the check scripts' text). Every attempt is refused on both
    paths, PID 1 keeps running, and every result the host gets is the command's own."""
    async with dprovider.acquire(SMALL, {"run": "pytest-attacks", "episode": "forger"}) as s:
        assert (await s.exec(["python3", "-c", "pass"])).exit_code == 0
        await s.write_file("forger.py", FORGER)
        r = await s.exec("setsid -f env -i python3 forger.py /tmp/forger.log 30 "
                         ">/dev/null 2>&1; sleep 1; echo started")
        assert r.stdout == "started\n", r
        for k in range(20):
            r = await s.exec(f"echo genuine-{k}")
            assert r.stdout == f"genuine-{k}\n" and r.exit_code == 0, r
        log = (await s.exec("sort /tmp/forger.log | uniq -c")).stdout
        for what in ("write", "read", "environ"):
            assert f"{what} PermissionError" in log and f"{what} OK" not in log, log
        # kill(2) on a namespace's init may "succeed" but delivers nothing it has no handler
        # for: PID 1 is still the same process, running, not stopped.
        assert "stop" in log and "kill" in log, log
        state = (await s.exec("grep State /proc/1/status")).stdout
        assert "stopped" not in state and "zombie" not in state, state
        await s.stop_agent()


async def test_stop_agent_kills_every_agent_process(dprovider: DockerProvider) -> None:
    """Before scoring the runner stops the agent: processes that left the process group,
    scrubbed their environment or daemonized are all gone, and the sandbox still works."""
    async with dprovider.acquire(SMALL, {"run": "pytest-attacks", "episode": "stop"}) as s:
        r = await s.exec("setsid -f env -i sleep 1001; nohup sleep 1002 >/dev/null 2>&1 & "
                         "(trap '' TERM HUP; exec -a hidden sleep 1004) & disown -a; echo ok",
                         timeout=10)
        assert "ok" in r.stdout, r
        ps = (await s.exec(["ps", "-u", "agent", "-o", "pid=,args="])).stdout
        assert "sleep 1001" in ps and "sleep 1002" in ps and "hidden" in ps, ps
        await s.stop_agent()
        ps = (await s.exec(["ps", "-u", "agent", "-o", "pid=,args="])).stdout.splitlines()
        left = [ln for ln in ps if ln.split()[1:2] != ["ps"] and ln.split()[0] != "1"]
        assert left == [], ps
        assert (await s.exec("echo alive")).stdout == "alive\n"


async def test_stop_agent_kills_a_root_agents_processes(dprovider: DockerProvider) -> None:
    """A root agent (Harbor images run as root) shares its uid with PID 1 and the keepalive:
    stopping it kills all its processes but those, and the container keeps running."""
    spec = SMALL.model_copy(update={"user": "root", "workdir": "/root"})
    async with dprovider.acquire(spec, {"run": "pytest-attacks", "episode": "stop-root"}) as s:
        before = (await s.exec(["ps", "-e", "-o", "pid=,args="])).stdout
        r = await s.exec("setsid -f env -i sleep 1001; nohup sleep 1002 >/dev/null 2>&1 & "
                         "(trap '' TERM HUP; exec -a hidden sleep 1004) & disown -a; echo ok",
                         timeout=10)
        assert "ok" in r.stdout, r
        ps = (await s.exec(["ps", "-e", "-o", "pid=,args="])).stdout
        assert "sleep 1001" in ps and "sleep 1002" in ps and "hidden" in ps, ps
        await s.stop_agent()
        after = (await s.exec(["ps", "-e", "-o", "pid=,args="])).stdout
        assert "sleep 100" not in after and "hidden" not in after, after
        # what ran before the agent acted (init, keepalive) is still there
        kept = {ln for ln in before.splitlines() if "ps -e" not in ln}
        assert kept <= set(after.splitlines()), (before, after)
        assert (await s.exec("echo alive")).stdout == "alive\n"


async def test_fork_bomb_then_stop_agent_leaves_a_working_sandbox(dprovider: DockerProvider) -> None:
    """A fork bomb that escaped its exec fills the pids limit, so nothing can start (the attack
    run saw every later action exit 125/126 and a root check script fail to fork). Stopping
    the agent works anyway (no fork needed, or the limit lifted for the kill), after which a
    root command — the scorer — runs normally."""
    require_engine(dprovider, "PidsLimit", "a pids limit")
    async with dprovider.acquire(SMALL, {"run": "pytest-attacks", "episode": "bomb"}) as s:
        r = await s.exec("setsid -f env -i bash -c 'b() { b | b & }; b' >/dev/null 2>&1; echo lit",
                         timeout=10)
        assert "lit" in r.stdout, r
        for _ in range(100):  # until the bomb holds the sandbox (an event, not a sleep)
            with contextlib.suppress(SandboxError):
                probe = await s.exec("echo free", user="root", timeout=10)
                if probe.stdout != "free\n":
                    break
            await asyncio.sleep(0.1)
        await s.stop_agent()
        r = await s.exec("echo scorer-runs; cat /sys/fs/cgroup/pids/pids.max", user="root",
                         timeout=30)
        assert r.stdout.split() == ["scorer-runs", str(SMALL.resources.pids)], r


async def test_scripts_are_not_on_the_command_line(dprovider: DockerProvider) -> None:
    """Setup and check scripts run as ``bash -c SCRIPT``; an agent process watching
    /proc/*/cmdline must not see their text (hidden tests, secrets)."""
    async with dprovider.acquire(SMALL, {"run": "pytest-attacks", "episode": "cmdline"}) as s:
        watch = ("for i in $(seq 150); do cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ';"
                 " echo; sleep 0.02; done > /tmp/seen 2>&1")
        await s.write_file("watch.sh", watch)
        assert (await s.exec("setsid -f bash watch.sh; echo ok")).stdout == "ok\n"
        r = await s.exec(["bash", "-c", "sleep 2; echo HIDDEN-TEST-$((6*7))", "check"],
                         user="root", timeout=30)
        assert r.stdout == "HIDDEN-TEST-42\n"
        await s.stop_agent()
        seen = (await s.exec("cat /tmp/seen")).stdout
        assert "sleep 2" in seen, "the watcher saw the root process run"
        assert "HIDDEN-TEST" not in seen, seen[:2000]


SCAN = r"""
import os, sys, time
secret, control = sys.argv[1][::-1].encode(), sys.argv[2][::-1].encode()
out, until = sys.argv[3], time.monotonic() + float(sys.argv[4])
found, saw_control, scans = set(), False, 0
while True:
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        for name in ("environ", "cmdline"):
            try:
                with open(f"/proc/{pid}/{name}", "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if secret in data:
                found.add(f"/proc/{pid}/{name}")
            saw_control = saw_control or control in data
    scans += 1
    if time.monotonic() >= until:
        break
    time.sleep(0.01)
with open(out, "w") as f:
    f.write(f"scans={scans} control={saw_control} found={sorted(found)}\n")
"""


async def test_check_scripts_are_in_no_environ_or_cmdline(dprovider: DockerProvider) -> None:
    """A check script running as the agent's uid (ctf ``fix_codebase``) runs the agent's
    code; neither that code nor an agent process left running may read the script's text
    from /proc/*/environ or /proc/*/cmdline (environ is readable by the same uid: the old
    carrier). The script still runs whole and reads its own stdin."""
    secret, control = f"HIDDEN-{uuid.uuid4().hex}", f"CONTROL-{uuid.uuid4().hex}"
    async with dprovider.acquire(SMALL, {"run": "pytest-attacks", "episode": "environ"}) as s:
        await s.write_file("scan.py", SCAN)
        left = f"setsid -f python3 scan.py {secret[::-1]} {control[::-1]} /tmp/left 6; echo ok"
        assert (await s.exec(left)).stdout == "ok\n"
        check = (f"# hidden test: {secret}\n"
                 f"python3 scan.py {secret[::-1]} {control[::-1]} /tmp/child 1.5\n"
                 'read -r first; rest=$(tr "\\n" ,); echo "first=$first rest=$rest"\n'
                 "cat /tmp/child\n")
        r = await s.exec(check, timeout=30, input="line-1\nline-2\nline-3\n",
                         env={"PTEBENCH_CONTROL": control})
        assert r.exit_code == 0, r.stderr
        first, child = r.stdout.splitlines()
        assert first == "first=line-1 rest=line-2,line-3,", r.stdout
        # the scanner could read the check shell's environ (it saw the control variable)
        assert "control=True" in child and "found=[]" in child, child
        wait = "for i in $(seq 300); do [ -s /tmp/left ] && break; sleep 0.1; done; cat /tmp/left"
        seen = (await s.exec(wait, timeout=60)).stdout
        assert "control=True" in seen and "found=[]" in seen, seen
        await s.stop_agent()


async def test_commands_over_128_kib_run(sb: DockerSandbox) -> None:
    """One argument is capped at 128 KiB by the kernel; a longer command still runs."""
    body = "\n".join(f": {'x' * 990}" for _ in range(300))  # ~300 KB
    r = await sb.exec(f"echo start\n{body}\necho end", timeout=60)
    assert r.exit_code == 0 and r.stdout == "start\nend\n", r.stderr[-500:]


async def test_exec_paths_agree_on_background_processes(sb: DockerSandbox) -> None:
    """A command that leaves a background child holding its stdout returns once the
    command itself exits (on both paths), and a scrubbed daemon no longer loses the step."""
    r = await sb.exec("(sleep 40 &); echo done", timeout=20)
    assert (r.exit_code, r.timed_out, r.stdout) == (0, False, "done\n"), r
    r = await sb.exec("setsid -f env -i sleep 1003; echo started", timeout=20)
    assert (r.exit_code, r.timed_out, r.stdout) == (0, False, "started\n"), r
    await sb.stop_agent()


async def test_read_file_follows_symlinks(sb: DockerSandbox) -> None:
    await sb.write_file("real.txt", "payload")
    assert (await sb.exec("ln -sf real.txt link.txt && ln -sf /etc/hostname host.txt")).ok
    assert await sb.read_file("link.txt") == b"payload"
    assert await sb.read_file("host.txt") == (await sb.exec("cat /etc/hostname")).stdout.encode()
    assert (await sb.exec("ln -sf nowhere dangling.txt")).ok
    with pytest.raises(FileNotFoundError):
        await sb.read_file("dangling.txt")


async def test_dev_shm_is_recorded_and_snapshotted(dprovider: DockerProvider, sb: DockerSandbox) -> None:
    prof = sb.profile()
    assert prof["shm_bytes"] == 64 << 20
    assert (await sb.exec("echo in-shm > /dev/shm/state")).ok
    child = await sb.restore(await sb.snapshot())
    try:
        assert (await child.exec("cat /dev/shm/state")).stdout == "in-shm\n"
    finally:
        await child.close()


async def test_container_logs_never_reach_the_host(sb: DockerSandbox) -> None:
    attrs = sb.container.client.api.inspect_container(sb.id)
    assert attrs["HostConfig"]["LogConfig"]["Type"] == "none"
    assert sb.profile()["log_driver"] == "none"
    r = await sb.exec("echo flood > /proc/1/fd/1; echo flood > /proc/1/fd/2")
    assert r.exit_code != 0 and r.stderr.count("Permission denied") == 2, r


async def test_snapshots_live_on_disk_within_a_budget(dprovider: DockerProvider) -> None:
    """Snapshots are files under the provider's snapshot directory, not runner memory; one
    past the cap is refused (and recorded); forgetting one and closing the episode free them."""
    p = DockerProvider(warm=0, exec_server=dprovider.exec_server, snapshot_max_mb=2)
    try:
        async with p.acquire(SMALL, {"run": "pytest-attacks", "episode": "snapdisk"}) as s:
            assert (await s.exec("head -c 1M /dev/urandom > one.bin")).ok
            sid = await s.snapshot()
            store = p.snapshot_store
            files = list((store.root / sid).iterdir())
            assert sum(f.stat().st_size for f in files) >= 1 << 20
            assert store.total >= 1 << 20
            assert (await s.exec("head -c 3M /dev/urandom > three.bin")).ok
            with pytest.raises(SandboxError, match="snapshot refused"):
                await s.snapshot()
            assert len(p.snapshot_refusals) == 1 and "cap 2 MB" in p.snapshot_refusals[0]
            assert set(p.snapshots) == {sid}
            child = await s.restore(sid)
            assert (await child.exec("stat -c %s one.bin")).stdout == f"{1 << 20}\n"
            await child.close()
            assert (await s.exec("rm three.bin")).ok
            second = await s.snapshot()
            await s.discard_snapshot(second)
            assert not (store.root / second).exists() and second not in p.snapshots
        assert p.snapshots == {} and store.total == 0 and not (store.root / sid).exists()
    finally:
        await p.aclose()
