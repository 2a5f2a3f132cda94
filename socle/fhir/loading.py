"""Loading FHIR documents into the store the way the API would take them.

A transaction or batch Bundle goes through the bundle processor (as if POSTed to the base); a
collection/searchset Bundle and a bare resource are stored entry by entry (update at their id when
they carry one, create otherwise). Each document returns (resources stored, reasons for rejects).
"""

from __future__ import annotations

from typing import Any

from socle.auth.context import RequestContext
from socle.errors import SocleError
from socle.fhir.access import perform
from socle.fhir.bundles import process_bundle
from socle.fhir.interactions import FhirRequest
from socle.store.repository import FhirStore


def load_document(
    store: FhirStore, document: Any, base_url: str, ctx: RequestContext
) -> tuple[int, list[str]]:
    if isinstance(document, dict) and document.get("resourceType") == "Bundle":
        kind = document.get("type")
        if kind in ("transaction", "batch"):
            try:
                result = process_bundle(store, document, base_url, "return=minimal", ctx)
            except SocleError as error:
                return 0, [f"{kind} rejected: {error.message}"]
            ok, failures = 0, []
            for entry in result.get("entry", []):
                status = entry["response"]["status"]
                if status.startswith("2"):
                    ok += 1
                else:
                    failures.append(f"entry rejected with status {status}")
            return ok, failures
        ok, failures = 0, []
        for entry in document.get("entry", []):
            stored, reasons = load_document(store, entry.get("resource"), base_url, ctx)
            ok += stored
            failures += reasons
        return ok, failures
    return _load_resource(store, document, base_url, ctx)


def _load_resource(
    store: FhirStore, resource: Any, base_url: str, ctx: RequestContext
) -> tuple[int, list[str]]:
    """A bare resource is stored like a PUT at its id (or a POST without one), traced as such."""
    if not isinstance(resource, dict):
        return 0, ["not a FHIR resource (JSON object expected)"]
    res_type, res_id = resource.get("resourceType"), resource.get("id")
    if not isinstance(res_type, str):
        return 0, ["resourceType is missing"]
    method, path = ("PUT", f"{res_type}/{res_id}") if isinstance(res_id, str) else ("POST", res_type)
    request = FhirRequest(
        method, path, base_url=base_url, parsed=resource, headers={"prefer": "return=minimal"}
    )
    try:
        perform(store, request, ctx)
    except SocleError as error:
        return 0, [f"{res_type}/{res_id or ''}: {error.message}"]
    return 1, []
