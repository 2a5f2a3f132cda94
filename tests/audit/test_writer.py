"""The group-commit writer: concurrent reads share a transaction, each still waits for its trace."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from socle.audit.trail import AccessTrace, chain_length, record, verify_chain
from socle.audit.writer import AuditWriter
from socle.auth.context import RequestContext
from socle.store.repository import FhirStore, StoreSession

ACTOR = RequestContext(
    actor_type="system", actor_id="Client/t", display="t", scopes=frozenset({"system/*.*"})
)


def write_concurrently(writer: AuditWriter, count: int, prefix: str = "") -> None:
    """`count` read traces, each written by a thread of its own at the same time."""
    threads = [
        threading.Thread(
            target=writer.write, args=(ACTOR, AccessTrace("read", 200, resource=f"Patient/{prefix}{i}"))
        )
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)


def test_concurrent_traces_are_all_written_and_chained(store: FhirStore) -> None:
    writer = AuditWriter(store, linger=0.01)
    write_concurrently(writer, 20)
    assert chain_length(store.engine) == 20
    assert verify_chain(store.engine).intact


def test_a_trace_that_cannot_be_written_fails_the_request(
    store: FhirStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = AuditWriter(store)

    def broken(*_args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(StoreSession, "create_built", broken)  # the batch's rows cannot be written
    with pytest.raises(RuntimeError, match="disk full"):
        writer.write(ACTOR, AccessTrace("read", 200))
    assert chain_length(store.engine) == 0


def test_after_a_failed_batch_the_next_one_is_written_on_a_fresh_connection(
    store: FhirStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = AuditWriter(store, keep_connection=5.0)
    writer.write(ACTOR, AccessTrace("read", 200))
    first = writer._connection
    failing = {"on": True}
    real = StoreSession.create_built

    def broken_once(self: StoreSession, *args: Any) -> int:
        if failing.pop("on", False):
            raise RuntimeError("connection lost")
        return real(self, *args)

    monkeypatch.setattr(StoreSession, "create_built", broken_once)
    with pytest.raises(RuntimeError, match="connection lost"):
        writer.write(ACTOR, AccessTrace("read", 200))
    writer.write(ACTOR, AccessTrace("read", 200))
    assert writer._connection is not first
    assert chain_length(store.engine) == 2
    assert verify_chain(store.engine).intact


def test_the_writer_keeps_its_connection_while_busy_and_returns_it_when_quiet(store: FhirStore) -> None:
    # Generous idle bound: on a loaded machine the second write may come a while after the first.
    writer = AuditWriter(store, keep_connection=1.0)
    writer.write(ACTOR, AccessTrace("read", 200))
    kept = writer._connection
    assert kept is not None
    writer.write(ACTOR, AccessTrace("read", 200))
    assert writer._connection is kept  # no checkout (and pre-ping) per batch
    deadline = time.monotonic() + 15
    while writer._connection is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert writer._connection is None  # back to the pool once the queue stayed empty
    writer.write(ACTOR, AccessTrace("read", 200))
    assert chain_length(store.engine) == 3
    assert verify_chain(store.engine).intact


def test_the_idle_writer_stops_and_restarts_on_demand(store: FhirStore) -> None:
    writer = AuditWriter(store, idle_exit=0.05)
    writer.write(ACTOR, AccessTrace("read", 200))
    thread = writer._thread
    assert thread is not None
    thread.join(timeout=5)
    writer.write(ACTOR, AccessTrace("read", 200))
    assert chain_length(store.engine) == 2


def test_a_request_that_waits_too_long_writes_its_own_trace_exactly_once(store: FhirStore) -> None:
    writer = AuditWriter(store, idle_exit=0.1)
    stalled = threading.Event()
    real_commit = writer.commit_batch

    def stall_then_commit(batch: list[object]) -> None:
        stalled.wait(timeout=10)  # the writer is stuck (a lock, a slow disk) until the request gave up
        real_commit(batch)  # type: ignore[arg-type]

    writer.commit_batch = stall_then_commit  # type: ignore[method-assign]
    writer.write(ACTOR, AccessTrace("read", 200), patience=0.2)
    assert chain_length(store.engine) == 1  # written by the request itself
    thread = writer._thread
    stalled.set()
    if thread is not None:
        thread.join(timeout=10)
    assert chain_length(store.engine) == 1  # the writer skipped the cancelled trace
    assert verify_chain(store.engine).intact


def test_links_of_writes_and_of_read_batches_form_one_chain(store: FhirStore) -> None:
    # Writes link their trace in their own transaction, the writer a whole batch in its own (in
    # one pipeline on PostgreSQL): both continue the same chain, in commit order.
    writer = AuditWriter(store)
    for round_ in range(3):
        with store.session() as session:
            record(session, ACTOR, AccessTrace("create", 201, resource=f"Patient/w{round_}"))
        write_concurrently(writer, 5, prefix="r")
    assert chain_length(store.engine) == 18
    report = verify_chain(store.engine)
    assert report.intact, report.reason


def test_concurrent_traced_writes_keep_one_linear_chain(store: FhirStore) -> None:
    """Each write links its trace once its rows are in (PostgreSQL: the chain lock comes last)."""
    barrier = threading.Barrier(6)

    def traced_write(i: int) -> None:
        barrier.wait()
        with store.session() as session:
            record(session, ACTOR, AccessTrace("create", 201, resource=f"Patient/w{i}"))
            record(session, ACTOR, AccessTrace("update", 200, resource=f"Patient/w{i}"))

    threads = [threading.Thread(target=traced_write, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    write_concurrently(AuditWriter(store), 6, prefix="r")  # the read traces' batches in between
    report = verify_chain(store.engine)
    assert report.intact and report.entries == 18
