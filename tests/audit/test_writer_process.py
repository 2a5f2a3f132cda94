"""The audit process: read traces written by a child of the server, with the thread's guarantees.

No trace is confirmed before it is committed, none is lost or written twice, the chain stays
linear beside the parent's own writes, and when the child stalls or dies the requests waiting on it
fail (no data leaves) while the next trace starts a new child.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from socle.app import create_app
from socle.audit.trail import AccessTrace, chain_length, record, verify_chain
from socle.audit.writer import AuditWriter, TraceNotConfirmed
from socle.audit.writer_process import AuditWriterProcess, TrailUnavailable
from socle.config import Settings
from socle.store.engine import create_store_engine
from socle.store.repository import FhirStore
from tests.audit.test_writer import ACTOR, write_concurrently
from tests.conftest import SYSTEM_TESTER
from tests.factories import patient


@pytest.fixture
def audited_store(engine: Engine) -> Iterator[FhirStore]:
    """The test's store, its read traces written by an audit process (as `socle serve` opens it)."""
    store = FhirStore(engine, audit_process=True)
    yield store
    store.audit_writer.close()


def wait_until(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_concurrent_traces_are_all_committed_and_chained(audited_store: FhirStore) -> None:
    writer = audited_store.audit_writer
    assert isinstance(writer, AuditWriterProcess)
    write_concurrently(writer, 30)  # type: ignore[arg-type]
    assert writer.pid is not None and writer.pid != os.getpid()
    assert chain_length(audited_store.engine) == 30
    assert verify_chain(audited_store.engine).intact


def test_the_chain_stays_linear_when_the_parent_writes_between_the_child_batches(
    audited_store: FhirStore,
) -> None:
    writer = audited_store.audit_writer
    for i in range(5):
        writer.write(ACTOR, AccessTrace("read", 200, resource=f"Patient/r{i}"))
        with audited_store.session() as session:  # a write keeps its trace in its own transaction
            record(session, ACTOR, AccessTrace("update", 200, resource=f"Patient/w{i}"))
    report = verify_chain(audited_store.engine)
    assert report.intact and report.entries == 10


def test_a_read_over_http_leaves_its_trace_before_its_response(audited_store: FhirStore) -> None:
    app = create_app(
        Settings(base_url="http://testserver"), audited_store, authenticate=lambda _r: SYSTEM_TESTER
    )
    with TestClient(app) as client:
        created = client.post("/fhir/Patient", json=patient(family="Processus")).json()
        before = chain_length(audited_store.engine)
        response = client.get(f"/fhir/Patient/{created['id']}")
        assert response.status_code == 200
        assert chain_length(audited_store.engine) == before + 1  # committed before the response left
        journal = client.get(f"/fhir/AuditEvent?entity=Patient/{created['id']}&subtype=read").json()
        assert journal["total"] == 1


def test_a_trace_not_confirmed_in_time_fails_and_the_stalled_child_is_replaced(
    audited_store: FhirStore,
) -> None:
    writer = audited_store.audit_writer
    writer.write(ACTOR, AccessTrace("read", 200))
    stalled = writer.pid
    assert stalled is not None
    os.kill(stalled, signal.SIGSTOP)  # a child that stalls (a lock held elsewhere, a starved machine)
    pending = writer.submit(ACTOR, AccessTrace("read", 200, resource="Patient/lent"))
    with pytest.raises(TraceNotConfirmed):
        pending.wait(patience=0.3)
    wait_until(lambda: writer.pid is None)  # stopped rather than left to hold every later read
    writer.write(ACTOR, AccessTrace("read", 200))
    assert writer.pid not in (None, stalled)
    assert chain_length(audited_store.engine) == 2  # the unconfirmed trace was never committed
    assert verify_chain(audited_store.engine).intact


def test_when_the_child_dies_waiting_reads_fail_and_the_next_trace_starts_a_new_child(
    audited_store: FhirStore,
) -> None:
    writer = audited_store.audit_writer
    writer.write(ACTOR, AccessTrace("read", 200))
    first = writer.pid
    assert first is not None
    os.kill(first, signal.SIGSTOP)
    pending = writer.submit(ACTOR, AccessTrace("read", 200, resource="Patient/perdu"))
    os.kill(first, signal.SIGKILL)
    with pytest.raises(TrailUnavailable):
        pending.wait(patience=10)
    wait_until(lambda: writer.pid is None)
    writer.write(ACTOR, AccessTrace("read", 200))
    assert writer.pid not in (None, first)
    assert chain_length(audited_store.engine) == 2  # the lost trace was never committed
    assert verify_chain(audited_store.engine).intact


def test_a_trace_the_child_cannot_prepare_fails_alone(audited_store: FhirStore) -> None:
    writer = audited_store.audit_writer
    blank = AccessTrace("read", 200, resource="Patient/x", description=" ")  # not a valid FHIR string
    with pytest.raises(TraceNotConfirmed, match="InvalidResource"):
        writer.write(ACTOR, blank)
    writer.write(ACTOR, AccessTrace("read", 200))
    assert chain_length(audited_store.engine) == 1


def test_close_lets_the_child_commit_what_it_was_sent(audited_store: FhirStore) -> None:
    writer = audited_store.audit_writer
    pending = [writer.submit(ACTOR, AccessTrace("read", 200, resource=f"Patient/c{i}")) for i in range(10)]
    pid = writer.pid
    writer.close()
    for trace in pending:
        trace.wait(patience=10)
    assert chain_length(audited_store.engine) == 10
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_database_in_memory_keeps_its_traces_in_process() -> None:
    engine = create_store_engine("sqlite://")
    store = FhirStore(engine, audit_process=True)
    assert isinstance(store.audit_writer, AuditWriter)
    engine.dispose()


def test_the_server_opens_its_store_with_an_audit_process_started(tmp_path: object) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/serveur.db")
    app = create_app(settings)
    writer = app.state.store.audit_writer
    try:
        assert isinstance(writer, AuditWriterProcess)
        assert writer.pid is not None  # started with the app, not on the first read
    finally:
        writer.close()
        app.state.store.engine.dispose()
    threaded = create_app(settings.model_copy(update={"audit_writer": "thread"}))
    assert isinstance(threaded.state.store.audit_writer, AuditWriter)
    threaded.state.store.engine.dispose()


def test_a_read_whose_trace_the_stalled_child_never_confirms_returns_no_data(engine: Engine) -> None:
    store = FhirStore(engine, audit_process=True)
    writer = store.audit_writer
    writer.patience = 0.5  # how long a request waits for its confirmation
    app = create_app(Settings(base_url="http://testserver"), store, authenticate=lambda _r: SYSTEM_TESTER)
    try:
        with TestClient(app) as client:
            created = client.post("/fhir/Patient", json=patient(family="Bloqué")).json()
            writer.write(ACTOR, AccessTrace("read", 200))
            pid = writer.pid
            assert pid is not None
            os.kill(pid, signal.SIGSTOP)
            response = client.get(f"/fhir/Patient/{created['id']}")
            assert response.status_code == 503
            assert response.json()["resourceType"] == "OperationOutcome"
            assert "Bloqué" not in response.text
            # The stalled child was stopped: the next read is traced by a new one.
            assert client.get(f"/fhir/Patient/{created['id']}").status_code == 200
            assert writer.pid not in (None, pid)
    finally:
        writer.close()


def test_closing_after_the_child_died_is_quiet(audited_store: FhirStore) -> None:
    writer = audited_store.audit_writer
    writer.write(ACTOR, AccessTrace("read", 200))
    pid = writer.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: writer.pid is None)
    writer.close()  # nothing left to stop, nothing raised
