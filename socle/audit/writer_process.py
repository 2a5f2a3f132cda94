"""The audit writer in a process of its own: the server hands it the traces of reads over a pipe.

A server process runs its Python on one core at a time (the GIL). Measured over HTTP, an audited
read cost that core about a third more than an unaudited one, and most of the extra was the
trace: building and indexing the AuditEvent, storing its rows, linking the chain; worse, the
writer thread queued for the GIL after each of its database round trips, so a batch took several
times its own work and the reads waiting for it piled up (bench/RESULTS.md section 3). Here the
request only pickles its `RequestContext` and `AccessTrace` onto a pipe; a child process, on the
other core, prepares the events and commits them by batches with the same code as the in-process
writer (`AuditWriter.commit_batch`), then confirms the whole batch in one message.

The guarantee is the same as with the thread: the request waits for the confirmation that its
trace is committed before any data leaves, and fails (503) if none comes within `patience`, if
the batch failed, or if the child died; the next trace starts a new child. The parent's writes
keep their traces in their own transactions; the chain stays linear because every append takes
the chain lock, whichever process makes it.

Wire format: parent → child, one message per trace: 8-byte sequence number + pickle of
(context, trace); child → parent: b"ready" once, then per batch a pickle of [(sequence, error
text or None)]. The pipe is an anonymous socket pair between a process and the child it spawned.
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
from concurrent.futures import Future
from contextlib import suppress
from multiprocessing.connection import Connection as PipeEnd
from typing import TYPE_CHECKING

from socle.audit.trail import AccessTrace, PreparedEvent, prepare_event
from socle.audit.writer import PATIENCE, AuditWriter, PendingTrace, TraceNotConfirmed, batched_wakeups
from socle.auth.context import RequestContext

if TYPE_CHECKING:
    from socle.store.repository import FhirStore

log = logging.getLogger(__name__)

READY = b"ready"
STARTUP_TIMEOUT = 30.0  # seconds for the child to import socle and open its engine
SEND_TIMEOUT = 5.0  # a child that stops reading fills the socket: senders give up after this
_SEQUENCE_BYTES = 8


class TrailUnavailable(TraceNotConfirmed):
    """The audit process is gone or could not start."""


class _Child:
    """One audit process, its end of the pipe, and the traces it has not confirmed yet."""

    def __init__(self, process: subprocess.Popen[bytes], pipe: PipeEnd, end: socket.socket) -> None:
        self.process = process
        self.pipe = pipe
        self.end = end  # the same socket as `pipe`: shutting it down is seen by both sides' reads
        self.waiting: dict[int, Future[None]] = {}
        # Guards `waiting` and `alive` only, never held across a blocking call: the thread reading
        # confirmations must not wait for a sender blocked on a full pipe.
        self.lock = threading.Lock()
        self.alive = True
        self.finished = threading.Event()  # set once its confirmations thread is done

    def close_pipe(self) -> None:
        self.pipe.close()
        self.end.close()


class AuditWriterProcess:
    """The store's writer of read and failure traces, run by a child process. Thread-safe."""

    def __init__(
        self, store: FhirStore, *, startup_timeout: float = STARTUP_TIMEOUT, patience: float = PATIENCE
    ) -> None:
        self.store = store
        self.startup_timeout = startup_timeout
        self.patience = patience  # how long a request waits for its confirmation before failing
        self._url = store.engine.url.render_as_string(hide_password=False)
        self._lock = threading.Lock()  # starting a child, and sending (one message at a time)
        self._child: _Child | None = None
        self._sequence = itertools.count()

    def write(self, ctx: RequestContext, trace: AccessTrace, *, patience: float | None = None) -> None:
        """Send the trace and return once it is committed (raises if it could not be)."""
        self.submit(ctx, trace).wait(patience)

    def submit(self, ctx: RequestContext, trace: AccessTrace) -> PendingTrace:
        """Send the trace; the caller must `wait` (or await `settled`) before releasing any data."""
        payload = pickle.dumps((ctx, trace), protocol=pickle.HIGHEST_PROTOCOL)
        done: Future[None] = Future()
        with self._lock:
            child = self._running_child()
            sequence = next(self._sequence)
            with child.lock:
                if not child.alive:
                    raise TrailUnavailable("Le journal d'audit s'est arrêté")
                child.waiting[sequence] = done
            try:
                child.pipe.send_bytes(sequence.to_bytes(_SEQUENCE_BYTES, "big") + payload)
            except OSError as error:  # gone, or not reading for SEND_TIMEOUT (the stream may be cut)
                with child.lock:
                    child.waiting.pop(sequence, None)
                self._give_up_on(child)
                raise TrailUnavailable("Le journal d'audit est indisponible") from error
        return PendingTrace(self.store, None, done, self.patience, lambda: self._give_up_on(child))

    def start(self) -> None:
        """Start the child now rather than on the first trace (a server does it at start-up)."""
        with self._lock:
            self._running_child()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the child once it has committed what it was sent."""
        with self._lock:
            child, self._child = self._child, None
        if child is None:
            return
        # The child sees the end of its input, commits and confirms what it was sent, and exits;
        # (closing the descriptor would not do: the confirmations thread is blocked reading it).
        with suppress(OSError):  # a child already gone
            child.end.shutdown(socket.SHUT_WR)
        _reap(child.process, timeout)
        child.finished.wait(timeout)  # its last confirmations are settled
        child.close_pipe()

    @property
    def pid(self) -> int | None:
        child = self._child
        return child.process.pid if child is not None and child.alive else None

    # -- the parent's side ------------------------------------------------------------------------

    def _running_child(self) -> _Child:
        """The live child, started (and waited for) if there is none. Called under the lock."""
        child = self._child
        if child is not None and child.alive:
            return child
        if child is not None:
            child.close_pipe()  # here, under the send lock: no request is writing to it
        # A fresh interpreter running this module (not multiprocessing's spawn, which re-runs the
        # parent's main script), its end of a socket pair as an inherited descriptor. The database
        # URL (credentials included) goes over the pipe, not on a command line or in an environment.
        ours_socket, theirs_socket = socket.socketpair()
        with theirs_socket:
            process = subprocess.Popen(
                [sys.executable, "-m", "socle.audit.writer_process", str(theirs_socket.fileno())],
                pass_fds=[theirs_socket.fileno()],
                stdin=subprocess.DEVNULL,
            )
        # Shared by both descriptors: a send blocked on a child that stopped reading fails instead.
        ours_socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", int(SEND_TIMEOUT), 0))
        ours = PipeEnd(os.dup(ours_socket.fileno()))
        try:
            ours.send_bytes(self._url.encode())
            if not ours.poll(self.startup_timeout) or ours.recv_bytes() != READY:
                raise TrailUnavailable("Le journal d'audit n'a pas démarré")
        except (EOFError, OSError, TrailUnavailable) as error:
            ours.close()
            ours_socket.close()
            process.kill()
            process.wait()
            if isinstance(error, TrailUnavailable):
                raise
            raise TrailUnavailable("Le journal d'audit n'a pas démarré") from error
        child = _Child(process, ours, ours_socket)
        threading.Thread(
            target=self._confirmations, args=(child,), name="socle-audit-confirmations", daemon=True
        ).start()
        self._child = child
        return child

    def _confirmations(self, child: _Child) -> None:
        """Settle each trace the child confirms; when the child goes, fail what it had not."""
        try:
            while True:
                try:
                    message = child.pipe.recv_bytes()
                except (EOFError, OSError):
                    break
                with batched_wakeups():
                    for sequence, error in pickle.loads(message):
                        with child.lock:
                            done = child.waiting.pop(sequence, None)
                        if done is None:
                            continue
                        if error is None:
                            done.set_result(None)
                        else:
                            done.set_exception(TraceNotConfirmed(f"Trace non écrite : {error}"))
        except Exception:
            log.exception("audit process %s: unreadable confirmation", child.process.pid)
            child.process.kill()
        finally:
            with child.lock:
                child.alive = False
                lost, child.waiting = child.waiting, {}
            if lost:
                log.error("audit process %s stopped with %d traces unconfirmed", child.process.pid, len(lost))
            with batched_wakeups():
                for done in lost.values():
                    done.set_exception(TrailUnavailable("Le journal d'audit s'est arrêté"))
            _reap(child.process, 5.0)
            # Its descriptors are closed by whoever replaces or closes it, under the send lock.
            child.finished.set()

    def _give_up_on(self, child: _Child) -> None:
        """A trace sent to `child` went unconfirmed for `patience`: stop it (a new one takes over)."""
        if child.alive:
            log.error("audit process %s did not confirm in time: stopped", child.process.pid)
            child.process.kill()  # its confirmations thread then fails what it still owed


def _reap(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for the child to exit (killed if it takes longer than `timeout`): no zombie left."""
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- the child's side --------------------------------------------------------------------------------


def serve_traces(pipe: PipeEnd) -> None:
    """The child's main loop: gather what arrived, prepare it, commit it as one batch, confirm."""
    from socle.store.engine import create_store_engine
    from socle.store.repository import FhirStore

    try:
        database_url = pipe.recv_bytes().decode()
    except EOFError:
        return
    engine = create_store_engine(database_url, pool_size=1)
    writer = AuditWriter(FhirStore(engine))
    pipe.send_bytes(READY)
    try:
        while True:
            if writer.holds_connection and not pipe.poll(writer.keep_connection):
                writer.release_connection()  # quiet for now: back to the pool
            messages = _gather(pipe, writer.max_batch)
            if not messages:
                break  # the parent closed its end (or exited): everything sent was confirmed
            pipe.send_bytes(pickle.dumps(_commit(writer, messages), protocol=pickle.HIGHEST_PROTOCOL))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the parent is gone: no one is waiting
    finally:
        writer.release_connection()
        engine.dispose()


def _gather(pipe: PipeEnd, most: int) -> list[bytes]:
    """Block for one message, then take every message already there (the batch); [] at the end."""
    messages: list[bytes] = []
    try:
        messages.append(pipe.recv_bytes())
        while len(messages) < most and pipe.poll():
            messages.append(pipe.recv_bytes())
    except EOFError:
        pass
    return messages


def _commit(writer: AuditWriter, messages: list[bytes]) -> list[tuple[int, str | None]]:
    confirmations: list[tuple[int, str | None]] = []
    batch: list[tuple[int, PreparedEvent, Future[None]]] = []
    for message in messages:
        sequence = int.from_bytes(message[:_SEQUENCE_BYTES], "big")
        try:
            ctx, trace = pickle.loads(message[_SEQUENCE_BYTES:])
            batch.append((sequence, prepare_event(writer.store, ctx, trace), Future()))
        except Exception as error:  # this trace only: the others of the batch are written
            log.exception("audit process: trace %d could not be prepared", sequence)
            confirmations.append((sequence, _reason(error)))
    writer.commit_batch([(prepared, done) for _, prepared, done in batch])
    for sequence, _, done in batch:
        failure = done.exception()
        confirmations.append((sequence, None if failure is None else _reason(failure)))
    return confirmations


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:500]


def main() -> None:
    """`python -m socle.audit.writer_process FD`: started by `AuditWriterProcess`, never by hand."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s socle-audit-writer: %(message)s")
    # A Ctrl-C or a SIGTERM sent to the server's whole group must not stop the traces of the
    # requests the server is still finishing: the child ends when its input does.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with PipeEnd(int(sys.argv[1])) as pipe:
        serve_traces(pipe)


if __name__ == "__main__":
    main()
