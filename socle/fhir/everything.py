"""`Patient/$everything`: the patient and every resource of their compartment that refers to them.

The compartment follows the spec's Patient CompartmentDefinition, read from the reference index;
results page by key like search, so memory stays flat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import false, select, tuple_

from socle.errors import InvalidRequest
from socle.fhir.definitions import compartment_parameters
from socle.fhir.exchange import for_exchange
from socle.store import schema
from socle.store.repository import StoreSession

if TYPE_CHECKING:
    from socle.fhir.interactions import FhirRequest


def _compartment_links() -> list[tuple[str, str]]:
    """(resource type, parameter) pairs of the Patient compartment, minus the audit trail.

    The trail is the patient's access journal, a view of its own: each $everything would otherwise
    return the traces of the previous ones.
    """
    return [
        (res_type, param)
        for res_type, params in compartment_parameters("Patient").items()
        if res_type not in ("AuditEvent", "Patient")
        for param in params
    ]


def patient_everything(session: StoreSession, request: FhirRequest, patient_id: str) -> dict[str, Any]:
    patient = session.read("Patient", patient_id)
    params = dict(request.params)
    raw_count = params.get("_count", "100")
    if not raw_count.isdigit():
        raise InvalidRequest(f"'_count' expects a non-negative integer, not '{raw_count}'")
    count = min(int(raw_count), 1000)
    cursor = int(params["_cursor"]) if params.get("_cursor", "").isdigit() else 0
    r, ref = schema.resource, schema.idx_reference
    referring = select(ref.c.resource_pk).where(
        ref.c.target_type == "Patient",
        ref.c.target_id == patient_id,
        tuple_(ref.c.res_type, ref.c.param).in_(_compartment_links()),
    )
    query = (
        select(r.c.pk)
        .where(r.c.deleted == false(), r.c.pk > cursor, (r.c.pk == patient.pk) | r.c.pk.in_(referring))
        .order_by(r.c.pk)
        .limit(count + 1)
    )
    pks = [row[0] for row in session.connection.execute(query)]
    more = len(pks) > count
    pks = pks[:count]
    found = session.fetch_current(pks)
    base = request.base_url
    self_url = f"{base}/Patient/{patient_id}/$everything?_count={count}"
    links = [{"relation": "self", "url": self_url + (f"&_cursor={cursor}" if cursor else "")}]
    if more and pks:
        links.append({"relation": "next", "url": f"{self_url}&_cursor={pks[-1]}"})
    entries = [
        {
            "fullUrl": f"{base}/{s.res_type}/{s.res_id}",
            "resource": orjson.Fragment(for_exchange(s.res_type, s.data)),
            "search": {"mode": "match"},
        }
        for pk in pks
        if (s := found.get(pk)) is not None and s.data is not None
    ]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "link": links}
    if not more and cursor == 0:
        bundle["total"] = len(entries)
    if entries:
        bundle["entry"] = entries
    return bundle
