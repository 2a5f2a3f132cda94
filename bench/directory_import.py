"""RPPS and FINESS import speed (lines/s, resources/s), against a raw insert of the same resources.

The files are synthetic, in the published layouts: an RPPS "PS_LibreAcces_Personne_activite"
extraction from `tests/directory/synthetic.py` (`--people` professionals, two activity lines each)
and a FINESS establishment extraction with `--establishments` establishments and their
geolocation lines (Lambert-93, converted by the importer). Each is imported into a fresh store with
`import_rpps` / `import_finess` (batches of `DEFAULT_BATCH_SIZE` lines, the CLI's default), then
imported again (nothing changes: the idempotent path). Baseline in the same run: the JSON bytes of
the resources the import wrote, into a bare table (`bench/_raw.py`), one commit per batch.

    .venv/bin/python -m bench.directory_import --backend both --people 20000 --establishments 10000
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from pathlib import Path

from bench._common import BENCH_DIR, BenchDb, backends, bench_db, header
from bench._raw import raw_insert_seconds, stored_rows
from socle.directory.identifiers import complete_finess
from socle.directory.imports import DEFAULT_BATCH_SIZE, ImportReport, import_finess, import_rpps
from socle.store.repository import FhirStore
from tests.directory.synthetic import write_rpps_extraction

ESTABLISHMENT = (
    "structureet;{finess};{legal};PHARMACIE {n};PHARMACIE DU CENTRE {n};;;{number};R;DE LA RÉPUBLIQUE;;;"
    "{commune};{department};DEPARTEMENT;{postcode} {city};0472000000;;620;Pharmacie d'Officine;3201;"
    "Commerce de Biens à Usage Médicaux;;4773Z;01;Etablissement Tarif Libre;;;"
    "1990-09-20;1990-09-20;2026-04-02;"
)
GEOLOCATION = (
    "geolocalisation;{finess};{x:.1f};{y:.1f};"
    "1,ATLASANTE,96,BAN,EPSG:2154 RGF93 / Lambert-93 (Métropole);2026-05-04"
)
# (department, commune, postcode, city, Lambert-93 x, y) of a few towns
TOWNS = [
    ("69", "388", "69008", "LYON", 844403.3, 6517487.9),
    ("35", "238", "35000", "RENNES", 351800.0, 6789400.0),
    ("13", "201", "13001", "MARSEILLE", 893000.0, 6247000.0),
    ("75", "114", "75014", "PARIS", 651000.0, 6857000.0),
    ("33", "063", "33000", "BORDEAUX", 417000.0, 6423000.0),
]


def write_finess_extraction(path: Path, establishments: int, seed: int = 7) -> int:
    """A FINESS extraction of `establishments` pharmacies with their positions; the data lines."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        handle.write(f"finess;etalab;{establishments};2026-05-12\n")
        places = []
        for n in range(establishments):
            department, commune, postcode, city, x, y = rng.choice(TOWNS)
            finess = complete_finess(f"{department}{n:06d}")
            legal = complete_finess(f"{department}9{n % 100000:05d}")
            handle.write(
                ESTABLISHMENT.format(
                    finess=finess,
                    legal=legal,
                    n=n,
                    number=1 + n % 200,
                    commune=commune,
                    department=department,
                    postcode=postcode,
                    city=city,
                )
                + "\n"
            )
            places.append((finess, x + rng.uniform(-3000, 3000), y + rng.uniform(-3000, 3000)))
        for finess, x, y in places:
            handle.write(GEOLOCATION.format(finess=finess, x=x, y=y) + "\n")
    return 2 * establishments


def _timed(run: Callable[[], ImportReport]) -> tuple[ImportReport, float]:
    started = time.perf_counter()
    report = run()
    return report, time.perf_counter() - started


def measure(
    db: BenchDb, what: str, path: Path, lines: int, importer: Callable[[FhirStore, Path], ImportReport]
) -> list[str]:
    store = db.store()
    first, first_seconds = _timed(lambda: importer(store, path))
    again, again_seconds = _timed(lambda: importer(store, path))
    store.engine.dispose()
    written = first.count("created")
    rows = stored_rows(db)
    raw = raw_insert_seconds(db, rows, max(1, round(len(rows) * DEFAULT_BATCH_SIZE / max(1, lines))))
    rate, raw_rate = written / first_seconds, len(rows) / raw
    assert not first.rejected, first.rejected[:3]
    return [
        f"   {db.backend:8s} {what:6s} first import   {lines:7d} lines in {first_seconds:6.1f} s = "
        f"{lines / first_seconds:6.0f} lines/s, {rate:6.0f} resources/s ({written} created) | "
        f"raw {raw_rate:7.0f} res/s | ratio {rate / raw_rate:.3f}",
        f"   {db.backend:8s} {what:6s} same file again {lines:7d} lines in {again_seconds:6.1f} s = "
        f"{lines / again_seconds:6.0f} lines/s ({again.count('updated')} updated, "
        f"{again.count('unchanged')} unchanged)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--people", type=int, default=20_000, help="RPPS professionals (2 lines each)")
    parser.add_argument("--establishments", type=int, default=10_000, help="FINESS establishments")
    args = parser.parse_args()
    header("RPPS / FINESS import speed vs raw insert", "bench.directory_import")
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    rpps = BENCH_DIR / "PS_LibreAcces_Personne_activite_bench.txt"
    rpps_lines = write_rpps_extraction(rpps, args.people)
    finess = BENCH_DIR / "etalab-cs1100507-stock-bench.csv"
    finess_lines = write_finess_extraction(finess, args.establishments)
    lines: list[str] = []
    for backend in backends(args.backend):
        for what, path, count, importer in (
            ("RPPS", rpps, rpps_lines, lambda s, p: import_rpps(s, p)),
            ("FINESS", finess, finess_lines, lambda s, p: import_finess(s, p)),
        ):
            db = bench_db(backend, f"import_{what.lower()}", fresh=True)
            try:
                found = measure(db, what, path, count, importer)
            finally:
                db.drop()
            for line in found:
                print(line, flush=True)
            lines += found
    print("== summary")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
