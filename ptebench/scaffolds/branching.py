"""Sandbox state for tree search: each node acts in its own copy of the environment.

Two ways to give a node its sandbox state, chosen by a scaffold param and recorded in the
episode metrics (``branching``, ``forks``, ``replayed_actions``, ``branch_cost_s``):

* ``snapshot`` — a child is a fork (snapshot + restore) of its parent's live environment;
  forks stay open while the node may still be expanded, at most ``Brancher.max_open`` at
  once (past that the oldest is closed, and its node is replayed if it is ever expanded).
* ``replay`` — nothing stays open: a child starts from a fork of the episode's initial state
  and the node's actions are replayed into it (cheaper in memory, costlier in time; exact
  only for deterministic actions).

Either way siblings never see each other's side effects. The scaffolds never act in the
episode's root sandbox during the search; when the search ends, ``adopt`` replays the chosen
node's actions into the root so a state-scored task is scored on the submitted state.
Replayed actions are bookkeeping, not agent decisions: they are not recorded as steps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from ptebench.records import Action
from ptebench.sandbox.base import Sandbox
from ptebench.scaffolds.base import Environment, EpisodeContext

BranchMode = Literal["snapshot", "replay"]


@dataclass
class NodeState:
    """Where a node's sandbox state comes from: the actions from the root, and (snapshot
    mode) the live environment holding it."""

    actions: list[Action] = field(default_factory=list)
    env: Environment | None = None


async def replay(sandbox: Sandbox, actions: list[Action], ctx: EpisodeContext) -> None:
    """Run ``actions`` in ``sandbox`` the way Environment.run would, without recording."""
    for a in actions:
        if a.tool == "python":
            await sandbox.exec(["python3", "-"], timeout=ctx.limits.tool_timeout_s, input=a.input)
        elif a.tool == "bash":
            await sandbox.exec(a.input, timeout=ctx.limits.tool_timeout_s)


class Brancher:
    """Hands out environments at a node's state and closes them all at the end."""

    max_open = 16
    """Snapshot mode: most sandbox copies kept open at once (each is a container)."""

    def __init__(self, ctx: EpisodeContext, mode: BranchMode) -> None:
        self.ctx = ctx
        self.mode = mode
        self.stateful = ctx.env.sandbox is not None
        self._open: list[Environment] = []
        self.forks = 0
        self.replayed = 0
        self.evicted = 0
        self.cost_s = 0.0
        self._root_snapshot: str | None = None

    async def child(self, parent: NodeState) -> Environment:
        """A fresh environment in the parent's state, for one child to act in: a fork of the
        parent's live environment (snapshot mode, while it is open), else a copy of the
        initial state with the parent's actions replayed into it."""
        if not self.stateful:
            return self.ctx.env
        t = time.monotonic()
        if self.mode == "snapshot" and parent.env is not None and parent.env in self._open:
            env = await parent.env.fork()
        else:
            env = await self._from_root()
            if parent.actions:
                assert env.sandbox is not None
                await replay(env.sandbox, parent.actions, self.ctx)
                env.actions += parent.actions
                self.replayed += len(parent.actions)
        self.forks += 1
        self.cost_s += time.monotonic() - t
        self._open.append(env)
        self._record()
        return env

    async def _from_root(self) -> Environment:
        """A copy of the initial state. The root is never acted in during the search, so one
        snapshot of it serves every copy (a Docker commit costs seconds)."""
        root = self.ctx.env
        assert root.sandbox is not None
        if self._root_snapshot is None:
            self._root_snapshot = await root.sandbox.snapshot()
        box = await root.sandbox.restore(self._root_snapshot)
        env = Environment(box, root.tools, self.ctx.limits, self.ctx.trace, f"r{self.forks + 1}")
        env.actions = list(root.actions)
        return env

    async def keep(self, env: Environment) -> Environment | None:
        """After a child acted: the env to keep for its later expansion (snapshot mode), or
        None after closing it (replay mode: the actions suffice)."""
        if env is self.ctx.env:
            return None
        if self.mode == "snapshot":
            while len(self._open) > self.max_open:
                # the oldest kept copy goes; its node is replayed if it is ever expanded
                await self._open.pop(0).close()
                self.evicted += 1
            return env
        await self.discard(env)
        return None

    async def discard(self, env: Environment | None) -> None:
        """Close a node's environment that will never be expanded again."""
        if env is None or env is self.ctx.env or env not in self._open:
            return
        self._open.remove(env)
        await env.close()

    async def adopt(self, state: NodeState) -> None:
        """Bring the episode's root sandbox to the chosen node's state (agentic tasks)."""
        if self.stateful and self.ctx.task.kind == "agentic" and state.actions:
            assert self.ctx.env.sandbox is not None
            t = time.monotonic()
            await replay(self.ctx.env.sandbox, state.actions, self.ctx)
            self.ctx.env.actions += state.actions
            self.cost_s += time.monotonic() - t
            self.ctx.metrics["adopted_actions"] = len(state.actions)
            self._record()

    async def close_all(self) -> None:
        """Close every environment still open (always call, e.g. in ``finally``)."""
        while self._open:
            await self._open.pop().close()
        self._record()

    def _record(self) -> None:
        m = self.ctx.metrics
        m["branching"] = self.mode if self.stateful else "none"
        m["forks"] = self.forks
        m["replayed_actions"] = self.replayed
        if self.evicted:
            m["evicted_forks"] = self.evicted
        m["branch_cost_s"] = round(self.cost_s, 4)
