"""Build `socle/identity/data/communes.json.gz`, the compact COG commune table, from the full list.

The source is the INSEE Code officiel géographique as packaged by @etalab/decoupage-administratif
6.0.0 (`data/communes.json`, Licence Ouverte), copied to `../shared/data/insee-communes-cog.json.gz`.
The platform must run without that file, so only what birthplace checks need is kept:

- `communes`: code -> [name, department] for every code of the list: current communes, Paris/Lyon/
  Marseille municipal arrondissements (the NIR of a person born in Paris carries the arrondissement),
  delegated and associated communes (former communes merged since, still valid birthplaces);
- `within`: arrondissement or delegated/associated commune code -> the current commune it lies in;
- `former`: former codes (`anciensCodes`, e.g. 20004 for Ajaccio before Corsica was split in 1976)
  that are no longer in the list -> the current commune code.

Usage: python -m socle.identity.build_communes [path/to/insee-communes-cog.json.gz]
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

TARGET = Path(__file__).resolve().parents[1] / "socle" / "identity" / "data" / "communes.json.gz"
DEFAULT_SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "insee-communes-cog.json.gz"

# When one code appears several times (a commune nouvelle and its delegated chef-lieu share a code),
# the current commune wins.
_PRECEDENCE = {
    "commune-actuelle": 0,
    "arrondissement-municipal": 1,
    "commune-deleguee": 2,
    "commune-associee": 3,
}


def compact_table(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The compact table (see the module docstring) from the entries of the full COG list."""
    communes: dict[str, list[str]] = {}
    within: dict[str, str] = {}
    ranked = sorted(entries, key=lambda e: (_PRECEDENCE.get(e["type"], 9), e["code"]))
    for entry in ranked:
        code = entry["code"]
        if code in communes:
            continue
        communes[code] = [entry["nom"], entry["departement"]]
        parent = entry.get("commune") or entry.get("chefLieu")
        if entry["type"] != "commune-actuelle" and parent and parent != code:
            within[code] = parent
    former: dict[str, str] = {}
    for entry in entries:
        if entry["type"] != "commune-actuelle":
            continue
        for old in entry.get("anciensCodes", []):
            if old not in communes:
                former[old] = entry["code"]
    return {
        "source": "INSEE Code officiel géographique via @etalab/decoupage-administratif 6.0.0",
        "licence": "Licence Ouverte / Open Licence 2.0 (Etalab)",
        "communes": dict(sorted(communes.items())),
        "within": dict(sorted(within.items())),
        "former": dict(sorted(former.items())),
    }


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    source = Path(args[0]) if args else DEFAULT_SOURCE
    with gzip.open(source, "rt", encoding="utf-8") as handle:
        entries = json.load(handle)
    table = compact_table(entries)
    payload = json.dumps(table, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    # mtime=0 keeps the file byte-identical from one build to the next.
    with TARGET.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as out:
        out.write(payload)
    print(f"{TARGET}: {len(table['communes'])} codes, {len(table['former'])} former codes")


if __name__ == "__main__":
    main()
