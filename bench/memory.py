"""Memory while loading and while paging through everything: process RSS over time, which should be flat.

Three phases on a fresh store (`socle_bench_memory`), all in this process so its RSS is the
platform's (plus the generator of synthetic bundles, which keeps nothing):

1. **load**: `--people` transaction bundles through `process_bundle`; RSS every 5% of the load.
2. **page**: every Observation by following `next` links (`Observation?_count=N`), each page in its own
   read-only session and serialized with `orjson.dumps`, as the REST adapter does; RSS every 10% of
   the pages; checks that the pages add up to every Observation exactly once.
3. **$everything**: `Patient/{id}/$everything` for many patients through `handle()`, following its
   `next` links (small `_count` so it really pages); RSS every 10%.

Baseline: the RSS after the store is opened and warmed (first bundles loaded); growth is printed
against it, with the peak (getrusage ru_maxrss). On SQLite, each pooled connection may cache up to
64 MiB of pages (`PRAGMA cache_size=-65536` in socle/store/engine.py): growth up to that bound is the
page cache filling, not a leak; a leak keeps growing with the pages read.

    .venv/bin/python -m bench.memory --backend both --people 3000
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

import orjson
from sqlalchemy import text

from bench._common import BASE_URL, BenchDb, backends, bench_db, header, peak_rss_mb, post_bundle, rss_mb
from bench.search import next_url, split
from socle.auth.context import RequestContext
from socle.fhir.interactions import FhirRequest, handle
from socle.search.engine import search_bundle
from socle.store.repository import FhirStore
from socle.synthetic import patient_bundles

OPERATOR = RequestContext.operator("socle-bench")


class Tracker:
    """Prints RSS against a baseline taken when `start()` is called."""

    def __init__(self) -> None:
        self.base = 0.0
        self.started = 0.0
        self.readings: list[float] = []

    def start(self, label: str) -> None:
        gc.collect()
        self.base = rss_mb()
        self.started = time.perf_counter()
        self.readings = []
        print(f"   {label}: baseline RSS {self.base:.1f} MiB")

    def mark(self, progress: str) -> None:
        now = rss_mb()
        self.readings.append(now)
        print(
            f"   {time.perf_counter() - self.started:7.1f} s  {progress:38s} RSS {now:7.1f} MiB "
            f"({now - self.base:+6.1f})  peak {peak_rss_mb():7.1f} MiB",
            flush=True,
        )

    def verdict(self, phase: str) -> str:
        """Growth over the second half of the phase: flat if it stops growing once warm."""
        half = self.readings[len(self.readings) // 2 :]
        first, last = half[0], half[-1]
        return (
            f"{phase}: RSS {self.base:.0f} → {self.readings[-1]:.0f} MiB "
            f"(+{self.readings[-1] - self.base:.1f}); second half {last - first:+.1f} MiB"
        )


def load(store: FhirStore, people: int, tracker: Tracker) -> int:
    source = patient_bundles(people + 20, seed=11)
    for _ in range(20):  # warm up: definitions, compiled SQL, connection pool
        post_bundle(store, next(source))
    tracker.start("load")
    step = max(1, people // 20)
    resources = 0
    for i, bundle in enumerate(source, start=1):
        resources += len(post_bundle(store, bundle)["entry"])
        if i % step == 0:
            tracker.mark(f"{i}/{people} bundles, {resources} resources")
    return resources


def page_all(store: FhirStore, count: int, tracker: Tracker) -> tuple[int, int]:
    with store.engine.connect() as connection:
        expected = int(
            connection.execute(
                text("SELECT count(*) FROM resource WHERE res_type = 'Observation'")
            ).scalar_one()
        )
    pages_expected = max(1, -(-expected // count))
    step = max(1, pages_expected // 10)
    tracker.start(f"page all {expected} Observations, _count={count}")
    url: str | None = f"Observation?_count={count}"
    seen: set[str] = set()
    pages = 0
    while url is not None:
        res_type, params = split(url)
        with store.session(readonly=True) as session:
            bundle = search_bundle(session, res_type, params, BASE_URL, max_count=count)
            body = orjson.dumps(bundle)
        for entry in bundle.get("entry", []):
            seen.add(entry["fullUrl"])
        pages += 1
        del body
        url = next_url(bundle)
        if pages % step == 0:
            tracker.mark(f"page {pages}/{pages_expected}, {len(seen)} seen")
    if len(seen) != expected:
        print(f"   !! paging returned {len(seen)} distinct Observations, expected {expected}")
    return pages, len(seen)


def everything(store: FhirStore, patients: int, count: int, tracker: Tracker) -> int:
    with store.engine.connect() as connection:
        ids = [
            row[0]
            for row in connection.execute(
                text("SELECT res_id FROM resource WHERE res_type = 'Patient' ORDER BY pk LIMIT :n"),
                {"n": patients},
            )
        ]
    step = max(1, len(ids) // 10)
    tracker.start(f"$everything on {len(ids)} patients, _count={count}")
    resources = 0
    for i, patient_id in enumerate(ids, start=1):
        url: str | None = f"Patient/{patient_id}/$everything?_count={count}"
        while url is not None:
            request = FhirRequest.from_url("GET", url, base_url=BASE_URL)
            with store.session(readonly=True) as session:
                response = handle(request, session, OPERATOR)
            assert response.body is not None
            bundle: dict[str, Any] = orjson.loads(response.body)
            resources += len(bundle.get("entry", []))
            url = next_url(bundle)
        if i % step == 0:
            tracker.mark(f"{i}/{len(ids)} patients, {resources} resources")
    return resources


def run(db: BenchDb, args: argparse.Namespace) -> list[str]:
    store = db.store()
    tracker = Tracker()
    print(f"-- {db.backend}")
    lines = [f"-- {db.backend}: {args.people} people"]
    resources = load(store, args.people, tracker)
    lines.append(f"   {tracker.verdict(f'load {resources} resources')}")
    pages, seen = page_all(store, args.page_size, tracker)
    lines.append(f"   {tracker.verdict(f'paging {pages} pages / {seen} Observations')}")
    total = everything(store, args.patients, args.everything_count, tracker)
    lines.append(f"   {tracker.verdict(f'$everything {total} resources')}")
    lines.append(f"   peak RSS of the process {peak_rss_mb():.0f} MiB")
    store.engine.dispose()
    for line in lines:
        print(line)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--people", type=int, default=3000, help="bundles to load (≈21 resources each)")
    parser.add_argument("--page-size", type=int, default=100, help="_count while paging")
    parser.add_argument("--patients", type=int, default=1000, help="patients for $everything")
    parser.add_argument("--everything-count", type=int, default=5, help="_count for $everything")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    header("memory: RSS while loading and paging", "bench.memory")
    summary: list[str] = []
    for backend in backends(args.backend):
        db = bench_db(backend, "memory", fresh=True)
        try:
            summary += run(db, args)
        finally:
            if not args.keep:
                db.drop()
    print("== summary")
    for line in summary:
        print(line)


if __name__ == "__main__":
    main()
