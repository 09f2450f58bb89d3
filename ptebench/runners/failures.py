"""Failure classes of errored episodes, and the verdict of a run on them.

An errored episode records where it broke (``Episode.failure``):

- ``model``: the provider failed for good (HTTP 4xx/5xx after retries, context length);
- ``sandbox``: infrastructure — the engine failed, the image is missing, the task's setup
  failed, or the sandbox the task needs could not be granted;
- ``task``: the task's scorer crashed;
- ``harness``: the scaffold or ptebench itself raised.

``verdict`` turns the counts into the exit status of ``ptebench run``: by default a run fails
when any episode had an infrastructure (sandbox) failure, or when every episode errored;
``max_error_rate`` fails it when the share of errored episodes exceeds that rate.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from ptebench.errors import ConfigError, ModelError, SandboxError
from ptebench.records import FAILURE_CLASSES, Episode, FailureClass

Phase = Literal["setup", "scaffold", "score"]


def classify(exc: BaseException, phase: Phase) -> FailureClass:
    """The failure class of an exception raised in one phase of an episode."""
    if isinstance(exc, ModelError):
        return "model"
    if isinstance(exc, SandboxError | ConfigError):
        return "sandbox"
    if _is_engine_error(exc):
        return "sandbox"
    if phase == "setup":
        return "sandbox"
    if phase == "score":
        return "task"
    return "harness"


def _is_engine_error(exc: BaseException) -> bool:
    # The docker SDK's exceptions, recognised by their module so docker stays optional.
    return any(type(c).__module__.startswith("docker.") for c in _chain(exc))


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


@dataclass
class FailureSummary:
    """Errored episodes of a run session by class, with their most common reasons."""

    episodes: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, e: Episode) -> None:
        self.episodes += 1
        if e.status == "error":
            cls = e.failure or "harness"
            self.errors[cls] += 1
            self.reasons[(cls, _first_line(e.reason))] += 1

    @property
    def n_errors(self) -> int:
        return sum(self.errors.values())

    def counts(self) -> str:
        """``model 0 · sandbox 3 · task 0 · harness 1``."""
        return " · ".join(f"{c} {self.errors.get(c, 0)}" for c in FAILURE_CLASSES)

    def top_reasons(self, n: int = 5) -> list[str]:
        return [f"{k} × {cls}: {reason}" for (cls, reason), k in self.reasons.most_common(n)]


def _first_line(reason: str | None) -> str:
    text = (reason or "no reason recorded").strip().splitlines()
    line = text[0] if text else "no reason recorded"
    return line if len(line) <= 200 else line[:197] + "..."


def verdict(summary: FailureSummary, max_error_rate: float | None) -> str | None:
    """Why the run counts as failed, or None when it passes.

    With ``max_error_rate`` None (the default): any sandbox (infrastructure) failure, or every
    episode errored. With a rate: the share of errored episodes exceeds it.
    """
    n, err = summary.episodes, summary.n_errors
    if n == 0 or err == 0:
        return None
    if max_error_rate is None:
        infra = summary.errors.get("sandbox", 0)
        if infra:
            return (f"{infra} of {n} episode(s) failed on infrastructure (sandbox); "
                    "pass --max-error-rate to tolerate errors")
        if err == n:
            return f"every episode errored ({n} of {n})"
        return None
    rate = err / n
    if rate > max_error_rate:
        return f"error rate {rate:.1%} ({err} of {n}) exceeds --max-error-rate {max_error_rate:g}"
    return None
