"""Where Docker snapshots live: files on disk under a per-run budget, never the runner's memory.

A snapshot of a sandbox is a few tar archives (its workdir and tmpfs mounts). Kept in memory
they made the runner grow with every fork (six snapshots of a 150 MB sandbox took it from
42 MB to 950 MB). Here each snapshot is a folder of files under one directory per provider;
a snapshot larger than ``max_bytes``, or one that would take the total past ``budget_bytes``,
is refused with a SandboxError naming both figures, and the refusal is kept in
``refusals`` (the episode's error reason says it too). Snapshots are freed when the fork
that needed them is made (``discard_snapshot``), when their episode's sandbox closes, and
when the provider closes.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ptebench.errors import SandboxError

MB = 1 << 20
DEFAULT_MAX_MB = 2048
"""Largest single snapshot (the workdir and tmpfs caps of a default sandbox are far below)."""
DEFAULT_BUDGET_MB = 16384
"""Disk all live snapshots of one provider may hold (also capped at half the free space)."""


class SnapshotStore:
    """Snapshot folders under one directory, with a size cap and a total budget."""

    def __init__(self, root: str | Path | None = None, budget_mb: int | None = None,
                 max_mb: int | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ptebench-snapshots-",
                                          dir=str(root) if root else None))
        free = shutil.disk_usage(self.root).free
        self.budget = min((budget_mb or DEFAULT_BUDGET_MB) * MB, free // 2)
        self.max = (max_mb or DEFAULT_MAX_MB) * MB
        self.sizes: dict[str, int] = {}
        self.total = 0
        self.peak = 0
        self.refusals: list[str] = []

    def begin(self, sid: str) -> Path:
        if self.room(None) <= 0:
            raise self.refuse(sid, 0)
        d = self.root / sid
        d.mkdir()
        self.sizes[sid] = 0
        return d

    def room(self, sid: str | None) -> int:
        """Bytes ``sid`` may still add."""
        mine = self.sizes.get(sid, 0) if sid else 0
        return max(0, min(self.max - mine, self.budget - self.total))

    def charge(self, sid: str, n: int) -> None:
        if n > self.room(sid):
            size = self.sizes.get(sid, 0) + n
            self.drop(sid)
            raise self.refuse(sid, size)
        self.sizes[sid] = self.sizes.get(sid, 0) + n
        self.total += n
        self.peak = max(self.peak, self.total)

    def refuse(self, sid: str, size: int) -> SandboxError:
        why = (f"snapshot refused: {size / MB:.1f} MB so far, cap {self.max / MB:.0f} MB per "
               f"snapshot; {self.total / MB:.1f} MB of the {self.budget / MB:.0f} MB budget "
               f"held by {len(self.sizes)} live snapshots (sandbox_options snapshot_max_mb / "
               "snapshot_budget_mb raise them)")
        self.refusals.append(why)
        return SandboxError(why)

    def drop(self, sid: str) -> None:
        self.total -= self.sizes.pop(sid, 0)
        shutil.rmtree(self.root / sid, ignore_errors=True)

    def close(self) -> None:
        for sid in list(self.sizes):
            self.drop(sid)
        shutil.rmtree(self.root, ignore_errors=True)
