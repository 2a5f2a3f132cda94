"""The directory's search table: one row per activity with what the public search filters and sorts on.

A projection (`socle.store.projections`): derived from the PractitionerRole, Practitioner, Location and
Organization resources, written in the same transaction as them by every write path, rebuilt by
`socle directory reindex`. Never a source of truth: the search reads its keys here, then the
resources themselves from the store.

- `directory_entry`: one row per PractitionerRole and place (almost always one row per role: a role
  with several Locations or several specialties gets one row per Location × specialty, `seq` 0, 1...).
  It holds the role's profession (TRE_G15 / TRE_R95), specialty (TRE_R38), availability flags and
  `active`, and the place's town: the role's Location address, else its Organization's (an RPPS
  cabinet imported without a Location), as the results page shows it: INSEE code, postcode, postal
  department, normalized city name without its "CEDEX nn" routing, and the Location's position.
  The referenced ids are kept even when the resource is missing, so that a Location or Organization
  written later finds the roles it must update.
- `directory_name`: the normalized name tokens of each Practitioner (every HumanName part, and each
  word of a part of several words: "LE BIHAN" gives "le bihan", "le" and "bihan", "D'ALMEIDA"
  "d'almeida", "d" and "almeida"), so a renaming
  touches the practitioner's tokens only, never their roles' rows.

The indexes (migration 0007) follow the search's query shapes: each query is one statement that
reads an index in result order (role key, or nearest first within a bounding box) and stops at the
page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import product
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    and_,
    delete,
    false,
    func,
    select,
)

from socle.directory.fhir import ACCEPTING_NEW_PATIENTS_EXTENSION, TELECONSULTATION_EXTENSION
from socle.directory.nomenclatures import tre_g15, tre_r38, tre_r95
from socle.search.geo import position_rows
from socle.search.normalize import normalize_text
from socle.store import schema
from socle.store.projections import Change
from socle.store.repository import insert_rows

Resource = Mapping[str, Any]

ROLE, PRACTITIONER, LOCATION, ORGANIZATION = "PractitionerRole", "Practitioner", "Location", "Organization"
CHUNK = 500  # ids per IN list

metadata = MetaData()

directory_entry = Table(
    "directory_entry",
    metadata,
    Column("role_pk", BigInteger, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("role_id", String(64), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("practitioner_id", String(64), nullable=True),
    Column("organization_id", String(64), nullable=True),
    Column("location_id", String(64), nullable=True),
    Column("profession_system", Text, nullable=True),
    Column("profession", String(32), nullable=True),
    Column("specialty", String(32), nullable=True),
    Column("commune", String(5), nullable=True),  # INSEE (COG) code
    Column("postcode", String(16), nullable=True),
    Column("department", String(3), nullable=True),  # of the postcode: 75, 20 (Corse), 974
    Column("city", Text, nullable=True),  # normalized, without "cedex nn"
    Column("latitude", Float, nullable=True),
    Column("longitude", Float, nullable=True),
    Column("accepting_new_patients", Boolean, nullable=True),
    Column("teleconsultation", Boolean, nullable=True),
    PrimaryKeyConstraint("role_pk", "seq", name="pk_directory_entry"),
)

directory_name = Table(
    "directory_name",
    metadata,
    Column("practitioner_id", String(64), nullable=False),
    Column("token", Text, nullable=False),
    PrimaryKeyConstraint("practitioner_id", "token", name="pk_directory_name"),
)

TABLES: tuple[Table, ...] = (directory_entry, directory_name)

_CEDEX = re.compile(r"\s+cedex(\s+\S+)?$")
_WORD_SEPARATORS = re.compile(r"[\s\-'’]+")


# -- deriving rows (pure) -------------------------------------------------------------------------


def department_of(postcode: str) -> str:
    """The postal department a postcode starts with: two digits, three overseas (971..988)."""
    return postcode[:3] if postcode[:2] in ("97", "98") else postcode[:2]


def town_name(city: str) -> str:
    """The normalized town of an address's city: "LYON CEDEX 03" -> "lyon"."""
    return _CEDEX.sub("", normalize_text(city))


def name_tokens(practitioner: Resource) -> set[str]:
    """Every normalized name part of a Practitioner, and each word of the parts of several words."""
    tokens: set[str] = set()
    for name in practitioner.get("name") or []:
        if not isinstance(name, dict):
            continue
        parts: list[Any] = [name.get("family"), name.get("text")]
        for key in ("given", "prefix", "suffix"):
            values = name.get(key)
            parts.extend(values if isinstance(values, list) else [])
        for part in parts:
            if not isinstance(part, str):
                continue
            normalized = normalize_text(part)
            if normalized:
                tokens.add(normalized)
                tokens.update(word for word in _WORD_SEPARATORS.split(normalized) if word)
    return tokens


def reference_id(reference: Any, res_type: str) -> str | None:
    value = reference.get("reference") if isinstance(reference, dict) else None
    if isinstance(value, str) and value.startswith(res_type + "/"):
        return value.split("/", 1)[1] or None
    return None


def flag(role: Resource, url: str) -> bool | None:
    for extension in role.get("extension") or []:
        if isinstance(extension, dict) and extension.get("url") == url:
            value = extension.get("valueBoolean")
            if isinstance(value, bool):
                return value
    return None


def _profession(role: Resource) -> tuple[str | None, str | None]:
    """(system, code) of the role's profession: TRE_G15 (by URL or OID), else TRE_R95."""
    g15, r95 = tre_g15(), tre_r95()
    systems = {g15.system: g15.system, r95.system: r95.system}
    if g15.oid:
        systems[g15.oid] = g15.system
    for concept in role.get("code") or []:
        for coding in concept.get("coding") or [] if isinstance(concept, dict) else []:
            if not isinstance(coding, dict) or not isinstance(coding.get("code"), str):
                continue
            system = systems.get(str(coding.get("system")))
            if system is not None:
                return system, coding["code"]
    return None, None


def _specialties(role: Resource) -> list[str | None]:
    system = tre_r38().system
    codes = [
        coding["code"]
        for concept in role.get("specialty") or []
        if isinstance(concept, dict)
        for coding in concept.get("coding") or []
        if isinstance(coding, dict) and coding.get("system") == system and isinstance(coding.get("code"), str)
    ]
    return list(dict.fromkeys(codes)) or [None]


def _place(location: Resource | None, organization: Resource | None) -> dict[str, Any]:
    """Where a results page says the activity is: the Location's address, else the Organization's."""
    address = (location or {}).get("address")
    if not isinstance(address, dict):
        addresses = (organization or {}).get("address")
        address = addresses[0] if isinstance(addresses, list) and addresses else None
    place: dict[str, Any] = dict.fromkeys(("commune", "postcode", "department", "city"))
    if isinstance(address, dict):
        postcode = address.get("postalCode")
        if isinstance(postcode, str) and postcode.strip():
            place["postcode"] = postcode.strip().upper()[:16]
            place["department"] = department_of(place["postcode"])
        city = address.get("city")
        if isinstance(city, str) and city.strip():
            place["city"] = town_name(city)
        for extension in address.get("extension") or []:
            coding = extension.get("valueCoding") if isinstance(extension, dict) else None
            code = coding.get("code") if isinstance(coding, dict) else None
            if isinstance(code, str) and len(code) == 5:
                place["commune"] = code
    position = (location or {}).get("position")
    # Read as the `near` index reads it: numbers within range, else no position.
    rows = position_rows("near", position)
    place["latitude"], place["longitude"] = (rows[0].value, rows[1].value) if rows else (None, None)
    return place


def role_location_ids(role: Resource) -> list[str | None]:
    ids = [reference_id(reference, LOCATION) for reference in role.get("location") or []]
    return list(dict.fromkeys(i for i in ids if i is not None)) or [None]


def entry_rows(
    pk: int,
    role: Resource,
    locations: Mapping[str, Resource | None],
    organizations: Mapping[str, Resource | None],
) -> list[dict[str, Any]]:
    """The rows of one role, given the current Locations and Organizations it refers to (by id;
    missing or None: not there)."""
    profession_system, profession = _profession(role)
    organization_id = reference_id(role.get("organization"), ORGANIZATION)
    organization = organizations.get(organization_id) if organization_id else None
    common = {
        "role_pk": pk,
        "role_id": role["id"],
        "active": role.get("active") is not False,
        "practitioner_id": reference_id(role.get("practitioner"), PRACTITIONER),
        "organization_id": organization_id,
        "profession_system": profession_system,
        "profession": profession,
        "accepting_new_patients": flag(role, ACCEPTING_NEW_PATIENTS_EXTENSION),
        "teleconsultation": flag(role, TELECONSULTATION_EXTENSION),
    }
    rows = []
    for seq, (location_id, specialty) in enumerate(product(role_location_ids(role), _specialties(role))):
        location = locations.get(location_id) if location_id else None
        rows.append(
            {
                **common,
                "seq": seq,
                "location_id": location_id,
                "specialty": specialty,
                **_place(location, organization),
            }
        )
    return rows


# -- reading the store ----------------------------------------------------------------------------


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _current(connection: Connection, condition: Any) -> Iterator[tuple[int, str, str, Resource]]:
    """(pk, type, id, body) of the current, not deleted, resources matching `condition`."""
    r, v = schema.resource, schema.resource_version
    query = (
        select(r.c.pk, r.c.res_type, r.c.res_id, v.c.data)
        .join(v, and_(v.c.resource_pk == r.c.pk, v.c.version == r.c.version))
        .where(condition, r.c.deleted == false())
    )
    for row in connection.execute(query):
        if row.data is not None:
            yield row.pk, row.res_type, row.res_id, orjson.loads(row.data)


def _current_by_id(connection: Connection, res_type: str, ids: Iterable[str]) -> dict[str, Resource]:
    r = schema.resource
    found: dict[str, Resource] = {}
    for chunk in _chunks(sorted(set(ids))):
        condition = and_(r.c.res_type == res_type, r.c.res_id.in_(chunk))
        found.update((res_id, body) for _, _, res_id, body in _current(connection, condition))
    return found


def _current_by_pk(connection: Connection, pks: Iterable[int]) -> dict[int, Resource]:
    r = schema.resource
    found: dict[int, Resource] = {}
    for chunk in _chunks(sorted(set(pks))):
        found.update((pk, body) for pk, _, _, body in _current(connection, r.c.pk.in_(chunk)))
    return found


# -- the projection -------------------------------------------------------------------------------


class DirectoryProjection:
    """Keeps `directory_entry` and `directory_name` in step with the directory's resources."""

    name = "directory"
    resource_types = frozenset({ROLE, PRACTITIONER, LOCATION, ORGANIZATION})

    def apply(self, connection: Connection, changes: Sequence[Change]) -> None:
        names = [c for c in changes if c.res_type == PRACTITIONER]
        if names:
            self._write_names(connection, names)
        roles: dict[int, Resource | None] = {}
        fresh: set[int] = set()  # roles created here: no rows to delete
        places: dict[str, dict[str, Resource | None]] = {LOCATION: {}, ORGANIZATION: {}}
        for change in changes:
            if change.res_type == ROLE:
                roles[change.pk] = change.body
                if change.created:
                    fresh.add(change.pk)
            elif change.res_type in places:
                places[change.res_type][change.res_id] = change.body
        # The roles at a place written here take its new address or position.
        moved = self._roles_at(connection, places) - roles.keys()
        roles.update(_current_by_pk(connection, moved))
        self._write_entries(connection, roles, fresh, places)

    def rebuild(self, connection: Connection) -> int:
        connection.execute(delete(directory_entry))
        connection.execute(delete(directory_name))
        r = schema.resource
        for res_type in (PRACTITIONER, ROLE):
            after = 0
            while True:
                pks = list(
                    connection.execute(
                        select(r.c.pk)
                        .where(r.c.res_type == res_type, r.c.deleted == false(), r.c.pk > after)
                        .order_by(r.c.pk)
                        .limit(5000)
                    ).scalars()
                )
                if not pks:
                    break
                after = pks[-1]
                changes = [
                    Change(pk, res_type, body["id"], body, created=True)
                    for pk, body in _current_by_pk(connection, pks).items()
                ]
                self.apply(connection, changes)
        return int(connection.execute(select(func.count()).select_from(directory_entry)).scalar_one())

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _write_names(connection: Connection, practitioners: Sequence[Change]) -> None:
        stale = [c.res_id for c in practitioners if not c.created]
        for chunk in _chunks(stale):
            connection.execute(delete(directory_name).where(directory_name.c.practitioner_id.in_(chunk)))
        rows = [
            {"practitioner_id": c.res_id, "token": token}
            for c in practitioners
            if c.body is not None
            for token in sorted(name_tokens(c.body))
        ]
        insert_rows(connection, directory_name, rows)

    @staticmethod
    def _roles_at(connection: Connection, places: Mapping[str, Mapping[str, Any]]) -> set[int]:
        e = directory_entry
        found: set[int] = set()
        for column, ids in ((e.c.location_id, places[LOCATION]), (e.c.organization_id, places[ORGANIZATION])):
            for chunk in _chunks(sorted(ids)):
                found.update(connection.execute(select(e.c.role_pk).where(column.in_(chunk))).scalars())
        return found

    @staticmethod
    def _write_entries(
        connection: Connection,
        roles: Mapping[int, Resource | None],
        fresh: set[int],
        places: Mapping[str, Mapping[str, Resource | None]],
    ) -> None:
        stale = sorted(pk for pk in roles if pk not in fresh)
        for chunk in _chunks(stale):
            connection.execute(delete(directory_entry).where(directory_entry.c.role_pk.in_(chunk)))
        alive = {pk: role for pk, role in roles.items() if role is not None}
        wanted: dict[str, set[str]] = {LOCATION: set(), ORGANIZATION: set()}
        for role in alive.values():
            wanted[LOCATION].update(i for i in role_location_ids(role) if i is not None)
            if (organization_id := reference_id(role.get("organization"), ORGANIZATION)) is not None:
                wanted[ORGANIZATION].add(organization_id)
        known: dict[str, dict[str, Resource | None]] = {}
        for res_type, ids in wanted.items():
            known[res_type] = {i: places[res_type][i] for i in ids if i in places[res_type]}
            known[res_type].update(
                _current_by_id(connection, res_type, (i for i in ids if i not in places[res_type]))
            )
        rows = [
            row
            for pk, role in alive.items()
            for row in entry_rows(pk, role, known[LOCATION], known[ORGANIZATION])
        ]
        insert_rows(connection, directory_entry, rows)
