"""The agent loop against its limits, side by side in one run. Prints figures; asserts nothing
(it exits 1 only if the episodes did not have the designed shape).

It starts its own zero-latency OpenAI-compatible stub (a separate process, real HTTP/1.1
keep-alive, standard library only) and measures, on the local sandbox:

(a) the bare exec limit: ``bash -c 'echo hi'`` per second from a minimal Python process
    (``-I -S``, asyncio, no ptebench) at the same concurrency — the exec-bound limit of an
    episode with 5 actions is that / 5;
(b) ptebench react episodes per second on arith with the stub: the stub answers
    ``Action: bash: echo hi`` until the request holds 5 assistant turns, then
    ``Action: submit: 42`` — exactly 6 calls and 5 bash actions per episode (checked);
    reported as a share of (a)'s exec-bound limit (target ≥ 40%);
(c) bare-client chat calls per second (plain httpx posting the same JSON, no ptebench) vs
    ptebench generate mode (the direct scaffold: one call per episode, the whole runner)
    → ratio (target ≥ 25%); plus the provider alone over each transport and the bare SDK.

    PYTHONPATH=. python benchmarks/agent_loop.py [--episodes 200] [--concurrency 16]
    PYTHONPATH=/work/main python benchmarks/agent_loop.py   # the same figures for another tree

Everything shares the machine (2 cores here): the stub and the actions' processes compete
with the runner, as they would in a real run; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

STUB = r'''
import asyncio, json, sys

def reply(path, body):
    msgs = body.get("messages") or []
    if path.startswith("/react/"):
        turns = sum(1 for m in msgs if m.get("role") == "assistant")
        text = "Thought: look.\nAction: bash: echo hi" if turns < 5 else "Thought: done.\nAction: submit: 42"
    else:
        text = "Answer: 42"
    out = {"id": "c1", "object": "chat.completion", "created": 1, "model": "stub",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop", "logprobs": None}],
           "usage": {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49}}
    return json.dumps(out).encode()

async def handle(r, w):
    try:
        while True:
            head = await r.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            path = lines[0].split(b" ")[1].decode()
            n = 0
            for line in lines[1:]:
                if line[:15].lower() == b"content-length:":
                    n = int(line[15:])
            body = json.loads(await r.readexactly(n)) if n else {}
            data = reply(path, body)
            w.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(data) + data)
    except (asyncio.IncompleteReadError, ConnectionError, IndexError, ValueError):
        pass
    finally:
        w.close()

async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=512)
    async with srv:
        await srv.serve_forever()

asyncio.run(main())
'''

BARE_EXEC = r'''
import asyncio, sys, time
N, C = int(sys.argv[1]), int(sys.argv[2])
async def main():
    sem = asyncio.Semaphore(C)
    async def one():
        async with sem:
            p = await asyncio.create_subprocess_exec(
                "bash", "-c", "echo hi", stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, start_new_session=True)
            await p.communicate()
    await asyncio.gather(*(one() for _ in range(20)))
    t = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(N)))
    print(N / (time.perf_counter() - t))
asyncio.run(main())
'''

MESSAGES = [{"role": "system", "content": "Answer the question."},
            {"role": "user", "content": "What is 6 * 7? Give the exact integer."}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_stub() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", STUB, str(port)])
    root = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.post(f"{root}/direct/v1/chat/completions", json={}, timeout=1.0)
            return proc, root
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the stub server did not start")


def bare_exec(n: int, concurrency: int) -> float:
    out = subprocess.run([sys.executable, "-I", "-S", "-c", BARE_EXEC, str(n), str(concurrency)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout)


def cpu_s(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def episodes_run(url: str, scaffold: str, limit: int, epochs: int, concurrency: int,
                 transport: str | None) -> tuple[float, float, Any, float]:
    """(episodes/s, calls/s, the episodes table, the runner process's CPU seconds) of one
    ptebench run with the stub model."""
    from ptebench.results.store import load
    from ptebench.runners.config import parse_experiment
    from ptebench.runners.local import run_experiment

    opts: dict[str, Any] = {} if transport is None else {"transport": transport}
    exp = parse_experiment({
        "name": f"bench-{scaffold}",
        "models": [{"id": "stub", "provider": "openai", "model": "stub", "base_url": url,
                    "max_concurrency": concurrency, "options": opts}],
        "scaffolds": [scaffold], "baseline": scaffold,
        "tasks": [{"name": "arith", "limit": limit}], "epochs": epochs,
        "sandbox": "local", "concurrency": {"episodes": concurrency},
    })
    with tempfile.TemporaryDirectory() as d:
        t, cpu = time.perf_counter(), cpu_s(resource.RUSAGE_SELF)
        res = run_experiment(exp, Path(d) / "run")
        wall, cpu = time.perf_counter() - t, cpu_s(resource.RUSAGE_SELF) - cpu
        df = load(Path(d) / "run")
    n = res.progress.done
    return n / wall, float(df.calls.sum()) / wall, df, cpu


async def bare_httpx(url: str, calls: int, concurrency: int) -> float:
    body = json.dumps({"model": "stub", "messages": MESSAGES, "temperature": 0.0}).encode()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as c:
        left = calls

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                r = await c.post(f"{url}/chat/completions", content=body,
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer x"})
                _ = json.loads(r.content)["choices"][0]["message"]["content"]

        t = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return calls / (time.perf_counter() - t)


async def bare_sdk(url: str, calls: int, concurrency: int) -> float:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url, api_key="x", max_retries=0, timeout=30)
    left = calls

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            r = await client.chat.completions.create(model="stub", messages=MESSAGES)  # type: ignore[arg-type]
            _ = r.choices[0].message.content

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await client.close()
    return calls / (time.perf_counter() - t)


async def provider_alone(url: str, calls: int, concurrency: int, transport: str | None) -> float:
    from ptebench.models.base import GenerateRequest, Message, ModelConfig
    from ptebench.models.openai import OpenAIModel

    opts: dict[str, Any] = {} if transport is None else {"transport": transport}
    model = OpenAIModel(ModelConfig(id="stub", provider="openai", model="stub", base_url=url,
                                    max_concurrency=concurrency, timeout_s=30, options=opts))
    request = GenerateRequest(messages=[Message.model_validate(m) for m in MESSAGES])
    left = calls

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await model.generate(request)

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t
    await model.aclose()
    return calls / elapsed


def has_transports() -> bool:
    import ptebench.models.openai as m

    return hasattr(m, "transport_of")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=200, help="react episodes (b)")
    ap.add_argument("--direct-episodes", type=int, default=1000, help="direct episodes (c)")
    ap.add_argument("--calls", type=int, default=2000, help="bare-client calls (c)")
    ap.add_argument("--execs", type=int, default=500, help="bare execs (a)")
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # the stub has no model card: said once per run, not news
    import ptebench
    import ptebench.models.openai
    import ptebench.results.store
    import ptebench.runners.local  # imported before any clock starts  # noqa: F401

    c = args.concurrency
    tree = str(Path(ptebench.__file__).resolve().parents[1])
    load0 = os.getloadavg()
    print(f"ptebench from {tree}; {os.cpu_count()} CPUs; load average "
          f"{load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}; concurrency {c}")
    proc, root = start_stub()
    try:
        execs = bare_exec(args.execs, c)
        print(f"(a) bare exec limit: {execs:8.1f} bash execs/s → {execs / 5:.1f} episodes/s "
              "of 5 actions")

        eps, _, df, cpu = episodes_run(f"{root}/react/v1", "react", max(1, args.episodes // 2), 2, c,
                                  None)
        calls, steps = float(df.calls.mean()), float(df.steps.mean())
        errors = int((df.status == "error").sum())
        share = eps / (execs / 5)
        print(f"(b) react, local sandbox: {eps:8.1f} episodes/s ({len(df)} episodes, "
              f"{calls:g} calls + {steps:g} bash actions each, {errors} errors) = "
              f"{share:.0%} of the exec-bound limit (target ≥ 40%)")
        print(f"    runner process CPU: {cpu / len(df) * 1000:.1f} ms per episode (its own "
              "work, the actions' processes excluded)")
        if calls != 6 or steps != 5 or errors:
            raise SystemExit("the episodes did not have the designed 6 calls + 5 actions")

        url = f"{root}/direct/v1"
        bare = asyncio.run(bare_httpx(url, args.calls, c))
        limit = min(200, args.direct_episodes)
        epochs = max(1, args.direct_episodes // limit)
        direct_eps, direct_calls, ddf, dcpu = episodes_run(url, "direct", limit, epochs, c, None)
        gen = direct_calls / bare
        print(f"(c) bare httpx client: {bare:8.1f} calls/s; ptebench generate mode (direct, "
              f"{len(ddf)} episodes): {direct_calls:8.1f} calls/s = {gen:.0%} of the bare "
              "client (target ≥ 25%)")
        print(f"    runner process CPU: {dcpu / float(ddf.calls.sum()) * 1000:.2f} ms per call "
              "(generate mode)")
        sdk = asyncio.run(bare_sdk(url, args.calls // 2, c))
        rows = [("bare openai SDK", sdk)]
        if has_transports():
            rows += [("ptebench provider, transport httpx",
                      asyncio.run(provider_alone(url, args.calls // 2, c, "httpx"))),
                     ("ptebench provider, transport sdk",
                      asyncio.run(provider_alone(url, args.calls // 2, c, "sdk")))]
        else:
            rows += [("ptebench provider (the SDK)",
                      asyncio.run(provider_alone(url, args.calls // 2, c, None)))]
        for name, v in rows:
            print(f"    {name:<36} {v:8.1f} calls/s = {v / bare:.0%} of bare httpx")
        load1 = os.getloadavg()
        print(f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
        print(json.dumps({
            "tree": tree, "cpus": os.cpu_count(), "load_before": round(load0[0], 2),
            "load_after": round(load1[0], 2), "concurrency": c,
            "bare_execs_per_s": round(execs, 1), "exec_bound_episodes_per_s": round(execs / 5, 1),
            "react_episodes_per_s": round(eps, 2), "agent_loop_share": round(share, 3),
            "runner_cpu_ms_per_react_episode": round(cpu / len(df) * 1000, 2),
            "runner_cpu_ms_per_generate_call": round(dcpu / float(ddf.calls.sum()) * 1000, 3),
            "agent_loop_target": 0.4, "bare_client_calls_per_s": round(bare, 1),
            "generate_mode_calls_per_s": round(direct_calls, 1),
            "generate_mode_share": round(gen, 3), "generate_mode_target": 0.25,
            "provider_calls_per_s": {name: round(v, 1) for name, v in rows},
        }))
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    main()
