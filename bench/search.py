"""Search latency (p50/p95) of 12 typical FHIR queries on a big store, against a primary-key read.

The store (`socle_bench_search`, default ≥ 1,000,000 resources on PostgreSQL, 100,000 on SQLite) is
loaded once through `process_bundle` with `patient_bundles()` and reused by later runs (marker table
`bench_marker`). Each query runs `--iterations` times, its parameters rotating over sampled patients;
the queries run round-robin so machine noise spreads evenly over all of them.

Path measured (printed in the header): by default `search_bundle()` inside a fresh read-only store
session, plus `orjson.dumps` of the Bundle (what the REST adapter does, without HTTP, and with no
access restriction: what a `system/*.*` client gets); with `--via http`, the FastAPI app in-process
through `TestClient` with an operator bearer token (adds routing, threadpool, token verification,
policy, rendering and the audit trace of every search).

Baseline in the same run: the primary-key read `session.read("Patient", id)` in its own read-only
session (`GET /fhir/Patient/{id}` with `--via http`); every latency is also printed as a ratio to it.
Target: p95 ≤ 25 ms on PostgreSQL. `--explain` prints, for each query over target, its slowest SQL
statement with EXPLAIN ANALYZE (PostgreSQL) or EXPLAIN QUERY PLAN (SQLite); `--profile` prints a
cProfile split of 10 rounds of the queries (SQL wait vs planner vs SQLAlchemy).

    .venv/bin/python -m bench.search --backend postgres --resources 1000000
    .venv/bin/python -m bench.search --backend sqlite --sqlite-resources 100000
"""

from __future__ import annotations

import argparse
import cProfile
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from sqlalchemy import event, text

from bench._common import (
    BASE_URL,
    BenchDb,
    backends,
    header,
    percentile,
    profile_report,
    with_pg_options,
)
from bench._populate import people_for, populated
from socle.search.engine import search_bundle
from socle.store.repository import FhirStore

TARGET_P95_MS = 25.0
FAMILIES = ["Martin", "Dubois", "Moreau", "Garcia", "Lambert", "Fournier"]
PREFIXES = ["mar", "ber", "dub", "lef", "gir", "rob"]
LOINC = ["29463-7", "8302-2", "8867-4", "8480-6", "2339-0"]
CONDITIONS = ["44054006", "38341003", "195967001"]


@dataclass(frozen=True)
class Person:
    res_id: str
    identifier: str
    system: str  # as stored: stores loaded before the person-number system changed keep the old one


Query = Callable[[Person, random.Random], str]


def _queries() -> dict[str, Query]:
    """The 12 typical queries, as relative URLs built from a sampled person."""
    return {
        "patient by identifier": lambda p, _: f"Patient?identifier={p.system}|{p.identifier}",
        "patient family prefix": lambda _, rng: f"Patient?family={rng.choice(PREFIXES)}",
        "obs patient+code+date": lambda p, rng: (
            f"Observation?subject=Patient/{p.res_id}&code=http://loinc.org|{rng.choice(LOINC)}"
            "&date=ge2015-01-01&date=lt2026-01-01"
        ),
        "obs code _include subject": lambda _, rng: (
            f"Observation?code=http://loinc.org|{rng.choice(LOINC)}&_include=Observation:subject"
        ),
        "patient _id _revinclude obs": lambda p, _: f"Patient?_id={p.res_id}&_revinclude=Observation:subject",
        "obs chained subject.family": lambda _, rng: (
            f"Observation?subject:Patient.family={rng.choice(FAMILIES)}"
        ),
        "obs patient _sort=-date": lambda p, _: (
            f"Observation?subject=Patient/{p.res_id}&_sort=-date&_count=10"
        ),
        "obs code paging (per page)": lambda _, rng: (
            f"Observation?code=http://loinc.org|{rng.choice(LOINC)}&_count=50"
        ),
        "patient _has Condition code": lambda _, rng: (
            f"Patient?_has:Condition:subject:code=http://snomed.info/sct|{rng.choice(CONDITIONS)}"
        ),
        "obs token code": lambda _, rng: f"Observation?code=http://loinc.org|{rng.choice(LOINC)}",
        "encounter date month": lambda _, rng: _encounter_month(rng),
        "obs patient _summary=count": lambda p, rng: (
            f"Observation?subject=Patient/{p.res_id}&code=http://loinc.org|{rng.choice(LOINC)}&_summary=count"
        ),
    }


def _encounter_month(rng: random.Random) -> str:
    year, month = rng.randint(2015, 2025), rng.randint(1, 12)
    end = f"{year + 1}-01-01" if month == 12 else f"{year}-{month + 1:02d}-01"
    return f"Encounter?date=ge{year}-{month:02d}-01&date=lt{end}"


def _extras() -> dict[str, Query]:
    """Harder variants, reported apart from the 12 (global sort over a large match set)."""
    return {
        "extra: obs code _sort=-date": lambda _, rng: (
            f"Observation?code=http://loinc.org|{rng.choice(LOINC)}&_sort=-date&_count=10"
        ),
        "extra: obs code _total=accurate": lambda _, rng: (
            f"Observation?code=http://loinc.org|{rng.choice(LOINC)}&_total=accurate"
        ),
    }


def split(url: str) -> tuple[str, list[tuple[str, str]]]:
    parts = urlsplit(url)
    path = parts.path
    if path.startswith(urlsplit(BASE_URL).path + "/"):
        path = path[len(urlsplit(BASE_URL).path) + 1 :]
    return path.strip("/"), parse_qsl(parts.query, keep_blank_values=True)


class Runner:
    """Runs a relative URL (search) or a read, directly or through the in-process HTTP app."""

    def __init__(self, store: FhirStore, via: str) -> None:
        self.store = store
        self.via = via
        self.client: Any = None
        if via == "http":
            from fastapi.testclient import TestClient

            from socle.app import create_app
            from socle.auth.provider import AuthProvider
            from socle.config import Settings

            settings = Settings(database_url="sqlite://", base_url=BASE_URL.removesuffix("/fhir"))
            app = create_app(settings, store)
            # The FHIR API requires a bearer token: an operator token (system/*.*) from the app's own
            # provider, so the path includes token verification as a real client's request would.
            app.state.auth = AuthProvider.for_app(store, settings)
            token = app.state.auth.mint_operator_token("system/*.*").token
            self.client = TestClient(app, headers={"Authorization": f"Bearer {token}"})

    def search(self, url: str) -> dict[str, Any]:
        res_type, params = split(url)
        if self.client is not None:
            response = self.client.get(f"/fhir/{url}")
            assert response.status_code == 200, response.text
            parsed: dict[str, Any] = orjson.loads(response.content)
            return parsed
        with self.store.session(readonly=True) as session:
            bundle = search_bundle(session, res_type, params, BASE_URL)
            orjson.dumps(bundle)
        return bundle

    def read(self, res_type: str, res_id: str) -> bytes:
        if self.client is not None:
            response = self.client.get(f"/fhir/{res_type}/{res_id}")
            assert response.status_code == 200
            return bytes(response.content)
        with self.store.session(readonly=True) as session:
            data = session.read(res_type, res_id).data
        assert data is not None
        return data


def next_url(bundle: dict[str, Any]) -> str | None:
    for link in bundle.get("link", []):
        if link["relation"] == "next":
            url: str = link["url"]
            return url.removeprefix(BASE_URL + "/")
    return None


def sample_people(store: FhirStore, count: int, rng: random.Random) -> list[Person]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT r.res_id, t.code, t.system FROM resource r JOIN idx_token t ON t.resource_pk = r.pk "
                "WHERE r.res_type = 'Patient' AND t.res_type = 'Patient' AND t.param = 'identifier'"
            )
        ).all()
    return [Person(row[0], row[1], row[2]) for row in rng.sample(rows, min(count, len(rows)))]


@dataclass
class Stats:
    times: list[float] = field(default_factory=list)
    results: list[int] = field(default_factory=list)

    def line(self, name: str, baseline_p50: float) -> str:
        p50, p95 = percentile(self.times, 50) * 1e3, percentile(self.times, 95) * 1e3
        mark = "ok " if p95 <= TARGET_P95_MS else "MISS"
        hits = sorted(self.results)[len(self.results) // 2] if self.results else 0
        return (
            f"   {name:32s} n={len(self.times):3d}  p50 {p50:8.2f} ms  p95 {p95:8.2f} ms  "
            f"max {max(self.times) * 1e3:8.1f} ms  x{p50 / (baseline_p50 * 1e3):6.1f}  {mark}  "
            f"entries~{hits}"
        )


def _entries(bundle: dict[str, Any]) -> int:
    return int(bundle.get("total", len(bundle.get("entry", []))))


def explain(store: FhirStore, runner: Runner, url: str) -> None:
    """Run `url` once recording each SQL statement's time; EXPLAIN the slowest one."""
    recorded: list[tuple[float, str, Any]] = []
    starts: list[float] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        starts.append(time.perf_counter())

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        recorded.append((time.perf_counter() - starts.pop(), statement, parameters))

    event.listen(store.engine, "before_cursor_execute", before)
    event.listen(store.engine, "after_cursor_execute", after)
    try:
        runner.search(url)
    finally:
        event.remove(store.engine, "before_cursor_execute", before)
        event.remove(store.engine, "after_cursor_execute", after)
    seconds, statement, parameters = max(recorded, key=lambda item: item[0])
    total = sum(item[0] for item in recorded)
    print(f"   -- {url}")
    print(
        f"      {len(recorded)} SQL statements, {total * 1e3:.1f} ms in SQL; slowest {seconds * 1e3:.1f} ms:"
    )
    print("      " + " ".join(statement.split())[:1500])
    postgres = store.engine.dialect.name == "postgresql"
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
    # The plan for the actual values (an unnamed statement is planned with them). A statement that
    # psycopg has prepared (run 5+ times on a connection) may get PostgreSQL's generic plan instead:
    # compare with `--pg-options "-c plan_cache_mode=force_custom_plan"` (see bench/RESULTS.md).
    with store.engine.connect() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        cursor = raw.cursor()
        cursor.execute(prefix + statement, parameters)
        for row in cursor.fetchall():
            print("      | " + " ".join(str(col) for col in row))
        cursor.close()
        connection.rollback()


def run(db: BenchDb, args: argparse.Namespace) -> list[str]:
    store = db.store()
    runner = Runner(store, args.via)
    with store.engine.connect() as connection:
        total = int(connection.execute(text("SELECT count(*) FROM resource")).scalar_one())
    rng = random.Random(args.seed)
    people = sample_people(store, args.sample, rng)
    options = (
        f"; connection options {args.pg_options!r}" if args.pg_options and db.backend == "postgres" else ""
    )
    print(f"   store: {total} resources; {len(people)} sampled patients; path: {runner.via}{options}")
    queries = _queries()
    if args.extras:
        queries.update(_extras())
    stats: dict[str, Stats] = {name: Stats() for name in queries}
    baseline = Stats()
    for iteration in range(args.warmup + args.iterations):
        measured = iteration >= args.warmup
        person = people[iteration % len(people)]
        started = time.perf_counter()
        runner.read("Patient", person.res_id)
        elapsed = time.perf_counter() - started
        if measured:
            baseline.times.append(elapsed)
            baseline.results.append(1)
        for name, build in queries.items():
            url = build(person, rng)
            if name.startswith("obs code paging"):
                bundle = runner.search(url)
                for _page in range(5):  # follow 5 next links; each page is one sample
                    following = next_url(bundle)
                    if following is None:
                        break
                    started = time.perf_counter()
                    bundle = runner.search(following)
                    elapsed = time.perf_counter() - started
                    if measured:
                        stats[name].times.append(elapsed)
                        stats[name].results.append(_entries(bundle))
                continue
            started = time.perf_counter()
            bundle = runner.search(url)
            elapsed = time.perf_counter() - started
            if measured:
                stats[name].times.append(elapsed)
                stats[name].results.append(_entries(bundle))
    base_p50 = percentile(baseline.times, 50)
    lines = [f"-- {db.backend}: {total} resources, path {runner.via}, {args.iterations} iterations"]
    lines.append(baseline.line("BASELINE read Patient by id", base_p50))
    for name, stat in stats.items():
        lines.append(stat.line(name, base_p50))
    core = [s for n, s in stats.items() if not n.startswith("extra")]
    worst = max(percentile(s.times, 95) for s in core) * 1e3
    met = sum(percentile(s.times, 95) * 1e3 <= TARGET_P95_MS for s in core)
    lines.append(f"   {met}/{len(core)} queries with p95 ≤ {TARGET_P95_MS:.0f} ms; worst p95 {worst:.1f} ms")
    for line in lines:
        print(line)
    if args.explain:
        for name, build in queries.items():
            if percentile(stats[name].times, 95) * 1e3 > TARGET_P95_MS:
                explain(store, runner, build(people[0], random.Random(0)))
    if args.profile:
        profile = cProfile.Profile()
        for person in people[:10]:
            for build in queries.values():
                url = build(person, rng)
                profile.enable()
                runner.search(url)
                profile.disable()
        print(f"   cProfile over 10 rounds of the {len(queries)} queries:")
        for line in profile_report(profile):
            print(line)
    store.engine.dispose()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="postgres")
    parser.add_argument("--resources", type=int, default=1_000_000, help="PostgreSQL store size")
    parser.add_argument("--sqlite-resources", type=int, default=100_000, help="SQLite store size")
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--sample", type=int, default=50, help="patients the parameters rotate over")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--via", choices=["direct", "http"], default="direct")
    parser.add_argument("--extras", action="store_true", help="also run the harder extra queries")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN the queries over target")
    parser.add_argument(
        "--pg-options",
        default="",
        help="what-if: libpq options on connect, e.g. '-c plan_cache_mode=force_custom_plan'",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile 10 rounds of the queries")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="loader processes (PostgreSQL); more were slower on 2 cores (bench/RESULTS.md)",
    )
    parser.add_argument("--drop", action="store_true", help="drop the bench store afterwards")
    args = parser.parse_args()
    header("search latency vs primary-key read", "bench.search")
    summary: list[str] = []
    for backend in backends(args.backend):
        size = args.resources if backend == "postgres" else args.sqlite_resources
        name = "search" if backend == "postgres" else f"search_{size}"
        db = with_pg_options(
            populated(backend, name, people_for(size), workers=args.workers), args.pg_options
        )
        try:
            summary += run(db, args)
        finally:
            if args.drop:
                db.drop()
    if len(summary) > 20:
        print("== summary")
        for line in summary:
            print(line)


if __name__ == "__main__":
    main()
