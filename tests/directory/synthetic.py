"""Synthetic RPPS extractions of any size, in the published layout (made-up people, valid keys).

write_rpps_extraction(path, people=50_000)  # ~100k lines: two activities per person
"""

from __future__ import annotations

import random
from pathlib import Path

from socle.directory.identifiers import complete_rpps

HEADER = (
    "Type d'identifiant PP|Identifiant PP|Identification nationale PP|Code civilité d'exercice|"
    "Libellé civilité d'exercice|Code civilité|Libellé civilité|Nom d'exercice|Prénom d'exercice|"
    "Code profession|Libellé profession|Code catégorie professionnelle|Libellé catégorie professionnelle|"
    "Code type savoir-faire|Libellé type savoir-faire|Code savoir-faire|Libellé savoir-faire|"
    "Code mode exercice|Libellé mode exercice|Numéro SIRET site|Numéro SIREN site|Numéro FINESS site|"
    "Numéro FINESS établissement juridique|Identifiant technique de la structure|Raison sociale site|"
    "Enseigne commerciale site|Complément destinataire (coord. structure)|"
    "Complément point géographique (coord. structure)|Numéro Voie (coord. structure)|"
    "Indice répétition voie (coord. structure)|Code type de voie (coord. structure)|"
    "Libellé type de voie (coord. structure)|Libellé Voie (coord. structure)|"
    "Mention distribution (coord. structure)|Bureau cedex (coord. structure)|Code postal (coord. structure)|"
    "Code commune (coord. structure)|Libellé commune (coord. structure)|Code pays (coord. structure)|"
    "Libellé pays (coord. structure)|Téléphone (coord. structure)|Téléphone 2 (coord. structure)|"
    "Télécopie (coord. structure)|Adresse e-mail (coord. structure)|Code Département (structure)|"
    "Libellé Département (structure)|Ancien identifiant de la structure|Autorité d'enregistrement|"
    "Code secteur d'activité|Libellé secteur d'activité|Code section tableau pharmaciens|"
    "Libellé section tableau pharmaciens|Code rôle|Libellé rôle|Code genre activité|Libellé genre activité|"
)
COLUMNS = HEADER.rstrip("|").split("|")

FAMILIES = [
    "MARTIN",
    "BERNARD",
    "DUBOIS",
    "THOMAS",
    "ROBERT",
    "RICHARD",
    "PETIT",
    "DURAND",
    "LEROY",
    "MOREAU",
    "LEFÈVRE",
    "GARÇON",
    "N'DIAYE",
    "CASANOVA",
    "LE BIHAN",
]
GIVENS = ["Élise", "Hélène", "Zoé", "Maïwenn", "Noël", "Jérôme", "François", "Anaïs", "Léa", "Thibault"]
PROFESSIONS = [
    ("10", "Médecin", "SM54", "Médecine générale"),
    ("60", "Infirmier", "", ""),
    ("70", "Masseur-Kinésithérapeute", "", ""),
    ("21", "Pharmacien", "", ""),
    ("10", "Médecin", "SM04", "Cardiologie et maladies vasculaires"),
    ("50", "Sage-Femme", "", ""),
]
TOWNS = [
    ("69002", "69382", "Lyon"),
    ("35000", "35238", "Rennes"),
    ("20000", "2A004", "Ajaccio"),
    ("13001", "13201", "Marseille"),
    ("75014", "75114", "Paris"),
]


def rpps_line(rpps: str, activity: int, rng: random.Random) -> str:
    profession, label, specialty, specialty_label = rng.choice(PROFESSIONS)
    postcode, insee, town = rng.choice(TOWNS)
    structure = f"C{insee}{int(rpps) % 1_000_000:06d}{activity}"
    values = dict.fromkeys(COLUMNS, "")
    values.update(
        {
            "Type d'identifiant PP": "8",
            "Identifiant PP": rpps,
            "Identification nationale PP": "8" + rpps,
            "Code civilité d'exercice": "DR" if profession == "10" else "",
            "Libellé civilité d'exercice": "Docteur" if profession == "10" else "",
            "Nom d'exercice": rng.choice(FAMILIES),
            "Prénom d'exercice": rng.choice(GIVENS),
            "Code profession": profession,
            "Libellé profession": label,
            "Code catégorie professionnelle": "C",
            "Code type savoir-faire": "S" if specialty else "",
            "Code savoir-faire": specialty,
            "Libellé savoir-faire": specialty_label,
            "Code mode exercice": "L",
            "Libellé mode exercice": "Libéral",
            "Identifiant technique de la structure": structure,
            "Raison sociale site": f"CABINET {structure}",
            "Numéro Voie (coord. structure)": str(rng.randint(1, 200)),
            "Code type de voie (coord. structure)": "R",
            "Libellé Voie (coord. structure)": "DE LA RÉPUBLIQUE",
            "Code postal (coord. structure)": postcode,
            "Code commune (coord. structure)": insee,
            "Libellé commune (coord. structure)": town,
            "Téléphone (coord. structure)": f"04{rng.randint(0, 99_999_999):08d}",
            "Code secteur d'activité": "SA07",
            "Libellé secteur d'activité": "Cabinet individuel",
        }
    )
    return "|".join(values[c] for c in COLUMNS) + "|"


def write_rpps_extraction(path: Path, people: int, *, activities: int = 2, seed: int = 7) -> int:
    """Write `people` professionals with `activities` lines each; returns the number of data lines."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        handle.write(HEADER + "\n")
        for person in range(people):
            rpps = complete_rpps(f"1{person:09d}")
            for activity in range(activities):
                handle.write(rpps_line(rpps, activity, rng) + "\n")
    return people * activities
