"""Fixtures: every storage test runs on SQLite and on PostgreSQL.

PostgreSQL comes from `SOCLE_TEST_POSTGRES_URL` (set by scripts/test, which starts a server when
none runs). Each pytest worker gets its own database, migrated once; each test starts from empty
tables. `SOCLE_TEST_BACKENDS=sqlite` narrows a local dev loop to SQLite; CI always runs both.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from socle.app import create_app
from socle.auth import schema as auth_schema
from socle.auth.context import RequestContext
from socle.config import Settings
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
    every_table = [*metadata.sorted_tables, *auth_schema.metadata.sorted_tables, *REGISTRY_TABLES]
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


def app_client(store: FhirStore, ctx: RequestContext) -> TestClient:
    """A client of an app whose every request is made by `ctx` (authentication is tested on its own)."""
    settings = Settings(base_url="http://testserver")
    return TestClient(create_app(settings, store, authenticate=lambda _request: ctx))


@pytest.fixture
def client(store: FhirStore) -> Iterator[TestClient]:
    """A hospital-software system client holding system/*.*."""
    with app_client(store, SYSTEM_TESTER) as test_client:
        yield test_client


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA
