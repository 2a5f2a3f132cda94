"""Ingest throughput: synthetic transaction bundles through `process_bundle`, in resources per second.

Measures, on each backend asked for, in the same run:

- **platform**: `patient_bundles()` (Patient + Encounters + Observations + Condition + MedicationRequest
  + Immunization, `urn:uuid:` references) posted one by one to `process_bundle` on a fresh store; each
  bundle is one transaction (validation, reference rewriting, versioning, search indexing, commit).
- **raw baseline**: the same resources' JSON bytes (`orjson.dumps`) inserted into a bare table
  `bench_raw (id text, data bytea/blob)` with the database's fastest method: PostgreSQL psycopg 3
  binary COPY, SQLite `executemany`. Twice: one transaction per bundle (the same commit granularity
  as the platform, the main ratio) and one single transaction for everything (the ceiling).

- **platform, N processes** (`--workers N`, default 2; 0 skips it): the same bundles split among N
  processes (bundle i to process i % N) on another fresh store, each generating its share before a
  common start; rate = resources / (last end - first start). `--what-if-flush-before-trace` runs it
  a second time with a bench-only patch, in the worker processes only: the transaction's buffered
  rows are flushed before the audit trail takes its chain lock (`socle/audit/trail.py` `record`), so
  the lock covers the chain link and the commit instead of the whole bundle's COPY (what-if for a
  socle fix; socle's files are untouched).

The ratio printed is platform / raw. Bundle generation is outside every timer. Memory: the process
RSS is printed after each 10% of the platform load (it must stay flat, not grow with the store), then
tracemalloc follows a sample of bundles and prints the net Python allocation left per bundle.
`--profile N` runs N more bundles under cProfile and prints where the time goes. The CPU time of the
loading process per resource is printed too (`process_time`: the Python side, without the server's
work), a figure that moves less than the rate when other work shares the machine.

    .venv/bin/python -m bench.ingest --backend both --people 2000
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing as mp
import sqlite3
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import psycopg

from bench._common import (
    BenchDb,
    Timer,
    backends,
    bench_db,
    header,
    peak_rss_mb,
    post_bundle,
    profile_report,
    rss_mb,
)
from socle.synthetic import patient_bundles


def _resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in bundle["entry"]]


def run_platform(db: BenchDb, people: int, seed: int, *, quiet: bool = False) -> tuple[int, float, float]:
    """Load `people` bundles through process_bundle; returns (resources, seconds inside process_bundle,
    CPU seconds of this process inside it: the Python side, without the database server's work)."""
    store = db.store()
    timer = Timer()
    cpu = 0.0
    resources = 0
    step = max(1, people // 10)
    start_rss = rss_mb()
    if not quiet:
        print(f"   platform load: RSS at start {start_rss:.1f} MiB")
    for i, bundle in enumerate(patient_bundles(people, seed=seed), start=1):
        cpu_start = time.process_time()
        with timer:
            result = post_bundle(store, bundle)
        cpu += time.process_time() - cpu_start
        resources += len(result["entry"])
        if not quiet and (i % step == 0 or i == people):
            rate = resources / timer.total if timer.total else 0.0
            print(
                f"   {100 * i // people:3d}%  {resources:8d} resources  {rate:7.0f} res/s  "
                f"RSS {rss_mb():7.1f} MiB (+{rss_mb() - start_rss:5.1f})  peak {peak_rss_mb():7.1f} MiB"
            )
    store.engine.dispose()
    return resources, timer.total, cpu


def tracemalloc_sample(db: BenchDb, bundles: int, seed: int) -> None:
    """Net Python allocations left behind per bundle over a sample (after a warm-up)."""
    store = db.store()
    source: Iterator[dict[str, Any]] = patient_bundles(bundles + 20, seed=seed + 1)
    for _ in range(20):  # warm caches (definitions, compiled SQL) before measuring
        post_bundle(store, next(source))
    tracemalloc.start(10)
    before = tracemalloc.take_snapshot()
    for bundle in source:
        post_bundle(store, bundle)
    after = tracemalloc.take_snapshot()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stats = after.compare_to(before, "lineno")
    net = sum(s.size_diff for s in stats)
    print(
        f"   tracemalloc over {bundles} bundles: net {net / 1024:.1f} KiB "
        f"({net / bundles:.0f} B/bundle), traced peak {peak / 2**20:.1f} MiB"
    )
    for stat in stats[:3]:
        print(f"     {stat.size_diff / 1024:+8.1f} KiB  {stat.traceback[0]}")
    store.engine.dispose()


def profile_sample(db: BenchDb, bundles: int, seed: int) -> None:
    """cProfile over a sample of bundles (generated beforehand) on the loaded store."""
    store = db.store()
    sample = list(patient_bundles(bundles, seed=seed + 2))
    profile = cProfile.Profile()
    profile.enable()
    for bundle in sample:
        post_bundle(store, bundle)
    profile.disable()
    for line in profile_report(profile):
        print(line)
    store.engine.dispose()


# -- several loader processes -----------------------------------------------------------------------


def _flush_before_trace() -> None:
    """What-if (this process only): flush the session's buffered rows before the chain lock."""
    import socle.fhir.access as access

    original = access.record

    def record(session: Any, ctx: Any, trace: Any) -> str:
        session.flush()
        return original(session, ctx, trace)

    access.record = record  # type: ignore[assignment]


def _parallel_worker(
    url: str,
    backend: str,
    name: str,
    people: int,
    seed: int,
    worker: int,
    workers: int,
    what_if: bool,
    start: Any,
    results: Any,
) -> None:
    if what_if:
        _flush_before_trace()
    store = BenchDb(backend, name, url).store()
    mine = [b for i, b in enumerate(patient_bundles(people, seed=seed)) if i % workers == worker]
    post_bundle(store, mine.pop())  # warm-up: definitions, compiled SQL, connection
    results.put(("ready", worker))
    start.wait()
    began = time.monotonic()
    resources = sum(len(post_bundle(store, bundle)["entry"]) for bundle in mine)
    results.put(("done", (resources, began, time.monotonic())))
    store.engine.dispose()


def run_parallel(db: BenchDb, people: int, seed: int, workers: int, what_if: bool) -> tuple[int, float]:
    """`workers` processes loading their share of the bundles at once; (resources, wall seconds)."""
    db.store().engine.dispose()  # migrate once, before the workers start
    context = mp.get_context("spawn")
    start, results = context.Event(), context.Queue()
    procs = [
        context.Process(
            target=_parallel_worker,
            args=(db.url, db.backend, db.name, people, seed, w, workers, what_if, start, results),
        )
        for w in range(workers)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        kind, _ = results.get(timeout=600)
        assert kind == "ready"
    start.set()
    done = [results.get(timeout=3600)[1] for _ in procs]
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise SystemExit(f"loader process failed with exit code {proc.exitcode}")
    resources = sum(d[0] for d in done)
    return resources, max(d[2] for d in done) - min(d[1] for d in done)


# -- raw baselines ---------------------------------------------------------------------------------


COPY_SQL = "COPY bench_raw (id, data) FROM STDIN (FORMAT BINARY)"


def _raw_rows(bundle: dict[str, Any]) -> list[tuple[str, bytes]]:
    return [(str(uuid.uuid4()), orjson.dumps(resource)) for resource in _resources(bundle)]


def _batches(people: int, seed: int, per_transaction: bool) -> Iterator[list[tuple[str, bytes]]]:
    """Rows grouped by commit: one group per bundle, or everything in one group."""
    if per_transaction:
        for bundle in patient_bundles(people, seed=seed):
            yield _raw_rows(bundle)
    else:
        yield [row for bundle in patient_bundles(people, seed=seed) for row in _raw_rows(bundle)]


def run_raw_postgres(db: BenchDb, people: int, seed: int, per_transaction: bool) -> tuple[int, float]:
    timer = Timer()
    rows = 0
    with psycopg.connect(db.url) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_raw")
        conn.execute("CREATE TABLE bench_raw (id text, data bytea)")
        conn.commit()
        for batch in _batches(people, seed, per_transaction):
            with timer:
                with (
                    conn.cursor() as cur,
                    cur.copy("COPY bench_raw (id, data) FROM STDIN (FORMAT BINARY)") as cp,
                ):
                    cp.set_types(["text", "bytea"])
                    for row in batch:
                        cp.write_row(row)
                conn.commit()
            rows += len(batch)
        conn.execute("DROP TABLE bench_raw")
        conn.commit()
    return rows, timer.total


def run_raw_sqlite(db: BenchDb, people: int, seed: int, per_transaction: bool) -> tuple[int, float]:
    timer = Timer()
    rows = 0
    conn = sqlite3.connect(db.url.removeprefix("sqlite:///"), isolation_level=None)
    # The same settings as the store's engine (socle/store/engine.py), so only the work differs.
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute("DROP TABLE IF EXISTS bench_raw")
    conn.execute("CREATE TABLE bench_raw (id TEXT, data BLOB)")
    for batch in _batches(people, seed, per_transaction):
        with timer:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO bench_raw (id, data) VALUES (?, ?)", batch)
            conn.execute("COMMIT")
        rows += len(batch)
    conn.execute("DROP TABLE bench_raw")
    conn.close()
    return rows, timer.total


def run_raw(db: BenchDb, people: int, seed: int, per_transaction: bool) -> tuple[int, float]:
    if db.backend == "postgres":
        return run_raw_postgres(db, people, seed, per_transaction)
    return run_raw_sqlite(db, people, seed, per_transaction)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--people", "--size", type=int, default=2000, help="bundles (≈21 resources each)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tracemalloc-bundles", type=int, default=100, help="0 skips the sample")
    parser.add_argument("--profile", type=int, default=0, help="cProfile this many more bundles")
    parser.add_argument("--workers", type=int, default=2, help="processes of the parallel run (0: skip)")
    parser.add_argument(
        "--what-if-flush-before-trace",
        action="store_true",
        help="also run the parallel load with the buffered rows flushed before the chain lock",
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench databases afterwards")
    args = parser.parse_args()
    header("ingest: process_bundle vs raw insert of the same JSON", "bench.ingest")
    summary: list[str] = []
    for backend in backends(args.backend):
        print(f"-- {backend}: {args.people} transaction bundles")
        raw_db = bench_db(backend, "ingest_raw", fresh=True)
        platform_db = bench_db(backend, "ingest", fresh=True)
        try:
            raw_rows, raw_tx = run_raw(raw_db, args.people, args.seed, per_transaction=True)
            _, raw_bulk = run_raw(raw_db, args.people, args.seed, per_transaction=False)
            started = time.perf_counter()
            resources, seconds, cpu = run_platform(platform_db, args.people, args.seed)
            wall = time.perf_counter() - started
            if args.tracemalloc_bundles:
                tracemalloc_sample(platform_db, args.tracemalloc_bundles, args.seed)
            if args.profile:
                profile_sample(platform_db, args.profile, args.seed)
            parallel: list[tuple[str, int, float]] = []
            variants = [False, True] if args.what_if_flush_before_trace else [False]
            for what_if in variants if args.workers > 0 else []:
                parallel_db = bench_db(backend, "ingest_parallel", fresh=True)
                try:
                    label = f"platform, {args.workers} processes" + (
                        ", what-if flush before trace" if what_if else ""
                    )
                    count, elapsed = run_parallel(parallel_db, args.people, args.seed, args.workers, what_if)
                    parallel.append((label, count, elapsed))
                finally:
                    if not args.keep:
                        parallel_db.drop()
        finally:
            if not args.keep:
                raw_db.drop()
                platform_db.drop()
        rate = resources / seconds
        raw_tx_rate, raw_bulk_rate = raw_rows / raw_tx, raw_rows / raw_bulk
        print(f"   {'raw, one transaction per bundle':48s}: {raw_tx_rate:9.0f} resources/s ({raw_rows} rows)")
        print(f"   {'raw, one transaction for all':48s}: {raw_bulk_rate:9.0f} resources/s")
        print(
            f"   {'platform (process_bundle), 1 process':48s}: {rate:9.0f} resources/s "
            f"({resources} resources, {seconds:.1f} s in process_bundle, {wall:.1f} s wall)"
        )
        print(
            f"   {'CPU of this process in process_bundle':48s}: {1e6 * cpu / resources:9.0f} µs per resource"
        )
        line = (
            f"{backend:8s} platform {rate:7.0f} res/s | raw per-bundle {raw_tx_rate:7.0f} res/s "
            f"ratio {rate / raw_tx_rate:.3f} | raw bulk {raw_bulk_rate:7.0f} res/s "
            f"ratio {rate / raw_bulk_rate:.3f}"
        )
        if backend == "postgres":
            ok = rate >= 3000 and rate / raw_tx_rate >= 0.25
            line += f" | target ≥3000 res/s & ratio ≥0.25: {'MET' if ok else 'MISSED'}"
        summary.append(line)
        for label, count, elapsed in parallel:
            prate = count / elapsed
            print(f"   {label:48s}: {prate:9.0f} resources/s ({count} resources, {elapsed:.1f} s wall)")
            pline = f"{backend:8s} {label}: {prate:7.0f} res/s, ratio to raw per-bundle "
            pline += f"{prate / raw_tx_rate:.3f}"
            if backend == "postgres":
                ok = prate >= 3000 and prate / raw_tx_rate >= 0.25
                pline += f" | target: {'MET' if ok else 'MISSED'}"
            summary.append(pline)
    print("== summary")
    for line in summary:
        print("   " + line)


if __name__ == "__main__":
    main()
