"""Pure rules of the directory: what an MSSanté address is, how FINESS places map to INSEE codes,
how an activity is identified. No I/O here."""

from __future__ import annotations

import hashlib
import re

# Every MSSanté operator publishes its mailboxes under a sub-domain of mssante.fr
# (medecin.mssante.fr, pro.mssante.fr, <établissement>.mssante.fr...).
MSSANTE_DOMAIN = "mssante.fr"


def is_mssante_address(email: str) -> bool:
    """True for an address of the MSSanté trust space (domain mssante.fr or one of its sub-domains)."""
    _, at, domain = email.strip().lower().rpartition("@")
    return bool(at) and (domain == MSSANTE_DOMAIN or domain.endswith("." + MSSANTE_DOMAIN))


# FINESS writes overseas departments with a letter (9A Guadeloupe ... 9F Mayotte, 9J Wallis-et-
# Futuna...) and a 3-digit commune number whose first digit is the territory's own digit; the INSEE
# code is then "97" / "98" + that number (9A + 101 -> 97101 Les Abymes, 9J + 613 -> 98613 Uvea).
_OVERSEAS_INSEE_PREFIX = {"9A": "97", "9B": "97", "9C": "97", "9D": "97", "9E": "97", "9F": "97"}


def insee_commune_code(departement: str, commune: str) -> str | None:
    """The INSEE (COG) commune code of a FINESS line from its department and commune columns."""
    departement, commune = departement.strip().upper(), commune.strip()
    if len(commune) != 3 or not commune.isdigit() or len(departement) != 2:
        return None
    if departement.startswith("9") and departement[1].isalpha():
        return _OVERSEAS_INSEE_PREFIX.get(departement, "98") + commune
    if departement.isdigit() or departement in ("2A", "2B"):
        return departement + commune
    return None


_ROUTING = re.compile(r"^\s*(\d{5})\s+(.+?)\s*$")


def split_routing_line(line: str) -> tuple[str | None, str | None]:
    """ "01440 VIRIAT" -> ("01440", "VIRIAT"); the city keeps a CEDEX mention as the post writes it."""
    match = _ROUTING.match(line)
    if match is None:
        return None, line.strip() or None
    return match.group(1), match.group(2)


def activity_key(*parts: str) -> str:
    """A short stable key for one activity of a professional (same parts -> same key, every import).

    The parts are what tells two activities apart in the RPPS extraction: the structure, the mode
    of exercise, the profession, the role and the kind of activity (not the specialty: two
    specialties at one place are one activity with two specialties)."""
    digest = hashlib.sha256("|".join(p.strip().upper() for p in parts).encode("utf-8")).hexdigest()
    return digest[:10]


_ID_UNSAFE = re.compile(r"[^A-Za-z0-9.-]")


def id_part(value: str) -> str:
    """A value made safe for a FHIR id (A-Z a-z 0-9 - .): structure identifiers are mostly already."""
    return _ID_UNSAFE.sub("-", value.strip())


def practitioner_id(rpps: str) -> str:
    return f"rpps-{rpps}"


def practitioner_role_id(rpps: str, key: str) -> str:
    return f"rpps-{rpps}-{key}"


def finess_resource_id(finess: str) -> str:
    """Id of the Organization and of the Location of a FINESS establishment."""
    return f"finess-{finess}"


def rpps_structure_id(structure: str) -> str:
    """Id of the Organization of an RPPS structure that has no FINESS number (a cabinet...)."""
    return f"rpps-st-{id_part(structure)}"
