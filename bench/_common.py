"""Shared helpers for the benchmarks: bench databases, memory readings, percentiles, the run header.

PostgreSQL bench databases are named `socle_bench_*` on the server given by `SOCLE_BENCH_POSTGRES_URL`
(default `postgresql://socle:socle@127.0.0.1:5432/postgres`); SQLite ones are files under
`SOCLE_BENCH_DIR` (default `/tmp/socle-bench`).
"""

from __future__ import annotations

import cProfile
import datetime as dt
import os
import platform
import pstats
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, text

from socle.store.engine import create_store_engine, migrate, normalize_url
from socle.store.repository import FhirStore

ADMIN_URL = os.environ.get("SOCLE_BENCH_POSTGRES_URL", "postgresql://socle:socle@127.0.0.1:5432/postgres")
BENCH_DIR = Path(os.environ.get("SOCLE_BENCH_DIR", "/tmp/socle-bench"))
BASE_URL = "http://bench.local/fhir"
BACKENDS = ("sqlite", "postgres")


def backends(choice: str) -> list[str]:
    return list(BACKENDS) if choice == "both" else [choice]


@dataclass
class BenchDb:
    """One bench database: its URL (for the store and for `socle serve`) and how to drop it."""

    backend: str
    name: str
    url: str

    def engine(self) -> Engine:
        return create_store_engine(self.url)

    def store(self) -> FhirStore:
        engine = self.engine()
        migrate(engine)
        return FhirStore(engine)

    def drop(self) -> None:
        if self.backend == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(self.url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
        else:
            _pg_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _pg_admin(*statements: str) -> None:
    admin = create_engine(normalize_url(ADMIN_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        admin.dispose()


def pg_database_exists(name: str) -> bool:
    admin = create_engine(normalize_url(ADMIN_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            found = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            return found.first() is not None
    finally:
        admin.dispose()


def bench_db(backend: str, name: str, *, fresh: bool) -> BenchDb:
    """The bench database `socle_bench_<name>`; `fresh` drops and recreates it."""
    full = f"socle_bench_{name}"
    if backend == "sqlite":
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        db = BenchDb(backend, full, f"sqlite:///{BENCH_DIR / (full + '.db')}")
        if fresh:
            db.drop()
        return db
    db = BenchDb(backend, full, ADMIN_URL.rsplit("/", 1)[0] + f"/{full}")
    if fresh:
        _pg_admin(f'DROP DATABASE IF EXISTS "{full}" WITH (FORCE)', f'CREATE DATABASE "{full}"')
    elif not pg_database_exists(full):
        _pg_admin(f'CREATE DATABASE "{full}"')
    return db


def with_pg_options(db: BenchDb, options: str) -> BenchDb:
    """The same PostgreSQL database with libpq `options` (e.g. `-c plan_cache_mode=...`) on connect."""
    if db.backend != "postgres" or not options:
        return db
    return BenchDb(db.backend, db.name, f"{db.url}?options={quote(options)}")


def post_bundle(store: FhirStore, bundle: dict[str, Any]) -> dict[str, Any]:
    """`process_bundle` as a local operator (full system scope) would post it, minimal responses."""
    from socle.auth.context import RequestContext
    from socle.fhir.bundles import process_bundle

    return process_bundle(store, bundle, BASE_URL, "return=minimal", RequestContext.operator("socle-bench"))


# -- memory ----------------------------------------------------------------------------------------


def rss_mb() -> float:
    """Current resident set size of this process, MiB (from /proc; falls back to the peak)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (getrusage ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def process_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


# -- statistics ------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


class Timer:
    """Accumulates the wall time spent inside `with timer:` blocks."""

    def __init__(self) -> None:
        self.total = 0.0
        self._start = 0.0

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.total += time.perf_counter() - self._start


# -- the run header --------------------------------------------------------------------------------


def header(title: str, module: str) -> None:
    """Print what, when and where: every figure in RESULTS.md comes with this block."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = "?"
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print(f"== {title}")
    print(f"   date {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}  commit {commit}")
    print(f"   machine {os.cpu_count()} cores, {cpu}; Python {platform.python_version()}; {sys.platform}")
    print(f"   command: .venv/bin/python -m {module} {' '.join(sys.argv[1:])}".rstrip())


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- profiles --------------------------------------------------------------------------------------

CATEGORIES = (
    ("database driver + server wait", ("psycopg", "sqlite3")),
    ("SQLAlchemy", ("sqlalchemy",)),
    ("socle indexing (extract, fhirpath)", ("socle/search/extract", "socle/fhir/fhirpath")),
    ("socle validation", ("socle/fhir/validation",)),
    ("socle search planner", ("socle/search/engine", "socle/search/parameters", "socle/search/normalize")),
    ("socle other", ("socle/",)),
)


def profile_report(profile: cProfile.Profile, top: int = 15) -> list[str]:
    """Where the time went: own time by category, then the top functions by own time."""
    stats = pstats.Stats(profile)
    entries: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    totals: dict[str, float] = {}
    everything = 0.0
    for (filename, _line, function), (_cc, _nc, tottime, _ct, _callers) in entries.items():
        where = f"{filename} {function}"
        category = next((name for name, keys in CATEGORIES if any(k in where for k in keys)), "other")
        totals[category] = totals.get(category, 0.0) + tottime
        everything += tottime
    lines = [f"   profile: {everything:.2f} s of own time (cProfile inflates Python-heavy parts)"]
    for name, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        lines.append(f"     {100 * seconds / everything:5.1f}%  {name}")
    ranked = sorted(entries.items(), key=lambda item: -item[1][2])[:top]
    lines.append("   top functions by own time:")
    for (filename, line, function), (_cc, calls, tottime, cumtime, _callers) in ranked:
        short = filename.split("site-packages/")[-1].split("/work/main/")[-1]
        lines.append(
            f"     {tottime:7.3f} s own {cumtime:7.3f} s cum {calls:8d} calls  {short}:{line} {function}"
        )
    return lines
