"""Public search of the health directory (santé.fr-like): who practises what, where, how far.

`search_directory` finds PractitionerRoles (one activity of a professional at one place) by the
professional's name, profession (TRE_G15), specialty (TRE_R38), town (INSEE code or name) or
postcode, distance from a point, and the availability flags the professional set. Hits carry what a
results page shows: name and title, profession and specialty labels, address, distance, MSSanté
mailbox, phone, flags.

How it runs (never by loading the directory into Python): one SQL query on the search index tables
(the rows the indexing pipeline writes for every resource), started from the most selective
criterion (see "query building" below):
- `near`: the Locations within the distance (`socle.search.geo`: bounding box on the position
  index, then the great-circle test), joined to their roles, nearest first. The search widens ring
  by ring (1, 2, 5, 10, 20, 50 km... up to the distance asked) and stops as soon as the page is
  full: in a town the first rings are enough, whatever the size of the directory;
- a name: the Practitioners with a name starting with each word (accents and case ignored);
- a town (INSEE code or name) or a postcode: the Locations and Organizations there (a town by its
  normalized city, "Lyon Cedex 03" too, within the town's department; an RPPS cabinet imported
  without a Location still has its Organization's address);
- profession (TRE_G15) and specialty (TRE_R38): the role's own coded rows;
- the availability flags are extensions no search parameter indexes: they are checked on the roles
  fetched, in order, fetching more until the page is full (as are inactive roles, which are rare).
Without `near`, results come in the directory's order (the roles' keys), page after page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, CompoundSelect, Select, and_, false, literal, or_, select

from socle.directory.fhir import (
    ACCEPTING_NEW_PATIENTS_EXTENSION,
    TELECONSULTATION_EXTENSION,
    is_mssante_telecom,
)
from socle.directory.nomenclatures import Nomenclature, tre_g15, tre_r38, tre_r95
from socle.errors import InvalidRequest
from socle.identity.communes import commune_table
from socle.search import geo
from socle.search.normalize import normalize_text
from socle.store import schema
from socle.store.repository import StoreSession

Resource = dict[str, Any]

MAX_LIMIT = 100
RINGS_KM = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 20040.0)
ROLE = "PractitionerRole"
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
    pk: int
    term: float | None  # haversine term of the nearest Location (near searches)


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
# PostgreSQL estimates a token criterion (res_type, param, code, system) at a handful of rows even when
# it matches a quarter of the directory (the four columns are correlated): left to itself, it starts
# from "every nurse" and probes the position index for each. So the query says where to start: one
# "driver" set, materialized first (the positions in a ring, the practitioners with the name, the
# places in the town), joined to the roles; every other criterion is checked per role with a scalar
# subquery, which no planner turns into a join.


@dataclass(frozen=True, slots=True)
class _Criteria:
    tokens: tuple[tuple[str, str, str], ...]  # (role parameter, system, code)
    words: tuple[str, ...]  # normalized prefixes of the practitioner's names
    town: Town | None
    postcode: str | None

    @property
    def places(self) -> bool:
        return self.town is not None or self.postcode is not None


def _criteria(
    *,
    text: str | None,
    profession: str | None,
    specialty: str | None,
    commune: str | None,
    postcode: str | None,
) -> _Criteria:
    tokens: list[tuple[str, str, str]] = []
    if specialty is not None:  # the more selective first
        tokens.append(("specialty", *specialty_code(specialty)))
    if profession is not None:
        tokens.append(("role", *profession_code(profession)))
    words = tuple(normalize_text(text or "").replace(",", " ").split())
    return _Criteria(
        tuple(tokens),
        words,
        town(commune) if commune is not None else None,
        _check_postcode(postcode) if postcode is not None else None,
    )


def _starts_with(column: Any, value: str) -> ColumnElement[bool]:
    """`column` starts with `value`: LIKE for PostgreSQL's pattern index, a range for SQLite's (whose
    LIKE ignores case and so never uses an index)."""
    condition: ColumnElement[bool] = column.like(_prefix(value), escape="\\")
    if value:
        condition = and_(condition, column >= value, column < value[:-1] + chr(ord(value[-1]) + 1))
    return condition


def _prefix(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _strings(res_type: str, param: str, condition: Any) -> Select[Any]:
    s = schema.idx_string.alias()
    return select(s.c.resource_pk).where(
        s.c.res_type == res_type, s.c.param == param, condition(s.c.normalized)
    )


def _named(words: tuple[str, ...]) -> Select[Any]:
    """Ids of the Practitioners with a name part starting with each word."""
    p = schema.resource.alias("named_practitioner")
    # The name rows are the Practitioners' own: no res_type test, so that the rows found lead to the
    # resources (SQLite would otherwise scan every Practitioner).
    query = select(p.c.res_id.label("res_id")).where(p.c.deleted == false())
    for word in words:
        matches = _strings("Practitioner", "name", lambda column, w=word: _starts_with(column, w))
        query = query.where(p.c.pk.in_(matches))
    return query


def _places(criteria: _Criteria) -> list[tuple[str, str, Select[Any]]]:
    """(role reference, target type, ids) of the Locations and Organizations in the town / postcode."""
    found = []
    for reference, target in (("location", "Location"), ("organization", "Organization")):
        place = schema.resource.alias(f"place_{target.lower()}")
        query = select(place.c.res_id.label("res_id")).where(place.c.deleted == false())
        if criteria.town is not None:
            name = criteria.town.name
            in_town = _strings(
                target,
                "address-city",
                lambda column, n=name: or_(column == n, _starts_with(column, n + " cedex")),
            )
            query = query.where(place.c.pk.in_(in_town))
            if criteria.town.postcode_prefix:
                prefix = criteria.town.postcode_prefix.lower()
                query = query.where(
                    place.c.pk.in_(
                        _strings(
                            target, "address-postalcode", lambda column, p=prefix: _starts_with(column, p)
                        )
                    )
                )
        if criteria.postcode is not None:
            prefix = criteria.postcode.lower()
            query = query.where(
                place.c.pk.in_(
                    _strings(target, "address-postalcode", lambda column, p=prefix: _starts_with(column, p))
                )
            )
        found.append((reference, target, query))
    return found


def _exists(query: Select[Any]) -> ColumnElement[bool]:
    """A per-role check the planner keeps as such (a scalar subquery, never flattened into a join)."""
    return query.limit(1).scalar_subquery().is_not(None)


def _row_checks(criteria: _Criteria, *, words: bool, places: bool) -> list[ColumnElement[bool]]:
    r = schema.resource
    checks: list[ColumnElement[bool]] = []
    for param, system, code in criteria.tokens:
        t = schema.idx_token.alias()
        checks.append(
            _exists(
                # No res_type here: it would lead PostgreSQL to the (res_type, param, code) index,
                # whose estimate is wrong, instead of the role's own rows (resource_pk).
                select(t.c.resource_pk).where(
                    t.c.resource_pk == r.c.pk,
                    t.c.param == param,
                    t.c.code == code,
                    t.c.system == system,
                )
            )
        )

    def refers(reference: str, target: str, ids: Select[Any]) -> ColumnElement[bool]:
        ref = schema.idx_reference.alias()
        return _exists(
            select(ref.c.resource_pk).where(
                ref.c.resource_pk == r.c.pk,
                ref.c.param == reference,
                ref.c.target_type == target,
                ref.c.target_id.in_(ids),
            )
        )

    if words and criteria.words:
        checks.append(refers("practitioner", "Practitioner", _named(criteria.words)))
    if places and criteria.places:
        checks.append(or_(*(refers(reference, target, ids) for reference, target, ids in _places(criteria))))
    return checks


def _role_join(driver: Any, id_column: Any, target: Any, reference: Any) -> Any:
    """driver ⋈ idx_reference (role -> target) ⋈ resource (the role)."""
    r, ref = schema.resource, schema.idx_reference.alias("role_ref")
    # No res_type on the reference (the role's own row says it is a PractitionerRole): the planners
    # then go from the driver's ids to their references (target index), not the other way round.
    return driver.join(
        ref,
        and_(ref.c.target_id == id_column, ref.c.target_type == target, ref.c.param == reference),
    ).join(r, r.c.pk == ref.c.resource_pk)


def _materialized(query: Select[Any] | CompoundSelect[Any], name: str) -> Any:
    return query.cte(name).prefix_with("MATERIALIZED")  # PostgreSQL ≥ 12, SQLite ≥ 3.35


def _near_query(point: geo.NearPoint, inner_km: float | None, criteria: _Criteria) -> Select[Any]:
    """Roles at Locations in the ring (inner_km, point.distance_km], nearest first."""
    r = schema.resource
    location = schema.resource.alias("location")
    positions = _materialized(geo.within(point, "Location", beyond_km=inner_km), "positions")
    driver = positions.join(location, location.c.pk == positions.c.resource_pk)
    return (
        select(r.c.pk, positions.c.term)
        .select_from(_role_join(driver, location.c.res_id, "Location", "location"))
        .where(
            location.c.deleted == false(),
            r.c.res_type == ROLE,
            r.c.deleted == false(),
            *_row_checks(criteria, words=True, places=True),
        )
        .order_by(positions.c.term, r.c.pk)
    )


def _ordered_query(criteria: _Criteria) -> Select[Any]:
    """Roles in the directory's order (their key), started from the most selective criterion."""
    r = schema.resource
    alive = [r.c.res_type == ROLE, r.c.deleted == false()]
    if criteria.words:
        named = _materialized(_named(criteria.words), "named")
        joined = _role_join(named, named.c.res_id, "Practitioner", "practitioner")
        checks = _row_checks(criteria, words=False, places=True)
        return select(r.c.pk).select_from(joined).where(*alive, *checks).order_by(r.c.pk)
    if criteria.places:
        parts = [
            select(
                ids.subquery().c.res_id,
                literal(target).label("target"),
                literal(reference).label("reference"),
            )
            for reference, target, ids in _places(criteria)
        ]
        places = _materialized(parts[0].union_all(*parts[1:]), "places")
        ref = schema.idx_reference.alias("role_ref")
        joined = places.join(
            ref,
            and_(
                ref.c.target_id == places.c.res_id,
                ref.c.target_type == places.c.target,
                ref.c.param == places.c.reference,
            ),
        ).join(r, r.c.pk == ref.c.resource_pk)
        checks = _row_checks(criteria, words=False, places=False)
        return select(r.c.pk).distinct().select_from(joined).where(*alive, *checks).order_by(r.c.pk)
    # Only role criteria: semi-joins, which a rare specialty makes cheap and a common profession
    # satisfies within the first keys.
    conditions = []
    for param, system, code in criteria.tokens:
        t = schema.idx_token.alias()
        conditions.append(
            r.c.pk.in_(
                select(t.c.resource_pk).where(
                    t.c.res_type == ROLE, t.c.param == param, t.c.code == code, t.c.system == system
                )
            )
        )
    return select(r.c.pk).where(*alive, *conditions).order_by(r.c.pk)


def _candidates(
    session: StoreSession, criteria: _Criteria, near: geo.NearPoint | None, chunk: int
) -> Iterator[_Candidate]:
    """Matching roles in result order (nearest first with `near`), fetched `chunk` at a time."""
    session.flush()
    connection = session.connection
    if near is None:
        r = schema.resource
        query = _ordered_query(criteria)
        after: int | None = None
        while True:
            page = query if after is None else query.where(r.c.pk > after)
            pks = [row[0] for row in connection.execute(page.limit(chunk))]
            yield from (_Candidate(pk, None) for pk in pks)
            if len(pks) < chunk:
                return
            after = pks[-1]
    seen: set[int] = set()
    inner: float | None = None
    for radius in [km for km in RINGS_KM if km < near.distance_km] + [near.distance_km]:
        ring = _near_query(geo.NearPoint(near.latitude, near.longitude, radius), inner, criteria)
        offset = 0
        while True:
            rows = list(connection.execute(ring.limit(chunk).offset(offset)))
            for pk, term in rows:
                if pk not in seen:  # a role at several Locations comes once, at the nearest
                    seen.add(pk)
                    yield _Candidate(pk, term)
            if len(rows) < chunk:
                break
            offset += chunk
        inner = radius


# -- hits -----------------------------------------------------------------------------------------


def _flag(role: Resource, url: str) -> bool | None:
    for extension in role.get("extension", []):
        if extension.get("url") == url and isinstance(extension.get("valueBoolean"), bool):
            return bool(extension["valueBoolean"])
    return None


def _reference_id(reference: Any, res_type: str) -> str | None:
    value = reference.get("reference") if isinstance(reference, dict) else None
    if isinstance(value, str) and value.startswith(res_type + "/"):
        return value.split("/", 1)[1]
    return None


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
        accepting_new_patients=_flag(role, ACCEPTING_NEW_PATIENTS_EXTENSION),
        teleconsultation=_flag(role, TELECONSULTATION_EXTENSION),
    )


def _wanted(role: Resource, accepting_new_patients: bool | None, teleconsultation: bool | None) -> bool:
    if role.get("active") is False:
        return False
    if (
        accepting_new_patients is not None
        and _flag(role, ACCEPTING_NEW_PATIENTS_EXTENSION) is not accepting_new_patients
    ):
        return False
    return teleconsultation is None or _flag(role, TELECONSULTATION_EXTENSION) is teleconsultation


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
        text=text, profession=profession, specialty=specialty, commune=commune, postcode=postcode
    )
    flags = accepting_new_patients is not None or teleconsultation is not None
    wanted = offset + limit
    # Flags and inactivity are checked after fetching: fetch a few more than asked when they filter.
    chunk = max(wanted * (3 if flags else 1) + 1, 20)
    roles: list[Resource] = []
    batch: list[_Candidate] = []

    def take(candidates: list[_Candidate]) -> None:
        found = session.fetch_current([c.pk for c in candidates])
        for candidate in candidates:
            stored = found.get(candidate.pk)
            if stored is None or stored.data is None:
                continue
            role = stored.json()
            if _wanted(role, accepting_new_patients, teleconsultation):
                roles.append(role)

    for candidate in _candidates(session, criteria, point, chunk):
        batch.append(candidate)
        if len(batch) >= chunk:
            take(batch)
            batch = []
            if len(roles) >= wanted:
                break
    if batch and len(roles) < wanted:
        take(batch)
    page = roles[offset:wanted]
    wanted_ids: dict[str, set[str]] = {"Practitioner": set(), "Location": set(), "Organization": set()}
    for role in page:
        for key, res_type in (("practitioner", "Practitioner"), ("organization", "Organization")):
            if (found_id := _reference_id(role.get(key), res_type)) is not None:
                wanted_ids[res_type].add(found_id)
        for ref in role.get("location", []):
            if (found_id := _reference_id(ref, "Location")) is not None:
                wanted_ids["Location"].add(found_id)
    current = _current(session, wanted_ids)
    practitioners, locations, organizations = (
        current[t] for t in ("Practitioner", "Location", "Organization")
    )
    hits = []
    for role in page:
        role_locations = [
            locations[i]
            for ref in role.get("location", [])
            if (i := _reference_id(ref, "Location")) in locations
        ]
        location = _nearest(role_locations, point)
        hits.append(
            _hit(
                role,
                practitioners.get(_reference_id(role.get("practitioner"), "Practitioner") or ""),
                location,
                organizations.get(_reference_id(role.get("organization"), "Organization") or ""),
                point,
            )
        )
    return hits


def _current(session: StoreSession, ids: dict[str, set[str]]) -> dict[str, dict[str, Resource]]:
    """The current resources among `ids` (type -> ids), by type and id: two queries for a page."""
    r = schema.resource
    found: dict[str, dict[str, Resource]] = {res_type: {} for res_type in ids}
    wanted = [and_(r.c.res_type == t, r.c.res_id.in_(sorted(i))) for t, i in ids.items() if i]
    if not wanted:
        return found
    pks = [
        row[0]
        for row in session.connection.execute(select(r.c.pk).where(or_(*wanted), r.c.deleted == false()))
    ]
    for stored in session.fetch_current(pks).values():
        if stored.data is not None:
            found[stored.res_type][stored.res_id] = stored.json()
    return found


def _nearest(locations: list[Resource], point: geo.NearPoint | None) -> Resource | None:
    if not locations:
        return None
    if point is None or len(locations) == 1:
        return locations[0]

    def distance(location: Resource) -> float:
        position = location.get("position") or {}
        latitude, longitude = position.get("latitude"), position.get("longitude")
        if not isinstance(latitude, int | float) or not isinstance(longitude, int | float):
            return float("inf")
        return geo.haversine_km(point.latitude, point.longitude, latitude, longitude)

    return min(locations, key=distance)
