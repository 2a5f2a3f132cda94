"""SQLite: the audit writer's commits do not checkpoint the WAL; a thread of its own does, and the WAL
stays bounded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from socle.audit.trail import AccessTrace, chain_length, verify_chain
from socle.audit.writer import AuditWriter
from socle.auth.context import RequestContext
from socle.store.checkpoint import DEFAULT_AUTOCHECKPOINT
from socle.store.engine import create_store_engine, migrate
from socle.store.repository import FhirStore

ACTOR = RequestContext(
    actor_type="system", actor_id="Client/t", display="t", scopes=frozenset({"system/*.*"})
)
TRACES = 300  # one per commit: ≈ 29 pages each, ≈ 36 MB of WAL if nothing checkpoints
LIMIT = 500  # pages
FINISH_EVERY = 64  # batches
BOUND = FINISH_EVERY * 40 * 4200  # bytes: at most that many batches' pages (≈ 29 each), with slack


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Engine:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'socle.db'}")
    migrate(engine)
    raw = engine.raw_connection()  # start from an empty WAL: its size is then what the test wrote
    try:
        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        raw.close()
    return engine


def wal_bytes(engine: Engine) -> int:
    wal = Path(f"{engine.url.database}-wal")
    return wal.stat().st_size if wal.exists() else 0


def write_traces(writer: AuditWriter, count: int) -> None:
    for i in range(count):  # one trace per batch: the most commits for the fewest rows
        writer.write(ACTOR, AccessTrace("read", 200, resource=f"Patient/p{i}"))


def autocheckpoint_of(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())


def test_the_wal_stays_bounded_when_only_the_audit_writer_writes(sqlite_engine: Engine) -> None:
    writer = AuditWriter(
        FhirStore(sqlite_engine), keep_connection=60.0, checkpoint_every=16, finish_every=FINISH_EVERY
    )
    assert writer.checkpointer is not None
    writer.checkpointer.limit = LIMIT
    write_traces(writer, TRACES)
    assert wal_bytes(sqlite_engine) < BOUND
    deadline = time.monotonic() + 30  # the background thread runs when the machine lets it
    while writer.checkpointer.checkpoints == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert writer.checkpointer.checkpoints > 0
    assert chain_length(sqlite_engine) == TRACES
    assert verify_chain(sqlite_engine).intact


def test_without_the_checkpointer_the_writer_alone_would_grow_the_wal(sqlite_engine: Engine) -> None:
    # The control of the test above: the writer's own commits never checkpoint.
    writer = AuditWriter(
        FhirStore(sqlite_engine), keep_connection=60.0, checkpoint_every=10**9, finish_every=10**9
    )
    assert writer.checkpointer is not None
    writer.checkpointer.limit = LIMIT
    write_traces(writer, TRACES)
    assert writer.checkpointer.checkpoints == 0
    assert wal_bytes(sqlite_engine) > 2 * BOUND


def test_the_writer_gives_its_connection_back_with_sqlite_default_autocheckpoint(
    sqlite_engine: Engine,
) -> None:
    # A pool of one: the connection the writer used is the one checked out afterwards.
    sqlite_engine.pool._pool.maxsize = 1  # type: ignore[attr-defined]
    writer = AuditWriter(FhirStore(sqlite_engine), keep_connection=0.05)
    write_traces(writer, 3)
    deadline = time.monotonic() + 5
    while writer._connection is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert writer._connection is None
    assert autocheckpoint_of(sqlite_engine) == DEFAULT_AUTOCHECKPOINT
