"""Database engines for the two backends, and schema migration on first start.

SQLite is the embedded default (one file, WAL so readers never block the writer); PostgreSQL is the
production store (psycopg 3). Both are reached through SQLAlchemy Core; the schema is owned by the
Alembic migrations under `socle/store/migrations`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def normalize_url(url: str) -> str:
    """Accept the usual `postgresql://` spelling and route it to psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


# Connections a PostgreSQL engine keeps open: one per thread of the server's threadpool (anyio's
# default limit is 40) plus the audit writer. A smaller pool under a higher concurrency opened and
# closed an overflow connection per checkout (327-602 new connections per 10 s in bench/RESULTS.md).
POOL_SIZE = 41


def create_store_engine(url: str, *, pool_size: int = POOL_SIZE) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine)
    else:
        # psycopg prepares a statement after a few runs and PostgreSQL then switches to a generic plan
        # that ignores the parameter values: a `code=` search went from 2 ms to 650 ms on a 1M store.
        # Custom plans keep the per-value estimates (planning costs ~0.1 ms).
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=10,
            pool_pre_ping=True,
            connect_args={"options": "-c plan_cache_mode=force_custom_plan"},
        )
    return engine


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN and cannot take the write lock up front;
    # we issue BEGIN IMMEDIATE ourselves so concurrent writers queue instead of deadlocking.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        readonly = connection.get_execution_options().get("socle_readonly", False)
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest migration (creates it on an empty database)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
