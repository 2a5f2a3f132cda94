"""Public directory search latency (p50/p95) on a national-size directory, against a primary-key read.

The directory (`socle_bench_directory`: default 500,000 professionals on PostgreSQL, 50,000 on
SQLite) is built by the synthetic generator (`socle.synthetic.professionals.generate_directory`,
the shapes of the RPPS / FINESS imports) and written the normal way: `do_write_batch` batches of
2,000 resources, as `socle seed` writes its directory, so the search table is filled by the store's
projection hook, in the same transactions. The load is kept for later runs (marker table
`bench_marker`), with `ANALYZE` during and `VACUUM ANALYZE` after it.

Each query calls `search_directory` in a fresh read-only store session (the hits' resources
included), `--iterations` times with parameters drawn from the directory itself (points at its
places, family names, towns, postcodes), round-robin so noise spreads over all of them.
Baseline in the same run: `session.read("PractitionerRole", id)` in its own read-only session;
each p50 is also printed as a ratio to the baseline's, and with the CPU time of this process (on a
shared machine, what the search itself costs: with SQLite it includes the database's work, with
PostgreSQL only the client's). Target: p95 ≤ 50 ms on PostgreSQL.
`--explain` prints EXPLAIN ANALYZE (PostgreSQL) / EXPLAIN QUERY PLAN (SQLite) of the slowest
statement of each query over target.

    .venv/bin/python -m bench.directory_search --backend postgres --professionals 500000
    .venv/bin/python -m bench.directory_search --backend sqlite --sqlite-professionals 50000
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import bindparam, event, text

from bench._common import BenchDb, backends, bench_db, header, percentile
from bench._populate import marker
from socle.directory.actions import Write, do_write_batch
from socle.directory.search import search_directory
from socle.store.repository import FhirStore
from socle.synthetic.professionals import generate_directory

TARGET_P95_MS = 50.0
BATCH = 2000  # resources per transaction, as `socle seed` writes its directory
AS_OF = date(2026, 1, 1)
ANALYZE_AFTER = (10, 100)  # batches


@dataclass
class Sample:
    """Parameters drawn from the stored directory."""

    points: list[tuple[float, float]]
    words: list[str]  # name tokens of one word
    pairs: list[tuple[str, str]]  # two name words of the same practitioner
    postcodes: list[str]
    role_ids: list[str]


Query = Callable[[Sample, random.Random], dict[str, Any]]

QUERIES: dict[str, Query] = {
    "near point 10 km": lambda s, r: {"near": (*r.choice(s.points), 10.0)},
    "near + médecin généraliste": lambda s, r: {"near": (*r.choice(s.points), 20.0), "specialty": "SM54"},
    "near + infirmier + nouveaux patients": lambda s, r: {
        "near": (*r.choice(s.points), 20.0),
        "profession": "60",
        "accepting_new_patients": True,
    },
    "near + cardiologue 100 km": lambda s, r: {"near": (*r.choice(s.points), 100.0), "specialty": "SM04"},
    "near + pédicure-podologue 50 km": lambda s, r: {"near": (*r.choice(s.points), 50.0), "profession": "80"},
    "name: one word": lambda s, r: {"text": r.choice(s.words)},
    "name: 3-letter prefix": lambda s, r: {"text": r.choice(s.words)[:3]},
    "name: word + 4-letter prefix": lambda s, r: (lambda w: {"text": f"{w[0]} {w[1][:4]}"})(
        r.choice(s.pairs)
    ),
    "name + médecin": lambda s, r: {"text": r.choice(s.words), "profession": "10"},
    "Paris (75056) + médecin": lambda _s, _r: {"commune": "75056", "profession": "10"},
    "Marseille by name": lambda _s, _r: {"commune": "Marseille"},
    "Lyon + kiné + teleconsultation": lambda _s, _r: {
        "commune": "69123",
        "profession": "70",
        "teleconsultation": True,
    },
    "Paris + orthophoniste page 3": lambda _s, _r: {
        "commune": "75056",
        "profession": "91",
        "limit": 20,
        "offset": 40,
    },
    "postcode": lambda s, r: {"postcode": r.choice(s.postcodes)},
    "department 13 + infirmier": lambda _s, _r: {"postcode": "13", "profession": "60"},
    "profession pédicure-podologue": lambda _s, _r: {"profession": "80"},
    "specialty cardiologie": lambda _s, _r: {"specialty": "SM04"},
}


@dataclass
class Stat:
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # this process's CPU time (SQLite: its work too)
    hits: int = 0

    def line(self, name: str, base: float) -> str:
        p50, p95 = percentile(self.times, 50) * 1e3, percentile(self.times, 95) * 1e3
        ratio = p50 / (base * 1e3) if base else 0.0
        mark = "ok" if p95 <= TARGET_P95_MS else "OVER"
        hits = self.hits / max(1, len(self.times))
        cpu = percentile(self.cpu, 50) * 1e3
        return (
            f"   {name:40s} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  x{ratio:6.1f} base  "
            f"cpu p50 {cpu:6.2f} ms  hits {hits:5.1f}  {mark}"
        )


# -- loading ---------------------------------------------------------------------------------------


def loaded(backend: str, professionals: int, seed: int) -> BenchDb:
    """The bench directory with at least `professionals` professionals, loaded the normal way."""
    name = "directory" if backend == "postgres" else f"directory_{professionals}"
    db = bench_db(backend, name, fresh=False)
    found = marker(db)
    if found is not None and found[0] >= professionals and found[1] == seed:
        print(f"   reusing {db.name}: {found[0]} professionals, {found[2]} resources (marker found)")
        return db
    db = bench_db(backend, name, fresh=True)
    store = db.store()
    started = time.perf_counter()
    directory = generate_directory(professionals, seed=seed, as_of=AS_OF)
    generated = time.perf_counter() - started
    print(
        f"   generated {len(directory.professionals)} professionals, {len(directory.sites)} places "
        f"in {generated:.0f} s; writing with do_write_batch ({BATCH} resources per transaction)...",
        flush=True,
    )
    started = time.perf_counter()
    batch: list[Write] = []
    written = batches = 0
    for resource in directory.resources():
        batch.append(Write(resource))
        if len(batch) >= BATCH:
            do_write_batch(store, batch)
            written += len(batch)
            batch = []
            batches += 1
            if batches in ANALYZE_AFTER:
                store.analyze()
            if batches % 100 == 0:
                elapsed = time.perf_counter() - started
                print(f"   {written} resources in {elapsed:.0f} s ({written / elapsed:.0f}/s)", flush=True)
    if batch:
        do_write_batch(store, batch)
        written += len(batch)
    elapsed = time.perf_counter() - started
    print(
        f"   wrote {written} resources in {elapsed:.0f} s = {written / elapsed:.0f} resources/s", flush=True
    )
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE" if backend == "postgres" else "ANALYZE"))
    with store.engine.begin() as connection:
        connection.execute(
            text("CREATE TABLE bench_marker (people INTEGER, seed INTEGER, resources INTEGER)")
        )
        connection.execute(
            text("INSERT INTO bench_marker VALUES (:p, :s, :r)"),
            {"p": professionals, "s": seed, "r": written},
        )
    store.engine.dispose()
    return db


def sample(store: FhirStore, rng: random.Random, size: int = 200) -> Sample:
    with store.engine.connect() as connection:
        entries = list(
            connection.execute(
                text(
                    "SELECT role_id, latitude, longitude, postcode FROM directory_entry "
                    "WHERE latitude IS NOT NULL ORDER BY role_pk"
                )
            )
        )
        picked = rng.sample(entries, min(size, len(entries)))
        # Two name words of the same practitioners (family, given or title: all are name tokens).
        names = list(
            connection.execute(
                text(
                    "SELECT a.token, b.token FROM directory_name a JOIN directory_name b "
                    "ON b.practitioner_id = a.practitioner_id AND b.token <> a.token "
                    "WHERE a.practitioner_id IN (SELECT practitioner_id FROM directory_entry "
                    "WHERE role_id IN :ids) AND length(a.token) > 3 AND length(b.token) > 3 "
                    "AND a.token NOT LIKE '% %' AND b.token NOT LIKE '% %'"
                ).bindparams(bindparam("ids", expanding=True)),
                {"ids": [row.role_id for row in picked[:100]]},
            )
        )
    return Sample(
        points=[(row.latitude, row.longitude) for row in picked],
        words=[first for first, _ in names] or ["martin"],
        pairs=[(first, second) for first, second in names] or [("marie", "martin")],
        postcodes=[row.postcode for row in picked if row.postcode],
        role_ids=[row.role_id for row in picked],
    )


# -- measuring -------------------------------------------------------------------------------------


class Statements:
    """The SQL statements of one call and their times (to EXPLAIN the slowest)."""

    def __init__(self, store: FhirStore) -> None:
        self.store = store
        self.seen: list[tuple[float, str, Any]] = []
        self.on = False
        event.listen(store.engine, "before_cursor_execute", self._before)
        event.listen(store.engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if self.on:
            self.seen.append((time.perf_counter() - conn.info["bench_started"], statement, parameters))


def explain(store: FhirStore, statements: Statements, name: str, criteria: dict[str, Any]) -> None:
    statements.seen, statements.on = [], True
    with store.session(readonly=True) as session:
        search_directory(session, **criteria)
    statements.on = False
    seconds, statement, parameters = max(statements.seen, key=lambda found: found[0])
    sqlite = store.engine.dialect.name == "sqlite"
    print(f"-- {name}: slowest statement {seconds * 1e3:.1f} ms of {len(statements.seen)}; {criteria}")
    with store.engine.connect() as connection:
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(
            ("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN (ANALYZE, BUFFERS) ") + statement, parameters
        )
        for row in cursor.fetchall():
            print("   " + " ".join(str(part) for part in row))


def run(db: BenchDb, args: argparse.Namespace) -> list[str]:
    store = db.store()
    rng = random.Random(args.seed)
    drawn = sample(store, rng)
    with store.engine.connect() as connection:
        roles = connection.execute(text("SELECT count(*) FROM directory_entry")).scalar_one()
        total = connection.execute(text("SELECT count(*) FROM resource")).scalar_one()

    def baseline(role_id: str) -> None:
        with store.session(readonly=True) as session:
            session.read("PractitionerRole", role_id)

    def query(criteria: dict[str, Any]) -> int:
        with store.session(readonly=True) as session:
            return len(search_directory(session, **criteria))

    stats = {name: Stat() for name in QUERIES}
    base = Stat()
    for warm in range(args.warmup):
        for build in QUERIES.values():
            query(build(drawn, random.Random(warm)))
    for _ in range(args.iterations):
        role_id = rng.choice(drawn.role_ids)
        started, cpu = time.perf_counter(), time.process_time()
        baseline(role_id)
        base.times.append(time.perf_counter() - started)
        base.cpu.append(time.process_time() - cpu)
        for name, build in QUERIES.items():
            criteria = build(drawn, rng)
            started, cpu = time.perf_counter(), time.process_time()
            stats[name].hits += query(criteria)
            stats[name].times.append(time.perf_counter() - started)
            stats[name].cpu.append(time.process_time() - cpu)
    base_p50 = percentile(base.times, 50)
    lines = [f"-- {db.backend}: {total} resources, {roles} directory rows, {args.iterations} iterations"]
    lines.append(base.line("BASELINE read PractitionerRole by id", base_p50))
    lines += [stat.line(name, base_p50) for name, stat in stats.items()]
    worst = max(percentile(s.times, 95) for s in stats.values()) * 1e3
    met = sum(percentile(s.times, 95) * 1e3 <= TARGET_P95_MS for s in stats.values())
    lines.append(f"   {met}/{len(stats)} queries with p95 ≤ {TARGET_P95_MS:.0f} ms; worst p95 {worst:.1f} ms")
    for line in lines:
        print(line, flush=True)
    if args.explain:
        statements = Statements(store)
        for name, build in QUERIES.items():
            if percentile(stats[name].times, 95) * 1e3 > TARGET_P95_MS or args.explain_all:
                explain(store, statements, name, build(drawn, random.Random(0)))
    store.engine.dispose()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="postgres")
    parser.add_argument("--professionals", type=int, default=500_000, help="PostgreSQL directory size")
    parser.add_argument("--sqlite-professionals", type=int, default=50_000, help="SQLite directory size")
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1, help="the directory's seed")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN the queries over target")
    parser.add_argument("--explain-all", action="store_true", help="with --explain: every query")
    parser.add_argument("--drop", action="store_true", help="drop the bench directory afterwards")
    args = parser.parse_args()
    header("directory search latency vs primary-key read", "bench.directory_search")
    summary: list[str] = []
    for backend in backends(args.backend):
        size = args.professionals if backend == "postgres" else args.sqlite_professionals
        db = loaded(backend, size, args.seed)
        try:
            summary += run(db, args)
        finally:
            if args.drop:
                db.drop()
    if len(backends(args.backend)) > 1:
        print("== summary")
        for line in summary:
            print(line)


if __name__ == "__main__":
    main()
