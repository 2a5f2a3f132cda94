"""Factories for synthetic test resources (no real person: names and numbers are made up)."""

from __future__ import annotations

from typing import Any

# A hospital's own patient number (IPP). Not an INS: the FHIR API refuses an INS matricule on a
# Patient that was not retrieved via INSi (socle.identity.fhir_writes).
IPP_SYSTEM = "urn:oid:1.2.250.1.999.1.1"


def patient(
    family: str = "Martin",
    given: str = "Jeanne",
    *,
    ipp: str | None = None,
    birth_date: str = "1980-01-15",
    gender: str | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "name": [{"family": family, "given": [given]}],
        "birthDate": birth_date,
    }
    if ipp:
        resource["identifier"] = [{"system": IPP_SYSTEM, "value": ipp}]
    if gender:
        resource["gender"] = gender
    return resource


def observation(
    subject: str,
    *,
    code: str = "29463-7",
    value: float = 72.0,
    unit: str = "kg",
    when: str = "2024-05-17T10:00:00+02:00",
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": subject},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }
