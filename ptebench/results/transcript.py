"""Episode transcripts on disk: ``transcripts.sqlite`` beside ``episodes.jsonl``.

Why SQLite and not JSON-lines shards: the rows of episodes that finish together are written
in one transaction (WAL journal, ``synchronous=FULL``: one fsync per batch, a SIGKILL or power
cut loses at most the episodes not yet acknowledged, and a torn write is rolled back, never
read); any episode is
read by its id without scanning the run; ``ptebench show`` can read while a run writes; and
it is in the standard library (the run history catalog uses it too).

Each row holds one ``Transcript`` (``ptebench.models.transcript``) as zlib-compressed JSON.
Within it, chat messages, tool specs and text prompts are stored once per episode and
referenced by the calls, so resent histories cost nothing twice.

The runner writes an episode's transcript *before* its line in ``episodes.jsonl``: every
recorded episode has its transcript; an episode cut off between the two is re-run on
``--resume`` and its transcript replaced.

    from ptebench.results import load_transcript
    t = load_transcript("runs/quickstart", episode_id)
    t.request(0).messages, t.response(0).choices[0].text, t.actions[0].shown, t.traceback
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from ptebench.errors import UserError
from ptebench.models.transcript import TRANSCRIPT_VERSION, Transcript
from ptebench.records import EpisodeSpec

TRANSCRIPTS = "transcripts.sqlite"
"""File name of a run folder's transcript store."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS transcripts (
    episode_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    raw_bytes INTEGER NOT NULL,
    data BLOB NOT NULL
);
"""

_INTERRUPTED_SCHEMA = """
CREATE TABLE IF NOT EXISTS interrupted (
    episode_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    raw_bytes INTEGER NOT NULL,
    spec TEXT NOT NULL,
    reason TEXT NOT NULL,
    data BLOB NOT NULL
)
"""
"""Episodes a stop (SIGTERM, Ctrl-C) cut off in flight: what they did so far, including the
model call that was cancelled. Apart from ``transcripts`` so that nothing reading finished
episodes sees them; a later finished transcript of the same id supersedes the row."""

COMPRESS_LEVEL = 6


@dataclass(frozen=True)
class InterruptedEpisode:
    """An episode stopped in flight (``TranscriptStore.interrupted``)."""

    spec: EpisodeSpec
    reason: str
    transcript: Transcript
    superseded: bool
    """A finished transcript of the same episode was recorded since (a ``--resume`` ran it)."""


class TranscriptError(UserError):
    """A transcript that is missing or cannot be read (names the file and what is wrong)."""


def encode(t: Transcript) -> tuple[bytes, int]:
    """(compressed bytes, uncompressed size) of a transcript."""
    raw = t.model_dump_json(exclude_defaults=True).encode()
    return zlib.compress(raw, COMPRESS_LEVEL), len(raw)


def decode(data: bytes, where: str) -> Transcript:
    try:
        raw = zlib.decompress(data)
    except zlib.error as e:
        raise TranscriptError(f"{where}: the transcript is torn or corrupt ({e})") from e
    try:
        return Transcript.model_validate_json(raw)
    except ValidationError as e:
        err = e.errors()[0]
        raise TranscriptError(
            f"{where}: not a transcript of format {TRANSCRIPT_VERSION}: "
            f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}"
        ) from e


class TranscriptStore:
    """Reads and writes one run folder's ``transcripts.sqlite``."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir)
        self.path = self.dir / TRANSCRIPTS
        self._db: sqlite3.Connection | None = None
        self._writable = False
        # one writer at a time on the shared connection: the group commit writes batches
        # from its thread while a stop keeps interrupted episodes from the event loop's
        self._write_lock = threading.Lock()

    def exists(self) -> bool:
        return self.path.exists()

    # -- writing ----------------------------------------------------------------------------
    def open_for_writing(self) -> None:
        if self._db is not None and self._writable:
            return
        self.close()
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('version', ?)", (str(TRANSCRIPT_VERSION),))
        except sqlite3.DatabaseError as e:
            raise TranscriptError(f"{self.path}: cannot open the transcript store ({e}); "
                                  "move it aside to record new transcripts") from e
        self._db, self._writable = db, True

    def put(self, transcript: Transcript) -> int:
        """Store (or replace) one episode's transcript durably. Returns the bytes stored."""
        return self.put_many([transcript])

    def put_many(self, transcripts: list[Transcript]) -> int:
        """Store (or replace) several episodes' transcripts in one transaction: one commit,
        one fsync, all or none of them. Returns the bytes stored.

        Raises:
            sqlite3.Error: the write failed (the transaction is rolled back).
        """
        self.open_for_writing()
        db = self._db
        assert db is not None  # opened above
        rows = []
        for t in transcripts:
            data, raw = encode(t)
            rows.append((t.episode_id, TRANSCRIPT_VERSION, raw, data))
        if not rows:
            return 0
        with self._write_lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT OR REPLACE INTO transcripts VALUES (?, ?, ?, ?)", rows)
                db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
        return sum(len(r[3]) for r in rows)

    def put_interrupted(self, spec: EpisodeSpec, transcript: Transcript, reason: str) -> int:
        """Keep what an episode cut off in flight did (its calls so far, the cancelled one
        included) in the ``interrupted`` table; the episode stays unfinished, so
        ``--resume`` runs it again. Returns the bytes stored."""
        self.open_for_writing()
        assert self._db is not None
        data, raw = encode(transcript)
        with self._write_lock:  # never inside a batch the commit thread has open
            self._db.execute(_INTERRUPTED_SCHEMA)
            self._db.execute(
                "INSERT OR REPLACE INTO interrupted VALUES (?, ?, ?, ?, ?, ?)",
                (spec.episode_id, TRANSCRIPT_VERSION, raw, spec.model_dump_json(), reason, data),
            )
        return len(data)

    def interrupted(self, include_superseded: bool = False) -> list[InterruptedEpisode]:
        """Episodes stopped in flight, oldest first; those a later session finished are left
        out unless ``include_superseded``. A store without the table (older runs) has none.

        Raises:
            TranscriptError: a torn or corrupt store or row.
        """
        try:
            rows = self._reader().execute(
                "SELECT i.episode_id, i.spec, i.reason, i.data, t.episode_id IS NOT NULL "
                "FROM interrupted i LEFT JOIN transcripts t USING (episode_id) "
                "ORDER BY i.rowid").fetchall()
        except sqlite3.OperationalError as e:
            if "no such table: interrupted" in str(e):
                return []
            raise TranscriptError(f"{self.path}: torn or corrupt ({e})") from e
        except sqlite3.DatabaseError as e:
            raise TranscriptError(f"{self.path}: torn or corrupt ({e})") from e
        out = []
        for eid, spec, reason, data, done in rows:
            if done and not include_superseded:
                continue
            where = f"{self.path} (interrupted episode {eid})"
            out.append(InterruptedEpisode(EpisodeSpec.model_validate_json(spec), str(reason),
                                          decode(bytes(data), where), bool(done)))
        return out

    # -- reading ----------------------------------------------------------------------------
    def _reader(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        if not self.path.exists():
            raise TranscriptError(
                f"{self.path}: missing: this run has no transcripts (recorded by a ptebench "
                "before transcripts, or the file was removed); its episodes are in "
                f"{self.dir / 'episodes.jsonl'}"
            )
        try:
            # rw, never create: opening may replay a crashed writer's journal, which only
            # restores committed rows; nothing recorded is rewritten.
            db = sqlite3.connect(f"file:{self.path}?mode=rw", uri=True, isolation_level=None,
                                 check_same_thread=False)
            version = db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        except sqlite3.DatabaseError as e:
            raise TranscriptError(f"{self.path}: torn or not a transcript store ({e})") from e
        if version is None or int(version[0]) > TRANSCRIPT_VERSION:
            db.close()
            raise TranscriptError(
                f"{self.path}: transcript format {version[0] if version else 'unknown'} is newer "
                f"than this ptebench reads ({TRANSCRIPT_VERSION}): upgrade ptebench"
            )
        self._db = db
        return db

    def ids(self) -> set[str]:
        try:
            return {r[0] for r in self._reader().execute("SELECT episode_id FROM transcripts")}
        except sqlite3.DatabaseError as e:
            raise TranscriptError(f"{self.path}: torn or corrupt ({e})") from e

    def sizes(self) -> dict[str, tuple[int, int]]:
        """episode id → (stored bytes, uncompressed bytes)."""
        try:
            rows = self._reader().execute(
                "SELECT episode_id, length(data), raw_bytes FROM transcripts")
            return {r[0]: (int(r[1]), int(r[2])) for r in rows}
        except sqlite3.DatabaseError as e:
            raise TranscriptError(f"{self.path}: torn or corrupt ({e})") from e

    def get(self, episode_id: str) -> Transcript:
        """One episode's transcript.

        Raises:
            TranscriptError: no store, a torn or corrupt store or row, or no such episode.
        """
        try:
            row = self._reader().execute(
                "SELECT version, data FROM transcripts WHERE episode_id = ?", (episode_id,)
            ).fetchone()
        except sqlite3.DatabaseError as e:
            raise TranscriptError(f"{self.path}: torn or corrupt ({e})") from e
        if row is None:
            raise TranscriptError(f"{self.path}: no transcript for episode {episode_id!r}")
        return decode(bytes(row[1]), f"{self.path} (episode {episode_id})")

    def __iter__(self) -> Iterator[Transcript]:
        try:
            rows = self._reader().execute(
                "SELECT episode_id, data FROM transcripts ORDER BY rowid").fetchall()
        except sqlite3.DatabaseError as e:
            raise TranscriptError(f"{self.path}: torn or corrupt ({e})") from e
        for eid, data in rows:
            yield decode(bytes(data), f"{self.path} (episode {eid})")

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db, self._writable = None, False


def load_transcript(run_dir: str | Path, episode_id: str) -> Transcript:
    """The transcript of one episode of a run folder.

    Raises:
        TranscriptError (a UserError): the run has no transcripts, the store is torn, or the
            episode has none — the message names the file and what is missing.
    """
    store = TranscriptStore(_run_dir(run_dir))
    try:
        return store.get(episode_id)
    finally:
        store.close()


def iter_transcripts(run_dir: str | Path) -> Iterator[Transcript]:
    """Every transcript of a run folder, in the order they were written."""
    store = TranscriptStore(_run_dir(run_dir))
    try:
        yield from store
    finally:
        store.close()


def _run_dir(path: str | Path) -> Path:
    p = Path(path)
    if p.name == "episodes.jsonl" or p.name == TRANSCRIPTS:
        p = p.parent
    if not p.is_dir():
        raise UserError(f"{path}: no ptebench run folder here")
    return p
