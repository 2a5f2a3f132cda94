"""The COG commune table: which INSEE codes name a French birthplace, and which commune they are today.

The table is `data/communes.json.gz` (built by `scripts/build_communes.py` from the INSEE Code
officiel géographique, Licence Ouverte; see `data/README.md`). It holds current communes, municipal
arrondissements, delegated/associated communes and former codes still known to the list. Communes that
disappeared before the list's history starts are not in it: a known gap for the birthplaces of older
people. Country codes of births abroad (99xxx) are not in it either (no INSEE country list offline).

    commune("2A004")           -> Commune(code="2A004", name="Ajaccio", department="2A")
    current_commune_code("20004") -> "2A004"   # Ajaccio before Corsica was split in 1976
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA_FILE = Path(__file__).resolve().parent / "data" / "communes.json.gz"


@dataclass(frozen=True, slots=True)
class Commune:
    code: str
    name: str
    department: str


@dataclass(frozen=True, slots=True)
class CommuneTable:
    communes: dict[str, tuple[str, str]]  # code -> (name, department)
    within: dict[str, str]  # arrondissement / delegated commune -> current commune
    former: dict[str, str]  # former code no longer listed -> current commune


@cache
def commune_table() -> CommuneTable:
    with gzip.open(DATA_FILE, "rt", encoding="utf-8") as handle:
        raw = json.load(handle)
    return CommuneTable(
        communes={code: (name, dept) for code, (name, dept) in raw["communes"].items()},
        within=dict(raw["within"]),
        former=dict(raw["former"]),
    )


def commune(code: str) -> Commune | None:
    """The commune a code names (a former code names its current commune); None if unknown."""
    table = commune_table()
    listed = table.communes.get(code)
    if listed is not None:
        return Commune(code, *listed)
    current = table.former.get(code)
    if current is not None:
        return Commune(current, *table.communes[current])
    return None


def is_known_commune(code: str) -> bool:
    table = commune_table()
    return code in table.communes or code in table.former


def current_commune_code(code: str) -> str:
    """The current commune a code lies in (itself when current or unknown): compares birthplaces.

    Paris 15e (75115) -> Paris (75056); a delegated commune -> its commune nouvelle; 20004 -> 2A004.
    """
    table = commune_table()
    code = table.former.get(code, code)
    return table.within.get(code, code)
