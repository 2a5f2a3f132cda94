"""The raw insert baseline: the same resources' JSON bytes into a bare table, the fastest way.

`bench_raw (id text, data bytea/blob)`, no index: PostgreSQL psycopg 3 binary COPY, SQLite
`executemany` with the store's pragmas (WAL, synchronous=NORMAL), one commit per `per_transaction`
rows, as `bench/ingest.py` measures its own. What a platform write costs beyond it is validation,
indexing, versioning, the projections and the reads an importer makes first.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import psycopg
from sqlalchemy import text

from bench._common import BenchDb


def stored_rows(db: BenchDb) -> list[tuple[str, bytes]]:
    """(id, JSON bytes) of every current resource of the store: what the platform wrote."""
    engine = db.engine()
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT v.res_type || '/' || v.res_id, v.data FROM resource r JOIN resource_version v "
                    "ON v.resource_pk = r.pk AND v.version = r.version WHERE v.data IS NOT NULL"
                )
            )
            return [(str(row[0]), bytes(row[1])) for row in rows]
    finally:
        engine.dispose()


def _groups(rows: list[tuple[str, bytes]], size: int) -> Iterator[list[tuple[str, bytes]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def raw_insert_seconds(db: BenchDb, rows: list[tuple[str, bytes]], per_transaction: int) -> float:
    """Seconds to insert `rows` into a fresh `bench_raw` table of `db` (dropped afterwards)."""
    if db.backend == "postgres":
        with psycopg.connect(db.url) as conn:
            conn.execute("DROP TABLE IF EXISTS bench_raw")
            conn.execute("CREATE TABLE bench_raw (id text, data bytea)")
            conn.commit()
            started = time.perf_counter()
            for group in _groups(rows, per_transaction):
                with (
                    conn.cursor() as cur,
                    cur.copy("COPY bench_raw (id, data) FROM STDIN (FORMAT BINARY)") as cp,
                ):
                    cp.set_types(["text", "bytea"])
                    for row in group:
                        cp.write_row(row)
                conn.commit()
            elapsed = time.perf_counter() - started
            conn.execute("DROP TABLE bench_raw")
            conn.commit()
        return elapsed
    conn = sqlite3.connect(db.url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("DROP TABLE IF EXISTS bench_raw")
        conn.execute("CREATE TABLE bench_raw (id TEXT, data BLOB)")
        started = time.perf_counter()
        for group in _groups(rows, per_transaction):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO bench_raw (id, data) VALUES (?, ?)", group)
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_raw")
    finally:
        conn.close()
    return elapsed
