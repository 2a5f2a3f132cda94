"""Directory nomenclatures as data: TRE_G15 professions, TRE_R95, TRE_R38 specialties, TRE_R11 titles.

The tables live in `socle/directory/data/*.json` (each file records its origin and licence); this
module only loads them once and answers look-ups. Codings are FHIR `Coding` dicts.

    profession("10")  # {"system": ".../TRE-G15-ProfessionSante", "code": "10", "display": "Médecin"}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"

# Systems of the MOS nomenclatures the directory writes without carrying their table: the codes are
# copied from the extraction as they are (mode d'exercice, rôle, genre d'activité, secteur...).
TRE_R04_TYPE_SAVOIR_FAIRE = (
    "https://mos.esante.gouv.fr/NOS/TRE_R04-TypeSavoirFaire/FHIR/TRE-R04-TypeSavoirFaire"
)
TRE_R09_CATEGORIE_PROFESSIONNELLE = (
    "https://mos.esante.gouv.fr/NOS/TRE_R09-CategorieProfessionnelle/FHIR/TRE-R09-CategorieProfessionnelle"
)
TRE_R21_FONCTION = "https://mos.esante.gouv.fr/NOS/TRE_R21-Fonction/FHIR/TRE-R21-Fonction"
TRE_R22_GENRE_ACTIVITE = "https://mos.esante.gouv.fr/NOS/TRE_R22-GenreActivite/FHIR/TRE-R22-GenreActivite"
TRE_R23_MODE_EXERCICE = "https://mos.esante.gouv.fr/NOS/TRE_R23-ModeExercice/FHIR/TRE-R23-ModeExercice"
TRE_R02_SECTEUR_ACTIVITE = (
    "https://mos.esante.gouv.fr/NOS/TRE_R02-SecteurActivite/FHIR/TRE-R02-SecteurActivite"
)
TRE_R66_CATEGORIE_ETABLISSEMENT = (
    "https://mos.esante.gouv.fr/NOS/TRE_R66-CategorieEtablissement/FHIR/TRE-R66-CategorieEtablissement"
)
TRE_R13_COMMUNE = "https://mos.esante.gouv.fr/NOS/TRE_R13-Commune/FHIR/TRE-R13-Commune"
TRE_R256_TYPE_MESSAGERIE = (
    "https://mos.esante.gouv.fr/NOS/TRE_R256-TypeMessagerie/FHIR/TRE-R256-TypeMessagerie"
)
TRE_R257_TYPE_BAL = "https://mos.esante.gouv.fr/NOS/TRE_R257-TypeBAL/FHIR/TRE-R257-TypeBAL"

# The savoir-faire type whose codes are TRE_R38 specialties ("Spécialité ordinale").
SPECIALTY_SKILL_TYPE = "S"


@dataclass(frozen=True, slots=True)
class Concept:
    code: str
    display: str
    prefix: str | None = None  # TRE_R11 only: the abbreviated title written before the name


@dataclass(frozen=True, slots=True)
class Nomenclature:
    """One code system table: its URL, optional OID, origin, licence and concepts by code."""

    name: str
    system: str
    source: str
    licence: str
    concepts: dict[str, Concept]
    oid: str | None = None

    def coding(self, code: str, display: str | None = None) -> dict[str, str]:
        """A Coding for `code`; the table's label wins, `display` serves for codes it does not know."""
        concept = self.concepts.get(code)
        label = concept.display if concept else display
        coding = {"system": self.system, "code": code}
        if label:
            coding["display"] = label
        return coding


def _load(file_name: str) -> Nomenclature:
    raw: dict[str, Any] = json.loads((DATA / file_name).read_text(encoding="utf-8"))
    concepts = {c["code"]: Concept(c["code"], c["display"], c.get("prefix")) for c in raw["concepts"]}
    return Nomenclature(raw["name"], raw["system"], raw["source"], raw["licence"], concepts, raw.get("oid"))


@cache
def tre_g15() -> Nomenclature:
    return _load("tre_g15_profession_sante.json")


@cache
def tre_r95() -> Nomenclature:
    return _load("tre_r95_usager_titre.json")


@cache
def tre_r38() -> Nomenclature:
    return _load("tre_r38_specialite_ordinale.json")


@cache
def tre_r11() -> Nomenclature:
    return _load("tre_r11_civilite_exercice.json")


def profession_table(code: str) -> Nomenclature | None:
    """The table a profession code of the RPPS belongs to: TRE_G15, else TRE_R95 (psychologues...)."""
    for table in (tre_g15(), tre_r95()):
        if code in table.concepts:
            return table
    return None


def profession_codings(code: str) -> list[dict[str, str]]:
    """The codings of a profession: the MOS FHIR URL first (as the ANS directory writes it), then the
    TRE_G15 OID (`urn:oid:1.2.250.1.71.1.2.7`, the CI-SIS identifier) so both systems find it.
    Empty for an unknown code."""
    table = profession_table(code)
    if table is None:
        return []
    codings = [table.coding(code)]
    if table.oid:
        codings.append({**codings[0], "system": table.oid})
    return codings


def specialty_coding(code: str, display: str | None = None) -> dict[str, str]:
    """A TRE_R38 specialty coding (a code the table does not know keeps the extraction's label)."""
    return tre_r38().coding(code, display)


def title_prefix(code: str, label: str | None = None) -> str | None:
    """What goes before the name for a civilité d'exercice: "Dr", "Pr"; else the extraction's label."""
    concept = tre_r11().concepts.get(code)
    if concept is not None:
        return concept.prefix
    return label or None
