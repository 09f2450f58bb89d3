"""Group commit: the episodes that finish while one batch is being made durable form the next.

Each fsync costs milliseconds (two per append: the transcripts' commit and the episode
lines). Written one episode at a time, on the event loop, they capped a run at a few
hundred episodes per second and stalled every episode in flight meanwhile. ``GroupCommit``
writes from one thread of its own: an episode handed over (``submit``) waits for the batch
being written, then goes with everything that arrived meanwhile in one ``append_many``. No
timer adds latency — batches grow only when episodes arrive faster than the disk syncs.

An episode counts as recorded — its future resolves, ``on_recorded`` runs (the progress
display, the run's counts) — only once its batch is durable: its transcript committed, then
its line written and fsynced, exactly as for a single append.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable

from ptebench.models.transcript import Transcript
from ptebench.records import Episode
from ptebench.results.store import ResultsWriteError, RunStore

MAX_BATCH = 128
"""Episodes per write at most (a batch is all-or-nothing; its memory and fsync stay small)."""

_Item = tuple[Episode, Transcript | None, "asyncio.Future[bool]"]


class GroupCommit:
    """Appends finished episodes to ``store`` in batches, off the event loop.

    One per run and event loop; ``aclose`` waits for everything handed over so far.
    """

    def __init__(self, store: RunStore, on_recorded: Callable[[Episode], None]) -> None:
        self.store = store
        self.on_recorded = on_recorded
        self._queue: list[_Item] = []
        self._task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None
        """Why a batch could not be written (then nothing more is)."""
        self.failed = asyncio.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="ptebench-commit")
        self.largest_batch = 0

    def submit(self, episode: Episode, transcript: Transcript | None) -> asyncio.Future[bool]:
        """Hand over one finished episode without waiting. The future resolves once it is
        durable (True) or known to be recorded already (False); cancelling a waiter does
        not withdraw the episode.

        Raises:
            ResultsWriteError: an earlier batch could not be written.
        """
        if self.error is not None:
            raise self.error
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        self._queue.append((episode, transcript, fut))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        return fut

    async def record(self, episode: Episode, transcript: Transcript | None) -> bool:
        """``submit`` and wait until the episode is durable.

        Raises:
            ResultsWriteError: its batch (or an earlier one) could not be written.
        """
        return await asyncio.shield(self.submit(episode, transcript))

    @property
    def backlog(self) -> int:
        """Episodes handed over and not yet in a batch being written."""
        return len(self._queue)

    def _write(self, items: list[tuple[Episode, Transcript | None]],
               ) -> tuple[list[Episode], BaseException | None]:
        """In the writer thread: one batch; if the disk refuses it, its episodes one at a
        time, so that as many are recorded as fit (a full disk then keeps every episode
        that found room, as single appends did)."""
        try:
            return self.store.append_many(items), None
        except ResultsWriteError as e:
            if len(items) == 1:
                return [], e
        written: list[Episode] = []
        for item in items:
            try:
                written += self.store.append_many([item])
            except ResultsWriteError as e:
                return written, e
        return written, None

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            self.largest_batch = max(self.largest_batch, len(batch))
            items = [(e, t) for e, t, _ in batch]
            try:
                written, error = await loop.run_in_executor(self._pool, self._write, items)
            except BaseException as e:  # not a write error: a bug, surfaced the same way
                written, error = [], e
            ids = {id(e) for e in written}
            for e, _, fut in batch:
                ok = id(e) in ids
                if error is not None and not ok:
                    continue
                try:
                    if ok:
                        self.on_recorded(e)
                except Exception as err:  # a listener's bug surfaces in its worker
                    if not fut.done():
                        fut.set_exception(err)
                    continue
                if not fut.done():
                    fut.set_result(ok)
            if error is not None:  # the disk refused it: fail the rest and what follows
                self.error = error
                self.failed.set()
                for _, _, fut in [*batch, *self._queue]:
                    if not fut.done():
                        fut.set_exception(error)
                        fut.exception()  # retrieved: a withdrawn caller must not warn
                self._queue = []
                return

    async def flush(self) -> None:
        """Wait until every episode handed over is written.

        Raises:
            ResultsWriteError: a batch could not be written.
        """
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
        if self.error is not None:
            raise self.error

    async def aclose(self) -> None:
        """Write what was handed over (errors stay in ``error``) and stop the thread."""
        with contextlib.suppress(Exception):
            await self.flush()
        self._pool.shutdown(wait=True)
