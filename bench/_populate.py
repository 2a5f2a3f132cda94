"""A populated bench store, loaded once through `process_bundle` and reused by later runs.

The database `socle_bench_<name>` gets a marker table `bench_marker` (people, seed, resources) when
its load completes; a later run asking for at most that many people reuses it as is. Loading splits
the bundles of `patient_bundles(people, seed)` among worker processes (bundle i goes to worker
i % workers), so identifiers (`index` of the person) stay unique and deterministic.

Autovacuum is off on the bench server, so a store that is never analysed is planned as empty: worker
0 runs `FhirStore.analyze()` early in the load (after 500, 5,000 and 20,000 of its bundles), as an
operator loading a big store would, and the whole store gets `VACUUM ANALYZE` at the end.
"""

from __future__ import annotations

import multiprocessing as mp
import time

from sqlalchemy import text

from bench._common import BenchDb, bench_db, post_bundle
from socle.synthetic import patient_bundles

RESOURCES_PER_PERSON = 20.8  # measured mean of patient_bundles(encounters=3)


def people_for(resources: int) -> int:
    return max(1, round(resources / RESOURCES_PER_PERSON))


def marker(db: BenchDb) -> tuple[int, int, int] | None:
    """(people, seed, resources) of a completed load, or None."""
    engine = db.engine()
    try:
        with engine.connect() as connection:
            try:
                row = connection.execute(text("SELECT people, seed, resources FROM bench_marker")).first()
            except Exception:
                return None
            return (int(row[0]), int(row[1]), int(row[2])) if row else None
    finally:
        engine.dispose()


ANALYZE_AFTER = (500, 5_000, 20_000)  # bundles of worker 0


def _worker(url: str, backend: str, name: str, people: int, seed: int, worker: int, workers: int) -> None:
    db = BenchDb(backend, name, url)
    store = db.store()
    done = 0
    resources = 0
    started = time.perf_counter()
    last, last_resources = started, 0
    for index, bundle in enumerate(patient_bundles(people, seed=seed)):
        if index % workers != worker:
            continue
        resources += len(post_bundle(store, bundle)["entry"])
        done += 1
        if worker == 0 and done in ANALYZE_AFTER:
            store.analyze()
        if worker == 0 and done % 2000 == 0:
            now = time.perf_counter()
            step_rate = (resources - last_resources) * workers / (now - last)
            print(
                f"   loading: ~{done * workers}/{people} people, ~{resources * workers} resources, "
                f"{now - started:.0f} s, last step ~{step_rate:.0f} res/s",
                flush=True,
            )
            last, last_resources = now, resources
    store.engine.dispose()


def populated(backend: str, name: str, people: int, *, seed: int = 1, workers: int = 1) -> BenchDb:
    """The bench store `socle_bench_<name>` holding at least `people` synthetic people."""
    db = bench_db(backend, name, fresh=False)
    found = marker(db)
    if found is not None and found[0] >= people and found[1] == seed:
        print(f"   reusing {db.name}: {found[0]} people, {found[2]} resources (marker found)")
        return db
    db = bench_db(backend, name, fresh=True)
    db.store().engine.dispose()  # migrate once, before the workers start
    workers = 1 if backend == "sqlite" else workers  # SQLite has one writer at a time anyway
    print(f"   loading {people} people into {db.name} with {workers} process(es)...", flush=True)
    started = time.perf_counter()
    context = mp.get_context("spawn")
    procs = [
        context.Process(target=_worker, args=(db.url, backend, db.name, people, seed, w, workers))
        for w in range(workers)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise SystemExit(f"loader process failed with exit code {proc.exitcode}")
    elapsed = time.perf_counter() - started
    engine = db.engine()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        # Fresh statistics (and, on PostgreSQL, the visibility map for index-only scans).
        connection.execute(text("VACUUM ANALYZE" if backend == "postgres" else "ANALYZE"))
    with engine.begin() as connection:
        resources = int(connection.execute(text("SELECT count(*) FROM resource")).scalar_one())
        connection.execute(
            text("CREATE TABLE bench_marker (people INTEGER, seed INTEGER, resources INTEGER)")
        )
        connection.execute(
            text("INSERT INTO bench_marker VALUES (:p, :s, :r)"), {"p": people, "s": seed, "r": resources}
        )
    engine.dispose()
    print(
        f"   loaded {resources} resources in {elapsed:.0f} s "
        f"({resources / elapsed:.0f} resources/s with {workers} process(es))",
        flush=True,
    )
    return db
