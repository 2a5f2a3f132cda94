"""Reads of the directory, through the store session and the search engine (no SQL here)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from socle.directory.fhir import ACCEPTING_NEW_PATIENTS_EXTENSION, TELECONSULTATION_EXTENSION
from socle.errors import NotFound
from socle.search.engine import SearchPlanner, search_pks
from socle.store.repository import StoreSession

Resource = dict[str, Any]

# Ids per search: keeps each IN list and each page of results small on both backends.
CHUNK = 200
PAGE = 1000


def _chunks(values: list[str], size: int = CHUNK) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def find_resources(session: StoreSession, res_type: str, params: list[tuple[str, str]]) -> Iterator[Resource]:
    """Every current resource matching `params`, page after page (pages follow the resource key)."""
    planner = SearchPlanner("", strict=True)
    cursor: int | None = None
    while True:
        plan = planner.plan(res_type, params, default_count=PAGE, max_count=PAGE)
        plan.cursor = cursor
        pks, more = search_pks(session, plan)
        found = session.fetch_current(pks)
        for pk in pks:
            stored = found.get(pk)
            if stored is not None and not stored.deleted:
                yield stored.json()
        if not more or not pks:
            return
        cursor = pks[-1]


def current_by_id(session: StoreSession, res_type: str, ids: Iterable[str]) -> dict[str, Resource]:
    """The current (not deleted) resources of `res_type` among `ids`, by id: a few queries for many ids."""
    wanted = sorted(set(ids))
    result: dict[str, Resource] = {}
    for chunk in _chunks(wanted):
        for resource in find_resources(session, res_type, [("_id", ",".join(chunk))]):
            result[resource["id"]] = resource
    return result


def roles_of_practitioners(session: StoreSession, practitioner_ids: Iterable[str]) -> dict[str, Resource]:
    """Every current PractitionerRole of these practitioners (active or not), by role id."""
    wanted = sorted(set(practitioner_ids))
    result: dict[str, Resource] = {}
    for chunk in _chunks(wanted):
        references = ",".join(f"Practitioner/{i}" for i in chunk)
        for resource in find_resources(session, "PractitionerRole", [("practitioner", references)]):
            result[resource["id"]] = resource
    return result


AVAILABILITY_FLAGS = {
    ACCEPTING_NEW_PATIENTS_EXTENSION: "accepting_new_patients",
    TELECONSULTATION_EXTENSION: "teleconsultation",
}


def role_availability(session: StoreSession, role_id: str) -> dict[str, bool]:
    """The flags a role has set, by name: accepting_new_patients, teleconsultation."""
    current = session.current("PractitionerRole", role_id)
    if current is None or current.deleted:
        raise NotFound(f"PractitionerRole/{role_id} is not known")
    role = current.json()
    return {
        AVAILABILITY_FLAGS[ext["url"]]: ext["valueBoolean"]
        for ext in role.get("extension", [])
        if ext.get("url") in AVAILABILITY_FLAGS
    }
