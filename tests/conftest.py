"""Fixtures: every storage test runs on SQLite and on PostgreSQL.

PostgreSQL comes from `SOCLE_TEST_POSTGRES_URL` (set by scripts/test, which starts a server when
none runs). Each pytest worker gets its own database, migrated once; each test starts from empty
tables. `SOCLE_TEST_BACKENDS=sqlite` narrows a local dev loop to SQLite; CI always runs both.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from socle.app import create_app
from socle.audit.trail import chain_length
from socle.auth import schema as auth_schema
from socle.auth.context import RequestContext
from socle.config import Settings
from socle.directory.projection import TABLES as DIRECTORY_TABLES
from socle.identity.insi import REGISTRY_TABLES
from socle.store.engine import create_store_engine, migrate, normalize_url
from socle.store.repository import FhirStore
from socle.store.schema import metadata

BACKENDS = os.environ.get("SOCLE_TEST_BACKENDS", "sqlite,postgres").split(",")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BASE = "http://testserver/fhir"


@pytest.fixture(scope="session")
def postgres_engine(worker_id: str) -> Iterator[Engine]:
    url = os.environ.get("SOCLE_TEST_POSTGRES_URL", "postgresql://socle:socle@127.0.0.1:5432/postgres")
    admin = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    # The pid keeps concurrent runs (a dev loop beside a CI run) out of each other's databases.
    name = f"socle_test_{worker_id}_{os.getpid()}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_store_engine(url.rsplit("/", 1)[0] + f"/{name}")
    migrate(engine)
    yield engine
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = create_store_engine(f"sqlite:///{tmp_path / 'socle.db'}")
        migrate(engine)
        yield engine
        engine.dispose()
        return
    engine = request.getfixturevalue("postgres_engine")
    every_table = [
        *metadata.sorted_tables,
        *auth_schema.metadata.sorted_tables,
        *REGISTRY_TABLES,
        *DIRECTORY_TABLES,
    ]
    tables = ", ".join(t.name for t in every_table)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY"))
    yield engine


@pytest.fixture
def store(engine: Engine) -> FhirStore:
    return FhirStore(engine)


SYSTEM_TESTER = RequestContext(
    actor_type="system",
    actor_id="Client/tests",
    display="tests",
    client_id="tests",
    scopes=frozenset({"system/*.*"}),
)


class InteractionCounter:
    """How many FHIR interactions the test's clients made: each must leave exactly one AuditEvent.

    The capability statement is not patient data (untraced); a batch is one interaction per entry,
    a transaction (or a refused bundle) one in all.
    """

    def __init__(self) -> None:
        self.expected = 0

    def count(self, method: str, url: str, json: Any, status: int) -> None:
        path = urlsplit(str(url)).path.rstrip("/")
        if not path.startswith("/fhir") or path.endswith("/metadata") or "/.well-known/" in path:
            return
        is_batch = (
            isinstance(json, dict) and json.get("type") == "batch" and isinstance(json.get("entry"), list)
        )
        if method.upper() == "POST" and path == "/fhir" and is_batch and status == 200:
            self.expected += len(json["entry"])
        else:
            self.expected += 1


class CountingClient(TestClient):
    """A TestClient that tells the counter about every FHIR interaction it makes."""

    def __init__(self, app: Any, counter: InteractionCounter, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.counter = counter

    def request(self, method: str, url: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        response = super().request(method, url, **kwargs)
        self.counter.count(method, url, kwargs.get("json"), response.status_code)
        return response


@pytest.fixture
def interactions(request: pytest.FixtureRequest, engine: Engine) -> Iterator[InteractionCounter]:
    """After each test: the audit trail holds exactly one AuditEvent per FHIR interaction made.

    Tests that tamper with the trail on purpose are marked `audit_tampering`.
    """
    counter = InteractionCounter()
    yield counter
    if request.node.get_closest_marker("audit_tampering") is None:
        traced = chain_length(engine)
        assert traced == counter.expected, f"{counter.expected} FHIR interactions but {traced} AuditEvents"


def app_client(
    store: FhirStore, ctx: RequestContext, counter: InteractionCounter | None = None
) -> TestClient:
    """A client of an app whose every request is made by `ctx` (authentication is tested on its own)."""
    settings = Settings(base_url="http://testserver")
    app = create_app(settings, store, authenticate=lambda _request: ctx)
    if counter is None:
        return TestClient(app)
    return CountingClient(app, counter)


@pytest.fixture
def client(store: FhirStore, interactions: InteractionCounter) -> Iterator[TestClient]:
    """A hospital-software system client holding system/*.*."""
    with app_client(store, SYSTEM_TESTER, interactions) as test_client:
        yield test_client


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA
