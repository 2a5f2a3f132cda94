"""Writes of the directory (`do_*`): batches of imported resources, a professional's availability.

A batch is one store session (one transaction). It reads first, then writes, so the store can
buffer the writes and send them in bulk at commit: one `_id` search per resource type tells which
resources exist; new ones are created at their client id without another read, changed ones are
updated, identical ones are left alone (a re-import writes nothing). If a new id clashes with a
resource deleted through the API (invisible to search), the batch is rolled back and written again
the slow, safe way (`update` per resource, which also revives deleted ids).

No audit module exists in Socle yet; when one lands, these actions are where its rows get written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from socle.directory.fhir import availability_extensions, availability_of, with_availability
from socle.directory.queries import current_by_id, roles_of_practitioners
from socle.errors import Conflict
from socle.store.repository import FhirStore, StoreSession

Resource = dict[str, Any]
# (resource type, outcome): outcome is created, updated, unchanged or deactivated.
Outcomes = Counter[tuple[str, str]]

_SERVER_META = ("versionId", "lastUpdated")


def same_content(stored: Resource, resource: Resource) -> bool:
    """True when writing `resource` over `stored` would change nothing but the server's meta fields
    (the store applies the same rule: such an update creates no version)."""

    def comparable(r: Resource) -> Resource:
        meta = {k: v for k, v in (r.get("meta") or {}).items() if k not in _SERVER_META}
        body = {k: v for k, v in r.items() if k != "meta"}
        return {**body, "meta": meta} if meta else body

    # orjson round trip: the stored JSON and a freshly built dict compare on the same footing.
    return bool(comparable(stored) == comparable(orjson.loads(orjson.dumps(resource))))


@dataclass
class Write:
    """One resource to write; `create_only` keeps an existing resource as it is (placeholders)."""

    resource: Resource
    create_only: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return self.resource["resourceType"], self.resource["id"]


def _write_fast(
    session: StoreSession, writes: list[Write], existing: dict[tuple[str, str], Resource]
) -> Outcomes:
    outcomes: Outcomes = Counter()
    for write in writes:
        res_type, res_id = write.key
        stored = existing.get(write.key)
        if stored is None:
            session.create(write.resource, res_id=res_id)
            outcomes[res_type, "created"] += 1
        elif write.create_only or same_content(stored, write.resource):
            outcomes[res_type, "unchanged"] += 1
        else:
            session.update(write.resource, res_id)
            outcomes[res_type, "updated"] += 1
    return outcomes


def _write_safe(session: StoreSession, writes: list[Write]) -> Outcomes:
    outcomes: Outcomes = Counter()
    for write in writes:
        res_type, res_id = write.key
        before = session.current(res_type, res_id)
        if write.create_only and before is not None and not before.deleted:
            outcomes[res_type, "unchanged"] += 1
            continue
        stored, created = session.update(write.resource, res_id)
        if created or before is None or before.deleted:
            outcomes[res_type, "created"] += 1
        elif stored.version == before.version:
            outcomes[res_type, "unchanged"] += 1
        else:
            outcomes[res_type, "updated"] += 1
    return outcomes


def _dedupe(writes: Iterable[Write]) -> list[Write]:
    """One write per resource in a batch (the last one wins), so a batch never versions a resource twice."""
    by_key: dict[tuple[str, str], Write] = {}
    for write in writes:
        by_key.pop(write.key, None)
        by_key[write.key] = write
    return list(by_key.values())


def _existing(session: StoreSession, writes: list[Write]) -> dict[tuple[str, str], Resource]:
    ids: dict[str, list[str]] = {}
    for write in writes:
        ids.setdefault(write.key[0], []).append(write.key[1])
    return {
        (res_type, res_id): resource
        for res_type, type_ids in ids.items()
        for res_id, resource in current_by_id(session, res_type, type_ids).items()
    }


def _write(
    store: FhirStore, batch: list[Write], known: dict[tuple[str, str], Resource] | None = None
) -> Outcomes:
    """Write `batch` in one transaction: `known` holds what the caller already read (None: read it)."""
    try:
        with store.session() as session:
            existing = known if known is not None else _existing(session, batch)
            return _write_fast(session, batch, existing)
    except Conflict:
        with store.session() as session:
            return _write_safe(session, batch)


def do_write_batch(store: FhirStore, writes: Iterable[Write]) -> Outcomes:
    """Write a batch of resources at their client ids in one transaction; count the outcomes."""
    batch = _dedupe(writes)
    return _write(store, batch) if batch else Counter()


@dataclass
class PersonWrites:
    """What one RPPS professional brings to a batch: their Practitioner, roles and structures.

    `complete` is False when some of their lines were rejected: their other stored roles are then
    kept as they are instead of being deactivated. `merge` adds to what is stored (a person met
    again further down an unsorted file) instead of replacing it."""

    practitioner: Resource
    roles: list[Resource]
    organizations: list[Write] = field(default_factory=list)
    complete: bool = True
    merge: bool = False


def _merged_practitioner(stored: Resource, new: Resource) -> Resource:
    qualifications = list(stored.get("qualification", []))
    for qualification in new.get("qualification", []):
        if qualification not in qualifications:
            qualifications.append(qualification)
    merged = dict(new)
    if qualifications:
        merged["qualification"] = qualifications
    return merged


def _deactivated(role: Resource) -> Resource:
    resource = dict(role)
    meta = {k: v for k, v in (role.get("meta") or {}).items() if k not in _SERVER_META}
    if meta:
        resource["meta"] = meta
    else:
        resource.pop("meta", None)
    resource["active"] = False
    return resource


def do_import_people(store: FhirStore, people: list[PersonWrites]) -> Outcomes:
    """Write a batch of professionals: Practitioners, PractitionerRoles and their structures.

    Each role keeps the availability flags its professional set; a stored role of a professional
    that the extraction no longer lists is deactivated (`active: false`, history kept), unless the
    person's lines were incomplete or the file is being merged."""
    if not people:
        return Counter()
    with store.session(readonly=True) as session:
        practitioners = current_by_id(session, "Practitioner", (p.practitioner["id"] for p in people))
        stored_roles = roles_of_practitioners(session, practitioners)
        organizations = current_by_id(
            session, "Organization", (w.resource["id"] for p in people for w in p.organizations)
        )
    roles_by_practitioner: dict[str, list[Resource]] = {}
    for role in stored_roles.values():
        reference = role.get("practitioner", {}).get("reference", "")
        roles_by_practitioner.setdefault(reference.removeprefix("Practitioner/"), []).append(role)

    writes: list[Write] = []
    deactivations = 0
    for person in people:
        practitioner_id = person.practitioner["id"]
        stored = practitioners.get(practitioner_id)
        practitioner = person.practitioner
        if person.merge and stored is not None:
            practitioner = _merged_practitioner(stored, practitioner)
        writes.append(Write(practitioner))
        new_ids = {role["id"] for role in person.roles}
        for role in person.roles:
            previous = stored_roles.get(role["id"])
            kept = availability_of(previous) if previous else []
            writes.append(Write(with_availability(role, kept) if kept else role))
        if person.complete and not person.merge:
            for role in roles_by_practitioner.get(practitioner_id, []):
                if role["id"] not in new_ids and role.get("active", True):
                    writes.append(Write(_deactivated(role)))
                    deactivations += 1
        writes.extend(person.organizations)
    known: dict[tuple[str, str], Resource] = {("Practitioner", i): r for i, r in practitioners.items()}
    known.update((("PractitionerRole", i), r) for i, r in stored_roles.items())
    known.update((("Organization", i), r) for i, r in organizations.items())
    outcomes = _write(store, _dedupe(writes), known)
    # A deactivation is counted as such, not as an update.
    outcomes["PractitionerRole", "updated"] -= deactivations
    outcomes["PractitionerRole", "deactivated"] += deactivations
    return +outcomes


def do_set_role_availability(
    store: FhirStore,
    role_id: str,
    *,
    accepting_new_patients: bool | None,
    teleconsultation: bool | None,
) -> Resource:
    """Record whether a professional accepts new patients / offers teleconsultation for one activity.

    None clears the flag (not said). Imports keep these flags; this is the only writer."""
    with store.session() as session:
        stored = session.read("PractitionerRole", role_id).json()
        flags = availability_extensions(
            accepting_new_patients=accepting_new_patients, teleconsultation=teleconsultation
        )
        updated = with_availability(stored, flags)
        result, _ = session.update(updated, role_id)
        return result.json()
