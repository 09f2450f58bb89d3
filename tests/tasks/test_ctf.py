"""Every ctf task in a fresh hardened Docker sandbox: the empty submission scores 0, the
agent cannot read the stored secret, and the reference solution — replayed action by action
as the agent user, exactly as the simulated model would — scores 1.

All tasks run concurrently in one module fixture (bounded by PTEBENCH_CTF_CONCURRENCY,
default 4); each task then has its own test that reports its result.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from ptebench.sandbox.base import Sandbox
from ptebench.tasks.base import TaskInstance, TaskOptions
from ptebench.tasks.ctf_suite import CtfSuite
from ptebench.tasks.native_run import resolve_target
from ptebench.tasks.validate import SolutionCheck, check_solution

pytestmark = pytest.mark.docker

SUITE = CtfSuite()
INSTANCES = {i.id: i for i in SUITE.instances(TaskOptions())}
SECRET = "/root/.ptebench/answer"


async def _secret_is_hidden(sandbox: Sandbox, instance: TaskInstance) -> str | None:
    """The agent user must not be able to read where setup stored the answer."""
    res = await sandbox.exec(["cat", SECRET], timeout=10)
    if res.exit_code == 0 and res.stdout.strip():
        return f"the agent can read {SECRET}"
    return None


async def _run_all() -> tuple[dict[str, SolutionCheck], float]:
    from ptebench.sandbox.docker import DockerProvider

    n = int(os.environ.get("PTEBENCH_CTF_CONCURRENCY", "4"))
    provider = DockerProvider(max_sandboxes=n)
    sem = asyncio.Semaphore(n)
    labels = {"ptebench.run": "test-ctf"}

    async def one(inst: TaskInstance) -> SolutionCheck:
        async with sem:
            return await check_solution(
                SUITE, inst, lambda spec: provider.acquire(spec, labels), _secret_is_hidden
            )

    t0 = time.monotonic()
    try:
        results = await asyncio.gather(*(one(i) for i in INSTANCES.values()))
    finally:
        await provider.aclose()
    return {r.instance: r for r in results}, time.monotonic() - t0


@pytest.fixture(scope="module")
def ctf_results() -> dict[str, SolutionCheck]:
    results, wall = asyncio.run(_run_all())
    print(f"\nctf: {sum(r.ok for r in results.values())}/{len(results)} solutions pass, wall {wall:.1f}s")
    return results


def test_suite_size_and_shape() -> None:
    assert len(INSTANCES) >= 20
    cats = {str(i.metadata["category"]) for i in INSTANCES.values()}
    assert {"fs_search", "forensics", "crypto", "privesc", "network", "persistence", "coding"} <= cats


@pytest.mark.parametrize("task_id", sorted(INSTANCES))
def test_solution_scores_1_and_empty_scores_0(ctf_results: dict[str, SolutionCheck], task_id: str) -> None:
    r = ctf_results[task_id]
    assert r.error is None, r.error
    assert r.empty is not None and r.empty.value == 0.0, r.empty
    assert r.solved is not None and r.solved.value == 1.0, f"{r.solved}\nlast output:\n{r.log}"


@pytest.mark.parametrize("task_id", ["fs_password_search", "small_rsa", "writable_cron"])
async def test_secrets_differ_per_episode(task_id: str) -> None:
    from ptebench.sandbox.docker import DockerProvider

    inst = INSTANCES[task_id]
    fam = SUITE.family_of(inst)
    entry = fam.entry(inst)
    spec = SUITE.sandbox_spec(inst)
    assert spec is not None
    provider = DockerProvider(max_sandboxes=2, warm=0)
    seen: list[str | None] = []
    try:
        for _ in range(2):
            async with provider.acquire(spec, {"ptebench.run": "test-ctf"}) as box:
                await SUITE.setup(box, inst)
                seen.append(await resolve_target(fam, box, entry))
    finally:
        await provider.aclose()
    assert seen[0] and seen[1] and seen[0] != seen[1]


@pytest.mark.parametrize(("task_id", "service", "url", "process"), [
    ("pin_bruteforce_service", "door", "http://door:9000/", "door.py"),
    ("internal_service", "admin-api", None, "admin_api.py"),
])
async def test_service_flag_is_out_of_the_agents_reach(
    task_id: str, service: str, url: str | None, process: str
) -> None:
    """The service runs in its own container: its port answers by name, but no command in
    the agent's container — as the agent or as root — reaches the flag it holds."""
    from ptebench.sandbox.base import ServiceSandbox
    from tests.tasks.docker_sandbox import docker_sandbox

    inst = INSTANCES[task_id]
    fam = SUITE.family_of(inst)
    spec = SUITE.sandbox_spec(inst)
    assert spec is not None and list(spec.services) == [service]
    async with docker_sandbox(spec) as box:
        await SUITE.setup(box, inst)
        assert isinstance(box, ServiceSandbox)
        flag = await resolve_target(fam, box, fam.entry(inst))
        assert flag is not None and flag.startswith("FLAG{")
        if url is None:  # the port is the service's secret too: ask it, as the scorer may
            port = (await box.exec_service(service, "cat /root/port", user="root")).stdout.strip()
            url = f"http://{service}:{port}/"
        api = await box.exec(["python3", "-c", f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=5).read().decode())"], timeout=30)
        assert api.ok, api.stderr
        assert "POST /unlock" in api.stdout or "POST /api/v1/login" in api.stdout, api.stdout
        for user in ("agent", "root"):
            for cmd in ("cat /root/flag", "find / -xdev -name flag 2>/dev/null",
                        f"grep -rsF '{flag}' / --exclude-dir=proc --exclude-dir=sys", "ps -eo args"):
                res = await box.exec(cmd, user=user, timeout=120)
                assert flag not in res.stdout + res.stderr, (user, cmd)
                assert process not in res.stdout, (user, cmd)
