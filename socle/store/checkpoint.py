"""SQLite WAL checkpoints run in a thread of their own, off a latency-critical writer's commits.

By default SQLite checkpoints the WAL inside the commit that makes it pass 1,000 pages: that commit
copies the pages back to the database and fsyncs it (in bench/RESULTS.md section 3, audit commits
of median 0.7 ms had a mean of 4.1 ms and a max of 43 ms for that reason), and every read waiting
for its audit trace waited for it too. The audit writer's connection therefore turns its
auto-checkpoint off while it holds the connection (`without_autocheckpoint`) and nudges a
`WalCheckpointer` every few batches instead: the checkpoint (PASSIVE: it never blocks the writer
nor readers) copies the WAL's pages back beside the next batches.

A background checkpoint alone does not bound the WAL: SQLite rewinds the WAL only when a write
transaction starts after a checkpoint that copied *every* frame, and a busy writer has always
appended more by then (300 commits grew a WAL to 36 MB in tests/store/test_checkpoint.py). So the
checkpointer reports how long the WAL was (`wal_frames`), and once that passes `limit` pages the
writer finishes the job itself between two batches (`finish`): little is left to copy, and its
next transaction rewinds the WAL. The writer also finishes every `finish_every` batches whatever
the checkpointer reported (a starved checkpointer thread may report nothing for a while), so the
WAL stays within what that many batches write.

Other connections keep SQLite's default auto-checkpoint. PostgreSQL has nothing to do here.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import Engine

log = logging.getLogger(__name__)

DEFAULT_AUTOCHECKPOINT = 1000  # pages: SQLite's own default, restored when the connection goes back


def set_autocheckpoint(driver_connection: Any, pages: int) -> None:
    """`PRAGMA wal_autocheckpoint` on one sqlite3 connection (outside any transaction)."""
    cursor = driver_connection.cursor()
    try:
        cursor.execute(f"PRAGMA wal_autocheckpoint={int(pages)}")
        cursor.fetchall()
    finally:
        cursor.close()


def checkpoint(driver_connection: Any) -> int:
    """A PASSIVE checkpoint on one sqlite3 connection; returns the WAL's length in pages before it.

    The store's SQLite connections run outside driver-level transactions (isolation_level None),
    so this runs as is, without taking the write lock.
    """
    cursor = driver_connection.cursor()
    try:
        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
        _busy, frames, _copied = cursor.fetchone()
        return max(0, int(frames))
    finally:
        cursor.close()


class WalCheckpointer:
    """Checkpoints `engine`'s WAL when nudged, in a daemon thread that stops when idle. Thread-safe."""

    def __init__(
        self, engine: Engine, *, limit: int = 2 * DEFAULT_AUTOCHECKPOINT, idle_exit: float = 5.0
    ) -> None:
        self.engine = engine
        self.limit = limit
        self.idle_exit = idle_exit
        self.checkpoints = 0  # completed runs (for tests and benches)
        self.wal_frames = 0  # the WAL's length at the last checkpoint, in pages
        self._wanted = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        # SQLite runs one checkpoint at a time and answers BUSY to a second: the writer's `finish`
        # waits for a background run instead of being refused (the WAL then grew past its bound).
        self._checkpointing = threading.Lock()

    def nudge(self) -> None:
        """Ask for a checkpoint soon; returns at once. Nudges made during a run ask for one more."""
        self._wanted.set()
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="socle-wal-checkpoint", daemon=True)
                self._thread.start()

    @property
    def must_finish(self) -> bool:
        """True when the WAL passed `limit` pages: the writer should `finish` between two batches."""
        return self.wal_frames > self.limit

    def finish(self, driver_connection: Any) -> None:
        """The writer's own checkpoint, between batches, so that its next transaction rewinds the WAL."""
        with self._checkpointing:
            checkpoint(driver_connection)
        self.wal_frames = 0

    def _run(self) -> None:
        raw: Any = None
        try:
            while True:
                if not self._wanted.wait(timeout=self.idle_exit):
                    with self._start_lock:
                        if not self._wanted.is_set():
                            self._thread = None
                            return
                    continue
                self._wanted.clear()
                try:
                    if raw is None:
                        raw = self.engine.raw_connection()
                    with self._checkpointing:
                        self.wal_frames = checkpoint(raw)
                    self.checkpoints += 1
                except Exception:  # the next nudge retries; the commits themselves are unaffected
                    log.warning("WAL checkpoint failed", exc_info=True)
                    if raw is not None:
                        raw.invalidate()
                        raw = None
        finally:
            if raw is not None:
                raw.close()
