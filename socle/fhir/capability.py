"""The CapabilityStatement served at `/fhir/metadata`: what this server really implements.

Built from the same tables the server runs on (resource types, search parameters), so it cannot
drift from the implementation.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from socle import __version__
from socle.fhir.definitions import resource_types
from socle.search.parameters import default_registry

INTERACTIONS = [
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
]
SUPPORTED_TYPES = ("string", "token", "reference", "date", "number", "quantity", "uri", "composite")


@cache
def _statement_bytes(base_url: str) -> bytes:
    registry = default_registry()
    resources = []
    for res_type in sorted(resource_types()):
        params = [
            {"name": code, "definition": p.url, "type": p.type}
            for code, p in sorted(registry.for_type(res_type).items())
            if p.type in SUPPORTED_TYPES and (p.expression or p.type == "composite")
        ]
        params += [
            {"name": "_id", "type": "token", "definition": "http://hl7.org/fhir/SearchParameter/Resource-id"},
            {
                "name": "_lastUpdated",
                "type": "date",
                "definition": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
            },
        ]
        references = sorted(code for code, p in registry.for_type(res_type).items() if p.type == "reference")
        revincludes = sorted(
            f"{source}:{code}"
            for source in resource_types()
            for code, p in registry.for_type(source).items()
            if p.type == "reference" and (res_type in p.targets or "Resource" in p.targets)
        )
        entry: dict[str, Any] = {
            "type": res_type,
            "interaction": [{"code": code} for code in INTERACTIONS],
            "versioning": "versioned",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "not-supported",
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "searchInclude": [f"{res_type}:{code}" for code in references],
            "searchRevInclude": revincludes,
            "searchParam": params,
        }
        if res_type == "Patient":
            entry["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                }
            ]
        resources.append(entry)
    statement = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "publisher": "Socle",
        "kind": "instance",
        "software": {"name": "Socle", "version": __version__},
        "implementation": {"description": "Socle FHIR R4 server", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "resource": resources,
                "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}],
            }
        ],
    }
    return orjson.dumps(statement)


def capability_statement(base_url: str) -> Any:
    return orjson.Fragment(_statement_bytes(base_url))
