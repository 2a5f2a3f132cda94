"""The benchmarks' generator: Synthea-like transaction Bundles, one per person (kept as it was).

`patient_bundles()` yields one transaction Bundle per person (the Patient and a mix of encounters,
conditions, observations, immunizations and medication requests, linked by `urn:uuid:`
references). The benchmarks (`bench/`) measure ingest and search against stores loaded with exactly
these bundles, so their content must not change: the realistic France of `socle.synthetic.seeding`
is a separate generator.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

from socle.canonical import identifier_system

# The person's number in the generated population. Not an INS: a Patient may only carry an INS
# matricule retrieved via INSi (see socle.identity.fhir_writes), and these numbers are no NIR.
PERSON_NUMBER_SYSTEM = identifier_system("synthetic-person")

FAMILY = [
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefèvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "André",
    "Mercier",
    "Dupont",
    "Lambert",
    "Bonnet",
    "François",
    "Martinez",
    "N'Diaye",
]
GIVEN_F = ["Marie", "Jeanne", "Camille", "Léa", "Chloé", "Manon", "Inès", "Zoé", "Élodie", "Anne-Sophie"]
GIVEN_M = ["Jean", "Pierre", "Louis", "Lucas", "Hugo", "Gabriel", "Arthur", "Noé", "Jérôme", "Jean-Baptiste"]
VITALS = [
    ("29463-7", "Poids corporel", 50.0, 110.0, "kg"),
    ("8302-2", "Taille", 150.0, 195.0, "cm"),
    ("8867-4", "Fréquence cardiaque", 50.0, 110.0, "/min"),
    ("8480-6", "Pression artérielle systolique", 95.0, 170.0, "mm[Hg]"),
    ("2339-0", "Glucose", 3.5, 9.0, "mmol/L"),
]
CONDITIONS = [
    ("44054006", "Diabète de type 2"),
    ("38341003", "Hypertension artérielle"),
    ("195967001", "Asthme"),
]
VACCINES = [
    ("CIP-3400930000011", "Hexavalent"),
    ("CIP-3400930000028", "ROR"),
    ("CIP-3400930000035", "Grippe"),
]
MEDICATIONS = [("3400936403114", "Metformine 500 mg"), ("3400934998331", "Ramipril 5 mg")]


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def patient_bundle(rng: random.Random, index: int, encounters: int = 3) -> dict[str, Any]:
    female = rng.random() < 0.5
    given = rng.choice(GIVEN_F if female else GIVEN_M)
    year, month, day = rng.randint(1935, 2020), rng.randint(1, 12), rng.randint(1, 28)
    patient_urn = _urn()
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": patient_urn,
            "resource": {
                "resourceType": "Patient",
                "identifier": [{"system": PERSON_NUMBER_SYSTEM, "value": f"{index:013d}"}],
                "name": [{"family": rng.choice(FAMILY), "given": [given]}],
                "gender": "female" if female else "male",
                "birthDate": f"{year:04d}-{month:02d}-{day:02d}",
                "address": [
                    {"city": rng.choice(["Paris", "Lyon", "Marseille", "Lille", "Rennes"]), "country": "FR"}
                ],
            },
            "request": {"method": "POST", "url": "Patient"},
        }
    ]
    subject = {"reference": patient_urn}
    for _ in range(encounters):
        start = f"{rng.randint(2015, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        encounter_urn = _urn()
        entries.append(
            _entry(
                encounter_urn,
                {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                    "subject": subject,
                    "period": {"start": f"{start}T09:00:00+01:00", "end": f"{start}T09:30:00+01:00"},
                },
            )
        )
        for code, label, low, high, unit in VITALS:
            entries.append(
                _entry(
                    _urn(),
                    {
                        "resourceType": "Observation",
                        "status": "final",
                        "category": [
                            {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                        "code": "vital-signs",
                                    }
                                ]
                            }
                        ],
                        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": label}]},
                        "subject": subject,
                        "encounter": {"reference": encounter_urn},
                        "effectiveDateTime": f"{start}T09:10:00+01:00",
                        "valueQuantity": {
                            "value": round(rng.uniform(low, high), 1),
                            "unit": unit,
                            "system": "http://unitsofmeasure.org",
                            "code": unit,
                        },
                    },
                )
            )
    if rng.random() < 0.4:
        code, label = rng.choice(CONDITIONS)
        entries.append(
            _entry(
                _urn(),
                {
                    "resourceType": "Condition",
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "code": {
                        "coding": [{"system": "http://snomed.info/sct", "code": code, "display": label}]
                    },
                    "subject": subject,
                    "onsetDateTime": f"{rng.randint(2000, 2024)}",
                },
            )
        )
        med, med_label = rng.choice(MEDICATIONS)
        entries.append(
            _entry(
                _urn(),
                {
                    "resourceType": "MedicationRequest",
                    "status": "active",
                    "intent": "order",
                    "medicationCodeableConcept": {
                        "coding": [
                            {
                                "system": "http://data.esante.gouv.fr/ansm/medicament/codeCIP13",
                                "code": med,
                                "display": med_label,
                            }
                        ]
                    },
                    "subject": subject,
                    "authoredOn": f"{rng.randint(2020, 2025)}-03-01",
                    "dosageInstruction": [{"text": "1 comprimé matin et soir"}],
                },
            )
        )
    vaccine, vaccine_label = rng.choice(VACCINES)
    entries.append(
        _entry(
            _urn(),
            {
                "resourceType": "Immunization",
                "status": "completed",
                "vaccineCode": {
                    "coding": [
                        {
                            "system": "http://data.esante.gouv.fr/ansm/medicament/codeCIP13",
                            "code": vaccine,
                            "display": vaccine_label,
                        }
                    ]
                },
                "patient": subject,
                "occurrenceDateTime": f"{rng.randint(2010, 2025)}-10-15",
            },
        )
    )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _entry(full_url: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def patient_bundles(people: int, *, seed: int = 1, encounters: int = 3) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    # uuid4 draws from the OS; fullUrls only need to be unique within a bundle, so that is fine.
    for index in range(people):
        yield patient_bundle(rng, index, encounters)
