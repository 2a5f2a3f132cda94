"""Canonical URLs of what Socle defines itself: identifier systems, code systems, extensions.

One base for all of them, so that a deployment (or a future published implementation guide) moves
them with one edit. A concept that FR Core, the ANS or HL7 already defines is written with their
URL, never with this base: these are only for what exists nowhere else.

    ACCEPTING_NEW_PATIENTS = structure_definition("practitionerrole-accepting-new-patients")
"""

from __future__ import annotations

SOCLE_FHIR = "https://socle.sante.fr/fhir"


def structure_definition(name: str) -> str:
    """The canonical URL of one of Socle's extensions or profiles."""
    return f"{SOCLE_FHIR}/StructureDefinition/{name}"


def code_system(name: str) -> str:
    """The canonical URL of one of Socle's code systems."""
    return f"{SOCLE_FHIR}/CodeSystem/{name}"


def identifier_system(name: str) -> str:
    """The system URI of identifiers Socle assigns (prescription ids, OAuth clients, requests)."""
    return f"{SOCLE_FHIR}/sid/{name}"
