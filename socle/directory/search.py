"""Public search of the health directory (santé.fr-like): who practises what, where, how far.

`search_directory` finds PractitionerRoles (one activity of a professional at one place) by the
professional's name, profession (TRE_G15), specialty (TRE_R38), town (INSEE code or name) or
postcode, distance from a point, and the availability flags the professional set. Hits carry what a
results page shows: name and title, profession and specialty labels, address, distance, MSSanté
mailbox, phone, flags.

How it runs (never by loading the directory into Python): one SQL statement on the directory's
search table (`socle.directory.projection`: one row per activity, kept in step with the resources
by every write), whose composite indexes give the rows in result order, so the statement stops at
the page whatever the size of the directory:
- `near`: the rows within the distance (`socle.search.geo.in_circle`: bounding box on the indexed
  latitude and longitude, then the great-circle test), nearest first. The search widens ring by ring
  (1, 2, 5, 10, 20, 50 km... up to the distance asked) and stops as soon as the page is full: in a
  town the first rings are enough;
- a name: the practitioners with a name token starting with each word (accents and case ignored);
- a town (INSEE code or name): its normalized name ("Lyon Cedex 03" is Lyon), within the town's
  postal department (or arrondissement); a postcode: its department, then the postcode itself; the
  place is the role's Location, else its Organization (an RPPS cabinet imported without a Location);
- profession (TRE_G15), specialty (TRE_R38), the availability flags and `active`: columns of the row.
Without `near`, results come in the directory's order (the roles' keys), page after page. The page
then reads the resources themselves (roles, practitioners, places) from the store: a few queries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, false, select, true

from socle.directory.fhir import (
    ACCEPTING_NEW_PATIENTS_EXTENSION,
    TELECONSULTATION_EXTENSION,
    is_mssante_telecom,
)
from socle.directory.nomenclatures import Nomenclature, tre_g15, tre_r38, tre_r95
from socle.directory.projection import department_of, directory_entry, directory_name, flag
from socle.errors import InvalidRequest
from socle.identity.communes import commune_table
from socle.search import geo
from socle.search.normalize import normalize_text
from socle.store.repository import StoreSession

Resource = dict[str, Any]

MAX_LIMIT = 100
RINGS_KM = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 20040.0)
_POSTCODE = re.compile(r"[0-9]{2,5}|2[AB][0-9]{0,3}")
_INSEE_CODE = re.compile(r"[0-9]{5}|2[AB][0-9]{3}")
# Paris, Lyon, Marseille arrondissements: COG code prefix -> postcode prefix (75115 -> 75015).
_ARRONDISSEMENT_POSTCODES = {"751": "750", "6938": "6900", "132": "130"}


@dataclass(frozen=True, slots=True)
class DirectoryHit:
    """One activity of a professional, as a results page shows it."""

    role_id: str
    practitioner_id: str | None
    name: str  # "Dr Élise LEFÈVRE"
    family: str | None
    given: str | None
    title: str | None  # "Dr", "Pr"
    profession_code: str | None
    profession: str | None  # label
    specialties: tuple[tuple[str, str], ...]  # (TRE_R38 code, label)
    place: str | None  # the Organization's name
    address: str | None  # "12 rue de la République, 75015 Paris"
    postcode: str | None
    city: str | None
    latitude: float | None
    longitude: float | None
    distance_km: float | None  # when the search was made from a point
    mssante: tuple[str, ...]
    phone: str | None
    accepting_new_patients: bool | None  # None: not said
    teleconsultation: bool | None


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A matching role, and the resources its row names (the place is the one that matched: the
    nearest for a search from a point, the one in the town...)."""

    pk: int
    practitioner_id: str | None
    organization_id: str | None
    location_id: str | None


# -- inputs ---------------------------------------------------------------------------------------


def _concept_code(table: Nomenclature, value: str) -> str | None:
    """A code of `table` from its code or its label (case and accents ignored)."""
    wanted = value.strip()
    if wanted in table.concepts:
        return wanted
    if wanted.upper() in table.concepts:
        return wanted.upper()
    normalized = normalize_text(wanted)
    for code, concept in table.concepts.items():
        if normalize_text(concept.display) == normalized:
            return code
    return None


def profession_code(value: str) -> tuple[str, str]:
    """(system, code) of a profession given by TRE_G15 (or TRE_R95) code or label."""
    for table in (tre_g15(), tre_r95()):
        code = _concept_code(table, value)
        if code is not None:
            return table.system, code
    raise InvalidRequest(
        f"profession inconnue : « {value} » (code ou libellé TRE_G15 attendu, par exemple 10 Médecin, "
        "21 Pharmacien, 40 Chirurgien-Dentiste, 50 Sage-Femme, 60 Infirmier, 70 Masseur-Kinésithérapeute)"
    )


def specialty_code(value: str) -> tuple[str, str]:
    """(system, code) of a specialty given by TRE_R38 code or label."""
    table = tre_r38()
    code = _concept_code(table, value)
    if code is None:
        raise InvalidRequest(
            f"spécialité inconnue : « {value} » (code ou libellé TRE_R38 attendu, par exemple "
            "SM54 Médecine générale, SM04 Cardio et Maladies vasculaires, SM40 Pédiatrie)"
        )
    return table.system, code


@dataclass(frozen=True, slots=True)
class Town:
    """A town to search in: its normalized name and the postcode prefix of its department."""

    name: str
    postcode_prefix: str | None


def town(value: str) -> Town:
    """A town from its INSEE (COG) code or its name; InvalidRequest for an unknown code."""
    wanted = value.strip()
    if not wanted:
        raise InvalidRequest("commune vide : un code INSEE (ex. 69123) ou un nom de commune est attendu")
    if not _INSEE_CODE.fullmatch(wanted.upper()):
        return Town(normalize_text(wanted), None)
    code = wanted.upper()
    table = commune_table()
    code = table.former.get(code, code)
    listed = table.communes.get(code)
    if listed is None:
        raise InvalidRequest(
            f"commune inconnue : code INSEE « {value} » (code officiel géographique attendu)"
        )
    name, department = listed
    for prefix, postal in _ARRONDISSEMENT_POSTCODES.items():
        if code.startswith(prefix) and code in table.within:
            parent = table.communes[table.within[code]][0]
            return Town(normalize_text(parent), postal + code[len(prefix) :])
    postal_department = "20" if department in ("2A", "2B") else department
    return Town(normalize_text(name), postal_department)


def _check_postcode(value: str) -> str:
    postcode = value.strip().upper()
    if not _POSTCODE.fullmatch(postcode):
        raise InvalidRequest(f"code postal invalide : « {value} » (de 2 à 5 chiffres, ex. 75015 ou 75)")
    return "20" + postcode[2:] if postcode[:2] in ("2A", "2B") else postcode


def _check_paging(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"nombre de résultats invalide : {limit} (entre 1 et {MAX_LIMIT})")
    if offset < 0:
        raise InvalidRequest(f"décalage invalide : {offset} (positif ou nul)")


# -- query building -------------------------------------------------------------------------------
#
# Every query reads the directory's search table (`socle.directory.projection`): one statement, whose
# indexes give the rows in result order, so it stops at the page whatever the size of the directory.


@dataclass(frozen=True, slots=True)
class _Criteria:
    profession: tuple[str, str] | None  # (system, code)
    specialty: str | None  # TRE_R38 code
    words: tuple[str, ...]  # normalized prefixes of the practitioner's names
    town: Town | None
    postcode: str | None
    accepting_new_patients: bool | None
    teleconsultation: bool | None


def _criteria(
    *,
    text: str | None,
    profession: str | None,
    specialty: str | None,
    commune: str | None,
    postcode: str | None,
    accepting_new_patients: bool | None,
    teleconsultation: bool | None,
) -> _Criteria:
    words = tuple(normalize_text(text or "").replace(",", " ").split())
    return _Criteria(
        profession_code(profession) if profession is not None else None,
        specialty_code(specialty)[1] if specialty is not None else None,
        words,
        town(commune) if commune is not None else None,
        _check_postcode(postcode) if postcode is not None else None,
        accepting_new_patients,
        teleconsultation,
    )


def _starts_with(column: Any, value: str, *, sqlite: bool) -> ColumnElement[bool]:
    """`column` starts with `value`: LIKE for PostgreSQL's pattern index (`text_pattern_ops`, right
    whatever the collation), plus a range for SQLite's (whose LIKE ignores case and so never uses an
    index). The range is not given to PostgreSQL: it would count the same condition twice in its
    estimates, and compare by the database's collation."""
    condition: ColumnElement[bool] = column.like(_prefix(value), escape="\\")
    if value and sqlite:
        condition = and_(condition, column >= value, column < value[:-1] + chr(ord(value[-1]) + 1))
    return condition


def _prefix(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _postcode(prefix: str, *, sqlite: bool) -> list[ColumnElement[bool]]:
    """The rows whose postcode starts with `prefix`: by postal department when the prefix names one
    (its index gives the rows in order), then by the postcode itself."""
    e = directory_entry
    department = department_of(prefix)
    if len(prefix) < len(department) or len(department) < 2:
        return [_starts_with(e.c.postcode, prefix, sqlite=sqlite)]
    conditions = [e.c.department == department]
    if len(prefix) == 5:
        conditions.append(e.c.postcode == prefix)
    elif len(prefix) > len(department):
        conditions.append(_starts_with(e.c.postcode, prefix, sqlite=sqlite))
    return conditions


def _conditions(criteria: _Criteria, *, sqlite: bool) -> list[ColumnElement[bool]]:
    e = directory_entry
    conditions: list[ColumnElement[bool]] = [e.c.active == true()]
    if criteria.profession is not None:
        system, code = criteria.profession
        conditions += [e.c.profession == code, e.c.profession_system == system]
    if criteria.specialty is not None:
        conditions.append(e.c.specialty == criteria.specialty)
    if criteria.town is not None:
        conditions.append(e.c.city == criteria.town.name)
        if criteria.town.postcode_prefix:
            conditions += _postcode(criteria.town.postcode_prefix, sqlite=sqlite)
    if criteria.postcode is not None:
        conditions += _postcode(criteria.postcode, sqlite=sqlite)
    if criteria.words:
        # The practitioners with every word, found among the names alone (a self-join on the
        # practitioner), before any row of the directory: PostgreSQL then estimates the few
        # practitioners found from the join, where an INTERSECT or one IN per word made it expect
        # thousands, or none, and read the whole table instead.
        first, *others = [directory_name.alias() for _ in criteria.words]
        names: Any = first
        for alias in others:
            names = names.join(alias, alias.c.practitioner_id == first.c.practitioner_id)
        practitioners = (
            select(first.c.practitioner_id)
            .select_from(names)
            .where(
                *(
                    _starts_with(alias.c.token, word, sqlite=sqlite)
                    for alias, word in zip([first, *others], criteria.words, strict=True)
                )
            )
        )
        conditions.append(e.c.practitioner_id.in_(practitioners))
    for column, wanted in (
        (e.c.accepting_new_patients, criteria.accepting_new_patients),
        (e.c.teleconsultation, criteria.teleconsultation),
    ):
        if wanted is not None:
            conditions.append(column == (true() if wanted else false()))
    return conditions


def _candidates(
    session: StoreSession, criteria: _Criteria, near: geo.NearPoint | None, chunk: int
) -> Iterator[_Candidate]:
    """Matching roles in result order (nearest first with `near`), each once, `chunk` rows at a time."""
    session.flush()  # the projection is fed at flush: a search sees the session's own writes
    connection = session.connection
    e = directory_entry
    conditions = _conditions(criteria, sqlite=connection.dialect.name == "sqlite")
    columns = (e.c.role_pk, e.c.practitioner_id, e.c.organization_id, e.c.location_id)
    seen: set[int] = set()
    if near is None:
        query = select(*columns).where(*conditions).order_by(e.c.role_pk)
        after: int | None = None
        while True:
            page = query if after is None else query.where(e.c.role_pk > after)
            rows = list(connection.execute(page.limit(chunk)))
            for row in rows:
                if row.role_pk not in seen:  # a role with several places has several rows
                    seen.add(row.role_pk)
                    yield _Candidate(*row)
            if len(rows) < chunk:
                return
            after = rows[-1].role_pk
    inner: float | None = None
    for radius in [km for km in RINGS_KM if km < near.distance_km] + [near.distance_km]:
        ring = geo.NearPoint(near.latitude, near.longitude, radius)
        in_ring, term = geo.in_circle(e.c.latitude, e.c.longitude, ring, beyond_km=inner)
        query = select(*columns).where(*conditions, *in_ring).order_by(term, e.c.role_pk)
        offset = 0
        while True:
            rows = list(connection.execute(query.limit(chunk).offset(offset)))
            for row in rows:
                if row.role_pk not in seen:  # a role at several Locations comes once, at the nearest
                    seen.add(row.role_pk)
                    yield _Candidate(*row)
            if len(rows) < chunk:
                break
            offset += chunk
        inner = radius


# -- hits -----------------------------------------------------------------------------------------


def _coding(concepts: list[Any], system: str) -> dict[str, Any] | None:
    for concept in concepts:
        for coding in concept.get("coding", []) if isinstance(concept, dict) else []:
            if coding.get("system") == system:
                return dict(coding)
    return None


def _address_text(address: Resource | None) -> tuple[str | None, str | None, str | None]:
    if not address:
        return None, None, None
    postcode, city = address.get("postalCode"), address.get("city")
    locality = " ".join(part for part in (postcode, city) if part)
    text = ", ".join([*address.get("line", []), locality] if locality else address.get("line", []))
    return text or None, postcode, city


def _hit(
    role: Resource,
    practitioner: Resource | None,
    location: Resource | None,
    organization: Resource | None,
    near: geo.NearPoint | None,
) -> DirectoryHit:
    name = (practitioner or {}).get("name", [{}])[0] if practitioner else {}
    family = name.get("family")
    given = " ".join(name.get("given", [])) or None
    title = (name.get("prefix") or [None])[0]
    display = " ".join(part for part in (title, given, family) if part) or role["id"]
    profession = _coding(role.get("code", []), tre_g15().system) or _coding(
        role.get("code", []), tre_r95().system
    )
    specialties = tuple(
        (coding["code"], coding.get("display") or tre_r38().coding(coding["code"]).get("display", ""))
        for concept in role.get("specialty", [])
        for coding in concept.get("coding", [])
        if coding.get("system") == tre_r38().system and coding.get("code")
    )
    address = (location or {}).get("address") or ((organization or {}).get("address") or [None])[0]
    text, postcode, city = _address_text(address)
    position = (location or {}).get("position") or {}
    latitude, longitude = position.get("latitude"), position.get("longitude")
    distance = None
    if near is not None and isinstance(latitude, int | float) and isinstance(longitude, int | float):
        distance = round(geo.haversine_km(near.latitude, near.longitude, latitude, longitude), 2)
    telecoms = [*role.get("telecom", []), *(practitioner or {}).get("telecom", [])]
    mailboxes = tuple(dict.fromkeys(t["value"] for t in telecoms if is_mssante_telecom(t) and t.get("value")))
    phone = next((t.get("value") for t in telecoms if t.get("system") == "phone"), None)
    return DirectoryHit(
        role_id=role["id"],
        practitioner_id=practitioner["id"] if practitioner else None,
        name=display,
        family=family,
        given=given,
        title=title,
        profession_code=profession["code"] if profession else None,
        profession=profession.get("display") if profession else None,
        specialties=specialties,
        place=(organization or {}).get("name"),
        address=text,
        postcode=postcode,
        city=city,
        latitude=float(latitude) if isinstance(latitude, int | float) else None,
        longitude=float(longitude) if isinstance(longitude, int | float) else None,
        distance_km=distance,
        mssante=mailboxes,
        phone=phone,
        accepting_new_patients=flag(role, ACCEPTING_NEW_PATIENTS_EXTENSION),
        teleconsultation=flag(role, TELECONSULTATION_EXTENSION),
    )


# -- the search -----------------------------------------------------------------------------------


def search_directory(
    session: StoreSession,
    *,
    text: str | None = None,
    profession: str | None = None,
    specialty: str | None = None,
    commune: str | None = None,
    postcode: str | None = None,
    near: tuple[float, float, float] | None = None,
    accepting_new_patients: bool | None = None,
    teleconsultation: bool | None = None,
    limit: int = 20,
    offset: int = 0,
) -> list[DirectoryHit]:
    """Professionals' activities matching every criterion given, nearest first when `near` =
    (latitude, longitude, km) is given (else in the directory's order). InvalidRequest, with a French
    message, for an unknown profession, specialty or INSEE code, a bad postcode, position or distance."""
    _check_paging(limit, offset)
    point = geo.check_point(*near) if near is not None else None
    criteria = _criteria(
        text=text,
        profession=profession,
        specialty=specialty,
        commune=commune,
        postcode=postcode,
        accepting_new_patients=accepting_new_patients,
        teleconsultation=teleconsultation,
    )
    wanted = offset + limit
    page: list[_Candidate] = []
    for candidate in _candidates(session, criteria, point, chunk=wanted + 1):
        page.append(candidate)
        if len(page) >= wanted:
            break
    page = page[offset:]
    # One query for the page: the roles, and the practitioners and places their rows name.
    ids: dict[str, set[str]] = {"Practitioner": set(), "Location": set(), "Organization": set()}
    for candidate in page:
        for res_type, res_id in (
            ("Practitioner", candidate.practitioner_id),
            ("Location", candidate.location_id),
            ("Organization", candidate.organization_id),
        ):
            if res_id is not None:
                ids[res_type].add(res_id)
    keys = {candidate.pk for candidate in page}
    roles: dict[int, Resource] = {}
    others: dict[tuple[str, str], Resource] = {}
    for stored in session.fetch_current_with(sorted(keys), ids):
        if stored.pk in keys:
            roles[stored.pk] = stored.json()
        else:
            others[stored.res_type, stored.res_id] = stored.json()
    return [
        _hit(
            roles[candidate.pk],
            others.get(("Practitioner", candidate.practitioner_id or "")),
            others.get(("Location", candidate.location_id or "")),
            others.get(("Organization", candidate.organization_id or "")),
            point,
        )
        for candidate in page
        if candidate.pk in roles
    ]
