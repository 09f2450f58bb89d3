"""What a native task does at run time: set the sandbox up and score a submission.

Setup runs before the agent with root's rights inside the sandbox (which, under the
hardened Docker profile, means uid 0 *without* capabilities: root may write root-owned
paths and read its own files, but cannot chown, read another user's private files, or
kill the agent's processes). Scoring reads secrets back from where setup stored them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptebench.errors import ConfigError, PtebenchError, SandboxError
from ptebench.records import Score
from ptebench.sandbox.base import Sandbox, ServiceSandbox
from ptebench.tasks.native_spec import FileAsset, TaskEntry

if TYPE_CHECKING:
    from ptebench.tasks.native import NativeTaskFamily

# Writes stdin to $1 with mode $2, making parent directories (run as the file's owner).
_PUT = 'mkdir -p -- "$(dirname -- "$1")" && cat > "$1" && chmod "$2" -- "$1"'
_ENV_SUBMISSION_MAX = 64 * 1024
"""Longer submissions reach a check script on stdin only (env strings are size-capped)."""


_CANNOT_RUN = (125, 126)
"""Exit statuses of a command the sandbox could not start (the engine's 125, 126 for
"cannot execute" / no process left to fork): the scorer did not run, so no score."""
_FORK_FAILED = re.compile(r"fork: (retry: )?Resource temporarily unavailable|fork system call failed")


class TaskSetupError(PtebenchError):
    """A task's files or setup script failed in the sandbox (a broken task or sandbox)."""


class TaskScoringError(PtebenchError):
    """The scorer itself failed (e.g. the target could not be read back): not a 0 score."""


class SandboxBrokenError(TaskScoringError, SandboxError):
    """The sandbox could not run the scorer (exit 125/126, fork failed): an infrastructure
    failure (failure class ``sandbox``), neither a score nor the task's fault."""


def _tail(text: str, n: int = 600) -> str:
    return text[-n:].strip()


def _walk(src: Path, dest: str, mode: str | None) -> list[tuple[str, bytes, str]]:
    """(sandbox path, bytes, octal mode) of every file of an asset."""
    files = sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else [src]
    out: list[tuple[str, bytes, str]] = []
    for f in files:
        path = dest if not src.is_dir() else f"{dest.rstrip('/')}/{f.relative_to(src).as_posix()}"
        m = mode or ("0755" if f.stat().st_mode & 0o111 else "0644")
        out.append((path, f.read_bytes(), m))
    return out


def _under(path: str, workdir: str) -> bool:
    wd = workdir.rstrip("/")
    return path == wd or path.startswith(wd + "/")


async def _copy(fam: NativeTaskFamily, sandbox: Sandbox, dest: str, asset: FileAsset) -> None:
    workdir = fam.spec.sandbox.workdir
    owner = asset.owner or ("agent" if _under(dest, workdir) else "root")
    local = sandbox.name == "local"
    if local and (owner != "agent" or not _under(dest, workdir)):
        raise ConfigError(
            f"{fam.name}: file {dest} is outside the workdir or owned by root; "
            "this task needs the docker sandbox"
        )
    for path, data, mode in _walk(fam.root / asset.src, dest, asset.mode):
        if owner == "agent":
            await sandbox.write_file(path, data, int(mode, 8))
            continue
        res = await sandbox.exec(
            ["bash", "-c", _PUT, "put", path, mode], input=data, user="root", timeout=60
        )
        if not res.ok:
            raise TaskSetupError(f"{fam.name}: copying {asset.src} to {path}: {_tail(res.stderr)}")


def local_problem(fam: NativeTaskFamily, e: TaskEntry) -> str | None:
    """Why this task cannot run on the local sandbox, or None (checked at plan time too)."""
    if (e.setup or e.agent_setup) and not fam.spec.local_ok:
        return (f"{fam.name}/{e.id}: its setup script runs as root and needs the docker sandbox "
                "(set local_ok: true in task.yaml only if it touches nothing outside its "
                "directory)")
    workdir = fam.spec.sandbox.workdir
    for dest, asset in e.files.items():
        owner = asset.owner or ("agent" if _under(dest, workdir) else "root")
        if owner != "agent" or not _under(dest, workdir):
            return (f"{fam.name}/{e.id}: file {dest} is outside the workdir or owned by root; "
                    "this task needs the docker sandbox")
    return None


async def run_setup(fam: NativeTaskFamily, sandbox: Sandbox, e: TaskEntry) -> None:
    """Copy the task's files, run its setup script as root, then its agent_setup as the agent.

    Raises:
        ConfigError: the task cannot run on this sandbox backend (root setup on local).
        TaskSetupError: a copy or the setup script failed.
    """
    scripts = [(e.setup, "root"), (e.agent_setup, fam.spec.sandbox.user)]
    problem = local_problem(fam, e) if sandbox.name == "local" else None
    if problem is not None:
        raise ConfigError(problem)
    for dest, asset in e.files.items():
        await _copy(fam, sandbox, dest, asset)
    for dest, sf in e.from_services.items():
        if not isinstance(sandbox, ServiceSandbox):
            raise ConfigError(f"{fam.name}/{e.id}: from_services needs a sandbox with services (docker)")
        got = await sandbox.exec_service(sf.service, ["cat", "--", sf.path], user="root", timeout=60)
        if not got.ok:
            raise TaskSetupError(f"{fam.name}/{e.id}: reading {sf.path} from service {sf.service}: "
                                 f"{_tail(got.stderr)}")
        res = await sandbox.exec(["bash", "-c", _PUT, "put", dest, sf.mode], input=got.stdout,
                                 user="root", timeout=60)
        if not res.ok:
            raise TaskSetupError(f"{fam.name}/{e.id}: copying {sf.service}:{sf.path} to {dest}: {_tail(res.stderr)}")
    for rel, user in scripts:
        if rel is None:
            continue
        res = await sandbox.exec(
            ["bash", "-c", (fam.root / rel).read_text(), "setup"],
            user=user,
            timeout=fam.spec.setup_timeout_s,
            env={
                "PTEBENCH_TASK_ID": e.id,
                "PTEBENCH_FAMILY": fam.name,
                "PTEBENCH_AGENT_USER": fam.spec.sandbox.user,
                "PTEBENCH_WORKDIR": fam.spec.sandbox.workdir,
            },
        )
        if not res.ok:
            why = "timed out" if res.timed_out else f"exit {res.exit_code}"
            raise TaskSetupError(f"{fam.name}/{e.id}: {rel} (as {user}) {why}: {_tail(res.stderr)}")


async def resolve_target(
    fam: NativeTaskFamily, sandbox: Sandbox | None, e: TaskEntry
) -> str | None:
    """The target as text (a sha256 target yields its hash).

    Raises:
        TaskScoringError: a from_sandbox command failed or printed nothing.
    """
    t = e.target
    if t is None:
        return None
    if t.literal is not None:
        return t.literal
    if t.sha256 is not None:
        return t.sha256
    assert t.from_sandbox is not None  # Target validation guarantees one form
    if sandbox is None:
        raise TaskScoringError(f"{fam.name}/{e.id}: from_sandbox target without a sandbox")
    if t.from_sandbox.service is not None:
        if not isinstance(sandbox, ServiceSandbox):
            raise TaskScoringError(f"{fam.name}/{e.id}: the {sandbox.name} sandbox has no services")
        res = await sandbox.exec_service(
            t.from_sandbox.service, ["bash", "-c", t.from_sandbox.cmd],
            user=t.from_sandbox.user, timeout=fam.spec.scoring.timeout_s,
        )
    else:
        res = await sandbox.exec(
            ["bash", "-c", t.from_sandbox.cmd],
            user=t.from_sandbox.user,
            timeout=fam.spec.scoring.timeout_s,
        )
    value = res.stdout.strip()
    if not res.ok or not value:
        raise TaskScoringError(
            f"{fam.name}/{e.id}: target command {t.from_sandbox.cmd!r} failed "
            f"(exit {res.exit_code}): {_tail(res.stderr)}"
        )
    return value


def _number(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        found = re.findall(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", text)
        return float(found[-1]) if found else None


def compare(
    method: str,
    submission: str,
    target: str,
    *,
    case_sensitive: bool = True,
    tolerance: float = 1e-6,
    hashed: bool = False,
) -> Score:
    """Score a text submission against a text target with one of the answer methods."""
    import hashlib

    sub = submission.strip()
    tgt = target.strip()
    if hashed:
        digest = hashlib.sha256(sub.encode()).hexdigest()
        ok = digest == tgt
        return Score(value=float(ok), explanation="hash matches" if ok else "hash differs")
    if not case_sensitive and method in ("exact", "includes"):
        sub, tgt = sub.lower(), tgt.lower()
    if method == "exact":
        ok = sub == tgt
    elif method == "includes":
        ok = tgt in sub
    elif method == "regex":
        flags = 0 if case_sensitive else re.IGNORECASE
        ok = re.search(tgt, sub, flags) is not None
    elif method == "numeric":
        got, want = _number(sub), float(tgt)
        if got is None:
            return Score(value=0.0, explanation="no number in the submission")
        ok = math.isclose(got, want, rel_tol=0.0, abs_tol=tolerance * max(1.0, abs(want)))
    else:
        raise ValueError(f"{method} is not an answer-comparison method")
    return Score(value=float(ok), explanation=f"{method}: {'match' if ok else 'no match'}")


async def _check_script(
    fam: NativeTaskFamily, sandbox: Sandbox | None, submission: str, target: str | None
) -> Score:
    sc = fam.spec.scoring
    assert sc.script is not None  # Scoring validation guarantees it
    if sandbox is None:
        raise TaskScoringError(f"{fam.name}: check_script needs a sandbox")
    env = {"PTEBENCH_TARGET": target or ""}
    if len(submission) <= _ENV_SUBMISSION_MAX:
        env["PTEBENCH_SUBMISSION"] = submission
    res = await sandbox.exec(
        ["bash", "-c", (fam.root / sc.script).read_text(), "check"],
        input=submission,
        user=sc.user,
        env=env,
        timeout=sc.timeout_s,
    )
    if res.timed_out:
        return Score(value=0.0, explanation=f"check script timed out after {sc.timeout_s:g}s")
    if res.exit_code in _CANNOT_RUN or _FORK_FAILED.search(res.stderr):
        raise SandboxBrokenError(
            f"{fam.name}: infrastructure error, the check script could not run "
            f"(exit {res.exit_code}): {_tail(res.stderr, 300)}")
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    why = _tail(lines[-1] if lines else res.stderr, 300)
    if res.exit_code != 0:
        return Score(value=0.0, explanation=f"check failed (exit {res.exit_code}): {why}")
    if lines:
        try:
            v = float(lines[-1].strip())
        except ValueError:
            v = None
        if v is not None and 0.0 <= v <= 1.0:
            return Score(value=v, explanation=f"check script scored {v:g}")
    return Score(value=1.0, explanation=f"check passed: {why}")


async def _python(fam: NativeTaskFamily, submission: str | None, target: str | None) -> Score:
    from ptebench.tasks.native import import_task_function

    sc = fam.spec.scoring
    assert sc.function is not None  # Scoring validation guarantees it
    fn = import_task_function(fam.root, sc.function)
    try:
        got = await asyncio.wait_for(asyncio.wrap_future(_off_loop(fn, submission, target)),
                                     sc.timeout_s)
    except TimeoutError:
        raise TaskScoringError(
            f"{fam.name}: {sc.function} did not return within timeout_s={sc.timeout_s:g}s "
            "(it keeps running in a background thread until it returns)") from None
    if isinstance(got, Score):
        return got
    if isinstance(got, bool | int | float) and 0 <= float(got) <= 1:
        return Score(value=float(got), explanation=f"{sc.function} returned {got}")
    raise TaskScoringError(f"{fam.name}: {sc.function} returned {got!r}, not a score in [0, 1]")


def _off_loop(fn: Callable[..., Any], *args: Any) -> Future[Any]:
    """Call a host scorer in its own daemon thread (an awaitable result is run to completion
    there): a blocking scorer never stalls the event loop, its timeout is enforced by the
    caller, and a stuck one cannot hold up the process's exit on SIGTERM."""
    fut: Future[Any] = Future()

    def target() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                aw: Any = result

                async def wait() -> Any:
                    return await aw
                result = asyncio.run(wait())
        except BaseException as e:
            error = e
        # a scorer past its timeout finds its future cancelled: its late outcome is dropped
        with contextlib.suppress(InvalidStateError):
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(result)

    threading.Thread(target=target, daemon=True, name="ptebench-scorer").start()
    return fut


async def score_entry(
    fam: NativeTaskFamily, sandbox: Sandbox | None, e: TaskEntry, submission: str | None
) -> Score:
    """Score ``submission`` for task ``e`` as the family's ``scoring`` block says.

    Raises:
        TaskScoringError: the scorer could not decide (missing sandbox, failed target read).
    """
    sc = fam.spec.scoring
    sub = submission
    if sc.submission.startswith("file:"):
        path = sc.submission[len("file:") :]
        if sandbox is None:
            raise TaskScoringError(f"{fam.name}: a file submission needs a sandbox")
        try:
            sub = (await sandbox.read_file(path)).decode("utf-8", errors="replace")
        except FileNotFoundError:
            return Score(value=0.0, explanation=f"{path} does not exist")
    if sc.method == "check_script":
        return await _check_script(fam, sandbox, sub or "", await resolve_target(fam, sandbox, e))
    if sc.method == "python":
        return await _python(fam, sub, await resolve_target(fam, sandbox, e))
    if sub is None or not sub.strip():
        return Score(value=0.0, explanation="empty submission")
    target = await resolve_target(fam, sandbox, e)
    assert target is not None  # check_entries requires a target for answer methods
    hashed = e.target is not None and e.target.sha256 is not None
    return compare(
        sc.method,
        sub,
        target,
        case_sensitive=sc.case_sensitive,
        tolerance=sc.tolerance,
        hashed=hashed,
    )
