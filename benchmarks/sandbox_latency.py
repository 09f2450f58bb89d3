"""Docker sandbox latency: prints figures, asserts nothing.

    PYTHONPATH=. python benchmarks/sandbox_latency.py [--n 200] [--snap-n 50]

Cold start, warm acquire, exec round trip of `true` (SDK vs the `docker exec` CLI, and the
opt-in exec server),
write+read of 1 MiB, archive snapshot/restore, and the two alternatives for branching:
`docker commit` (+ start from the image) and replay of recorded actions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable

from ptebench.sandbox.base import SandboxSpec
from ptebench.sandbox.docker import DockerProvider, DockerSandbox
from ptebench.sandbox.images import ensure_base_image

LABELS = {"run": "bench-latency"}
REPLAY = [f"echo step{i} >> log.txt && python3 -c 'print({i}*{i})' > sq{i}.txt" for i in range(10)]


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


def show(name: str, xs: list[float]) -> None:
    print(f"{name:<38} n={len(xs):<4} p50={pct(xs, 0.5):8.1f} ms  p95={pct(xs, 0.95):8.1f} ms")


async def timed(n: int, fn: Callable[[], Awaitable[object]]) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t)
    return out


async def main(n: int, snap_n: int) -> None:
    ensure_base_image()
    spec = SandboxSpec()
    print(f"docker sandbox latency on {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")

    # docker exec on purpose: the SDK/CLI rows below measure that path (the default is the
    # exec server where the image runs it, measured apart)
    cold = DockerProvider(warm=0, exec_server=False)
    starts: list[float] = []
    for _ in range(n):
        t = time.perf_counter()
        sb = await cold.open(spec, LABELS)
        starts.append(time.perf_counter() - t)
        await sb.close()
    show("cold start (volume+create+start)", starts)

    warm = DockerProvider(warm=1, exec_server=False)
    acquires: list[float] = []
    for i in range(n):
        await warm.prewarm(spec, LABELS)
        t = time.perf_counter()
        sb = await warm.open(spec, {**LABELS, "episode": f"bench-{i}"})  # renamed on take
        acquires.append(time.perf_counter() - t)
        await sb.close()
    show("warm acquire (pool ready)", acquires)

    sb = await warm.open(spec, LABELS)
    sdk = await timed(n, lambda: sb.exec(["true"]))
    show("exec `true` via SDK", sdk)
    cli: list[float] = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(["docker", "exec", "-u", "agent", sb.container.name, "true"], check=True)
        cli.append(time.perf_counter() - t)
    show("exec `true` via docker CLI", cli)
    print(f"{'SDK / CLI p50 ratio':<38} {pct(sdk, 0.5) / pct(cli, 0.5):.2f}")

    mib = os.urandom(1 << 20)

    async def write_read() -> None:
        await sb.write_file("mib.bin", mib)
        assert await sb.read_file("mib.bin") == mib

    show("write + read 1 MiB (archive API)", await timed(n, write_read))
    fast = DockerProvider(warm=0, exec_server=True)
    fsb = await fast.open(spec, LABELS)
    srv = await timed(n, lambda: fsb.exec(["true"]))
    show("exec `true` via exec server (default)", srv)
    print(f"{'exec server / CLI p50 ratio':<38} {pct(srv, 0.5) / pct(cli, 0.5):.3f}")
    await fsb.close()
    await fast.aclose()
    await archive_snapshots(sb, n)
    await sb.close()
    await commit_and_replay(warm, spec, snap_n)
    await cold.aclose()
    await warm.aclose()


async def archive_snapshots(sb: DockerSandbox, n: int) -> None:
    for cmd in REPLAY:
        await sb.exec(cmd)
    snaps: list[float] = []
    restores: list[float] = []
    for _ in range(n):
        t = time.perf_counter()
        sid = await sb.snapshot()
        snaps.append(time.perf_counter() - t)
        t = time.perf_counter()
        child = await sb.restore(sid)
        restores.append(time.perf_counter() - t)
        await child.close()
    show("snapshot (archive of writable mounts)", snaps)
    show("restore (fresh container + unpack)", restores)


async def commit_and_replay(p: DockerProvider, spec: SandboxSpec, n: int) -> None:
    rw = spec.model_copy(update={"read_only_root": False})
    sb = await p.open(rw, LABELS)
    for cmd in REPLAY:
        await sb.exec(cmd)
    snaps: list[float] = []
    restores: list[float] = []
    for _ in range(n):
        t = time.perf_counter()
        sid = await sb.snapshot()
        snaps.append(time.perf_counter() - t)
        t = time.perf_counter()
        child = await sb.restore(sid)
        restores.append(time.perf_counter() - t)
        await child.close()
    show("snapshot with docker commit (rw root)", snaps)
    show("restore from committed image", restores)
    await sb.close()

    replays: list[float] = []
    for _ in range(n):
        t = time.perf_counter()
        child = await p.open(spec, LABELS)
        for cmd in REPLAY:
            await child.exec(cmd)
        replays.append(time.perf_counter() - t)
        await child.close()
    show(f"restore by replay of {len(REPLAY)} actions", replays)
    print(f"{'(replay grows with history length)':<38} "
          f"{statistics.median(replays) / len(REPLAY) * 1000:.1f} ms per action")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="iterations per figure")
    ap.add_argument("--snap-n", type=int, default=50, help="iterations for commit and replay")
    a = ap.parse_args()
    asyncio.run(main(a.n, a.snap_n))
