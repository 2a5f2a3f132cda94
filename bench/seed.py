"""`socle seed --people N`: time to generate and load a synthetic France, against a raw insert.

Runs `seed_france` as the `socle seed` command does (same defaults: N/5 professionals, households in
transaction bundles of about 250 people through `process_bundle`, the directory through
`do_write_batch`, the INSi registry), into a fresh bench store. Printed: generation + load time,
resources written, resources/s. Baseline in the same run: the JSON bytes of every resource the seed
stored, inserted into a bare table (`bench/_raw.py`) with as many commits as the seed made. Issue 3
asks for "10,000 people with their histories well under a minute on SQLite".

    .venv/bin/python -m bench.seed --backend sqlite --people 10000
"""

from __future__ import annotations

import argparse
import time

from bench._common import backends, bench_db, header
from bench._raw import raw_insert_seconds, stored_rows
from socle.synthetic import seed_france
from socle.synthetic.seeding import DIRECTORY_BATCH

TARGET_SECONDS = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    header("socle seed: generate and load a synthetic France vs raw insert", "bench.seed")
    lines = []
    for backend in backends(args.backend):
        db = bench_db(backend, f"seed_{args.people}", fresh=True)
        try:
            store = db.store()
            started = time.perf_counter()
            report = seed_france(
                store, store.engine, people=args.people, seed=args.seed, base_url="http://bench"
            )
            seconds = time.perf_counter() - started
            store.engine.dispose()
            rows = stored_rows(db)
            commits = report.bundles + -(-(2 * report.sites + 2 * report.professionals) // DIRECTORY_BATCH)
            raw = raw_insert_seconds(db, rows, max(1, len(rows) // max(1, commits)))
        finally:
            db.drop()
        rate, raw_rate = len(rows) / seconds, len(rows) / raw
        mark = "met" if seconds <= TARGET_SECONDS else "MISSED"
        line = (
            f"   {backend:8s} seed --people {args.people}: {seconds:6.1f} s ({report.people} people, "
            f"{report.professionals} professionals, {report.registry} INSi identities, "
            f"{len(rows)} resources, "
            f"{report.bundles} bundles) = {rate:5.0f} res/s | raw {raw_rate:7.0f} res/s in {raw:.2f} s | "
            f"ratio {rate / raw_rate:.4f} | target < {TARGET_SECONDS:.0f} s: {mark}"
        )
        print(line, flush=True)
        lines.append(line)
    print("== summary")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
