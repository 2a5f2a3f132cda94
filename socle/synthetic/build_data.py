"""Build the synthetic generator's derived tables from the public files of `../shared/data`.

Run once by a developer (the outputs are committed); the platform never runs it, and only this script
needs pyarrow (`pip install pyarrow`, outside the project's dependencies):

    python -m socle.synthetic.build_data [path/to/shared/data]

- `data/first_names.json.gz`: the most frequent first names by sex and decade of birth, with their
  counts, from the INSEE "fichier des prénoms" (national file, 1900–2024, Licence Ouverte);
- `data/places.json.gz`: the places people live and are born in: every current commune of
  metropolitan France and the overseas departments (DROM), with Paris, Lyon and Marseille split into
  their municipal arrondissements (a NIR and a postal address name the arrondissement), each with
  its name, department, first postcode and population, from the INSEE Code officiel géographique
  (@etalab/decoupage-administratif 6.0.0, Licence Ouverte).

Both outputs are deterministic (same sources, same bytes: sorted keys, gzip mtime 0).
"""

from __future__ import annotations

import gzip
import importlib
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
DEFAULT_SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"

FIRST_NAMES_PER_DECADE = 160
FIRST_DECADE, LAST_DECADE = 1920, 2020
# Overseas collectivities (975, 977, 978, 98x) are left out: the NIR and address rules differ there.
PLACE_ZONES = ("metro", "drom")
# Cities whose NIR birthplace and postal address name a municipal arrondissement.
SPLIT_CITIES = ("75056", "69123", "13055")


def _write(name: str, payload: dict[str, Any]) -> Path:
    target = DATA / name
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
    with (
        target.open("wb") as handle,
        gzip.GzipFile(fileobj=handle, mode="wb", compresslevel=9, mtime=0) as out,
    ):
        out.write(raw)
    return target


def first_names(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Decade -> sex -> [[name, births], ...], most frequent first, `FIRST_NAMES_PER_DECADE` each."""
    counts: dict[tuple[int, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        year = int(row["periode"])
        decade = year - year % 10
        if not FIRST_DECADE <= decade <= LAST_DECADE:
            continue
        sex = {"1": "male", "2": "female"}[row["sexe"]]
        counts[decade, sex][row["prenom"]] += int(row["valeur"])
    decades: dict[str, dict[str, list[list[Any]]]] = {}
    for (decade, sex), names in sorted(counts.items()):
        ranked = sorted(names.items(), key=lambda item: (-item[1], item[0]))[:FIRST_NAMES_PER_DECADE]
        decades.setdefault(str(decade), {})[sex] = [[name, births] for name, births in ranked]
    return {
        "source": "INSEE, fichier des prénoms (édition 2024, fichier national 1900-2024)",
        "licence": "Licence Ouverte / Open Licence 2.0 (Etalab)",
        "note": f"the {FIRST_NAMES_PER_DECADE} most frequent first names per sex and decade, births summed",
        "decades": decades,
    }


def places(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """[[code, name, department, postcode, population], ...] for the communes people live in."""
    rows: list[list[Any]] = []
    by_code = {e["code"]: e for e in entries if e["type"] == "commune-actuelle"}
    for entry in entries:
        if entry.get("zone") not in PLACE_ZONES or not entry.get("codesPostaux"):
            continue
        kind = entry["type"]
        if kind == "commune-actuelle" and entry["code"] not in SPLIT_CITIES:
            name = entry["nom"]
        elif kind == "arrondissement-municipal" and entry.get("commune") in SPLIT_CITIES:
            name = by_code[entry["commune"]]["nom"]  # "Paris", as an address writes it
        else:
            continue
        rows.append(
            [entry["code"], name, entry["departement"], entry["codesPostaux"][0], entry.get("population", 0)]
        )
    rows.sort()
    return {
        "source": "INSEE Code officiel géographique via @etalab/decoupage-administratif 6.0.0",
        "licence": "Licence Ouverte / Open Licence 2.0 (Etalab)",
        "columns": ["code", "name", "department", "postcode", "population"],
        "places": rows,
    }


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    shared = Path(args[0]) if args else DEFAULT_SHARED
    parquet: Any = importlib.import_module("pyarrow.parquet")  # only here: not a platform dependency
    rows = parquet.read_table(shared / "insee-prenoms-1900-2024.parquet").to_pylist()
    names = _write("first_names.json.gz", first_names(rows))
    with gzip.open(shared / "insee-communes-cog.json.gz", "rt", encoding="utf-8") as handle:
        table = places(json.load(handle))
    communes = _write("places.json.gz", table)
    print(f"{names}\n{communes}: {len(table['places'])} places")


if __name__ == "__main__":
    main()
