"""Loading FHIR documents into the store the way the API would take them.

A transaction or batch Bundle goes through the bundle processor (as if POSTed to the base); a
collection/searchset Bundle and a bare resource are stored entry by entry (update at their id when
they carry one, create otherwise). Each document returns (resources stored, reasons for rejects).
"""

from __future__ import annotations

from typing import Any

from socle.errors import SocleError
from socle.fhir.bundles import process_bundle
from socle.store.repository import FhirStore


def load_document(store: FhirStore, document: Any, base_url: str) -> tuple[int, list[str]]:
    if isinstance(document, dict) and document.get("resourceType") == "Bundle":
        kind = document.get("type")
        if kind in ("transaction", "batch"):
            try:
                result = process_bundle(store, document, base_url, "return=minimal")
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
            stored, reasons = load_document(store, entry.get("resource"), base_url)
            ok += stored
            failures += reasons
        return ok, failures
    return _load_resource(store, document)


def _load_resource(store: FhirStore, resource: Any) -> tuple[int, list[str]]:
    if not isinstance(resource, dict):
        return 0, ["not a FHIR resource (JSON object expected)"]
    try:
        with store.session() as session:
            res_id = resource.get("id")
            if isinstance(res_id, str):
                session.update(resource, res_id)
            else:
                session.create(resource)
    except SocleError as error:
        return 0, [f"{resource.get('resourceType')}/{resource.get('id', '')}: {error.message}"]
    return 1, []
