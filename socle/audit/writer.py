"""Group commit for the traces of reads and failures.

A read has nothing to commit but its trace; one write transaction (and one fsync, under the chain
lock) per read capped read throughput at the disk's commit rate. Instead each read hands its trace
to this writer and waits: a single thread gathers the traces that arrive within a few milliseconds,
writes them in one transaction, and only then releases the waiting requests. The guarantee is
unchanged (no data leaves without its durable trace; if the trace cannot be written the request
fails), the cost is shared by every request of the batch.

The requesting thread prepares its event (builds, serialises and indexes it: `prepare_event`)
before queueing it, so that work runs in parallel with the other requests; the writer thread,
the serial part, only stores the rows and links the whole batch to the chain at once
(`commit_prepared`: two round trips on PostgreSQL).

The writer keeps its connection while batches follow one another (no pool checkout and pre-ping
per batch) and gives it back to the pool as soon as the queue stays empty for `keep_connection`
seconds, or after any failure (a broken connection is never reused). On SQLite that connection
does not checkpoint the WAL in its commits: a `WalCheckpointer` thread does, nudged every
`checkpoint_every` batches and when the writer goes quiet, and the writer finishes a checkpoint
itself, between batches, when the WAL grew too long or at the latest every `finish_every`
batches (`socle.store.checkpoint`).

Writes (create, update, delete, transactions) keep their trace in their own transaction.

A server runs this writer in a child process by default (`socle.audit.writer_process`, which
calls `commit_batch` there): the same batches, off the server's GIL.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

from socle.audit.trail import AccessTrace, PreparedEvent, commit_prepared, prepare_event, record_prepared
from socle.auth.context import RequestContext
from socle.errors import SocleError
from socle.store.checkpoint import DEFAULT_AUTOCHECKPOINT, WalCheckpointer, set_autocheckpoint
from socle.store.engine import is_sqlite

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from socle.store.repository import FhirStore

_Item = tuple[PreparedEvent, "Future[None]"]
log = logging.getLogger(__name__)


PATIENCE = 5.0  # seconds a request waits for the writer before writing its trace itself


class PendingTrace:
    """A trace handed to the writer: what the request waits for before its response leaves.

    `wait` blocks the calling thread; `settled` lets an async caller (the FHIR endpoint) free its
    worker thread meanwhile: the thread goes back to the pool as soon as the read is done, and the
    writer's completion wakes the event loop instead of one sleeping thread per request (each such
    wake-up took a futex call and, on this 2-vCPU VM, an inter-processor interrupt, while the
    writer held the GIL: 13 % of the GIL time on SQLite, bench/RESULTS.md section 3). Either way
    the guarantee is the same: it returns once the trace is committed, raises if it cannot be, and
    after `patience` seconds without the writer starting on it, writes the trace itself, exactly
    once.
    """

    def __init__(
        self,
        store: FhirStore,
        prepared: PreparedEvent | None,
        done: Future[None],
        patience: float = PATIENCE,
        on_unconfirmed: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.patience = patience
        # Process mode: what to do about a writer that let `patience` pass (stop it, so that the
        # next trace starts a new one instead of every request waiting on a stalled one).
        self.on_unconfirmed = on_unconfirmed
        # None when the event is prepared elsewhere (`socle.audit.writer_process`): then a trace
        # still unconfirmed after `patience` fails the request instead of being written here.
        self.prepared = prepared
        self.done = done

    def wait(self, patience: float | None = None) -> None:
        try:
            self.done.result(timeout=self.patience if patience is None else patience)
        except FutureTimeout:
            self._settle_late()

    async def settled(self, patience: float | None = None) -> None:
        patience = self.patience if patience is None else patience
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        # One timer rather than wait_for + shield + wrap_future: those cost a task, two futures and
        # their callbacks per read, all on the event loop's thread.
        timer = loop.call_later(patience, _expire, waiter)
        self.done.add_done_callback(lambda done: _wake(loop, waiter, done))
        try:
            await waiter
        except TimeoutError:
            await asyncio.to_thread(self._settle_late)
        finally:
            timer.cancel()

    def _settle_late(self) -> None:
        if self.done.done() and not self.done.cancelled():
            self.done.result()  # settled just as the patience ran out: its outcome stands
            return
        if self.prepared is None:
            if self.on_unconfirmed is not None:
                self.on_unconfirmed()
            raise TraceNotConfirmed("Le journal d'audit n'a pas confirmé la trace de cet accès")
        if self.done.cancel():
            # The writer had not started on it (stalled behind a lock, say): write it here, alone.
            # A cancelled item is skipped by the writer, so the trace is written exactly once.
            log.warning("audit writer slow: trace written by the request itself")
            with self.store.session() as session:
                record_prepared(session, [self.prepared])
            return
        self.done.result()  # the writer is committing it: wait for the outcome


class _Wakeups(threading.local):
    """Per settling thread: the event-loop waiters to settle when its batch is done, by loop."""

    pending: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], Future[None]]]] | None = None


_wakeups = _Wakeups()


@contextmanager
def batched_wakeups() -> Iterator[None]:
    """Settle every async waiter of the traces settled in this block with one call per event loop.

    `call_soon_threadsafe` writes to the loop's self-pipe each time: a system call, made while
    holding the GIL, for each trace of a batch. Gathered, a batch wakes the loop once.
    """
    outer, _wakeups.pending = _wakeups.pending, {}
    try:
        yield
    finally:
        pending, _wakeups.pending = _wakeups.pending, outer
        for loop, waiters in (pending or {}).items():
            with suppress(RuntimeError):  # a closed loop: no one is waiting any more
                loop.call_soon_threadsafe(_settle_waiters, waiters)


def _wake(loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[None], done: Future[None]) -> None:
    pending = _wakeups.pending
    if pending is not None:
        pending.setdefault(loop, []).append((waiter, done))
        return
    with suppress(RuntimeError):
        loop.call_soon_threadsafe(_settle_waiters, [(waiter, done)])


def _settle_waiters(waiters: list[tuple[asyncio.Future[None], Future[None]]]) -> None:
    """On the event loop: pass each trace's outcome to its waiter (unless it expired or left)."""
    for waiter, done in waiters:
        if waiter.done() or done.cancelled():
            continue
        error = done.exception()
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class TraceNotConfirmed(SocleError):
    """The audit trail did not confirm a trace in time: the data it covers is not released."""

    status = 503
    default_code = "transient"


class AuditWriter:
    """One per store; thread-safe. `write()` returns once the trace is committed."""

    def __init__(
        self,
        store: FhirStore,
        *,
        linger: float = 0.0,
        max_batch: int = 500,
        idle_exit: float = 5.0,
        keep_connection: float = 0.05,
        checkpoint_every: int = 16,
        finish_every: int = 64,
    ) -> None:
        self.store = store
        self.keep_connection = keep_connection
        self.checkpoint_every = checkpoint_every
        # The bound that does not depend on the checkpointer thread getting CPU time: on a starved
        # machine it may report nothing for a long while, and the WAL must not grow meanwhile.
        self.finish_every = finish_every
        self._batches_since_finish = 0
        self.checkpointer = WalCheckpointer(store.engine) if is_sqlite(store.engine) else None
        self._batches_since_checkpoint = 0
        self._connection: Connection | None = None  # the writer thread's own, while busy
        self.linger = linger
        self.idle_exit = idle_exit
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def write(self, ctx: RequestContext, trace: AccessTrace, *, patience: float = PATIENCE) -> None:
        """Queue the trace and return once it is committed (raises if it could not be)."""
        self.submit(ctx, trace).wait(patience)

    def submit(self, ctx: RequestContext, trace: AccessTrace) -> PendingTrace:
        """Queue the trace; the caller must `wait` (or await `settled`) before releasing any data."""
        prepared = prepare_event(self.store, ctx, trace)
        done: Future[None] = Future()
        self._queue.put((prepared, done))
        self._ensure_running()
        return PendingTrace(self.store, prepared, done)

    def _ensure_running(self) -> None:
        # Under the lock: the thread only stops while holding it, after seeing an empty queue, so an
        # item put before this call is either seen by the running thread or by a new one.
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="socle-audit-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                if self._connection is not None:
                    try:
                        first = self._queue.get(timeout=self.keep_connection)
                    except queue.Empty:
                        self.release_connection()  # quiet for now: back to the pool
                        continue
                else:
                    first = self._queue.get(timeout=self.idle_exit)
            except queue.Empty:
                with self._start_lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            # The batch is every trace that queued while the previous one committed; `linger`
            # would wait for more, but under load they come anyway, and when idle it only delays.
            batch = [first]
            deadline = time.monotonic() + self.linger
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    if remaining > 0:
                        batch.append(self._queue.get(timeout=remaining))
                    else:
                        batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self.commit_batch(batch)

    def _connect(self) -> Connection:
        connection = self.store.engine.connect()
        if self.checkpointer is not None:
            set_autocheckpoint(connection.connection.driver_connection, 0)
        else:
            # The batch's statements never change shape: generic plans, planned once per
            # connection. The store's connections force custom plans (searches need them).
            connection.exec_driver_sql("SET plan_cache_mode = auto")
            connection.commit()
        return connection

    @property
    def holds_connection(self) -> bool:
        return self._connection is not None

    def release_connection(self, *, healthy: bool = True) -> None:
        """Give the kept connection back to the pool (a broken one is discarded instead)."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self.checkpointer is not None:
            self._nudge_checkpointer()
        try:
            if not healthy:
                connection.invalidate()  # a failed batch's connection may be broken: never reused
            elif self.checkpointer is not None:
                # Back in the pool, it commits other writes: SQLite's default behaviour again.
                set_autocheckpoint(connection.connection.driver_connection, DEFAULT_AUTOCHECKPOINT)
            else:
                connection.exec_driver_sql("RESET plan_cache_mode")  # the store's default again
                connection.commit()
            connection.close()
        except Exception:  # already broken: discarded rather than pooled
            log.debug("audit writer: giving its connection back failed", exc_info=True)
            connection.invalidate()

    def commit_batch(self, batch: list[_Item]) -> None:
        """Commit the batch's traces in one transaction, then settle each item's future.

        Run by the writer thread, or by the audit process's loop (`socle.audit.writer_process`).
        """
        batch = [item for item in batch if item[1].set_running_or_notify_cancel()]
        if not batch:
            return
        try:
            if self._connection is None:
                self._connection = self._connect()
            commit_prepared(self.store, self._connection, [prepared for prepared, _ in batch])
        except BaseException as exc:  # every waiting request fails with the reason
            self.release_connection(healthy=False)
            with batched_wakeups():
                for _, done in batch:
                    done.set_exception(exc)
            return
        with batched_wakeups():
            for _, done in batch:
                done.set_result(None)
        if self.checkpointer is not None:
            self._batches_since_finish += 1
            # After the waiters are released: off their latency.
            if self.checkpointer.must_finish or self._batches_since_finish >= self.finish_every:
                self._batches_since_finish = 0
                try:
                    self.checkpointer.finish(self._connection.connection.driver_connection)
                except Exception:  # the next batch commits anyway; the WAL is checkpointed later
                    log.warning("audit writer: WAL checkpoint failed", exc_info=True)
            self._batches_since_checkpoint += 1
            if self._batches_since_checkpoint >= self.checkpoint_every:
                self._nudge_checkpointer()

    def _nudge_checkpointer(self) -> None:
        assert self.checkpointer is not None
        self._batches_since_checkpoint = 0
        self.checkpointer.nudge()
