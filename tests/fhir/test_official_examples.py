"""The official R4 examples load through the API and read back with the same content."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

# Examples the structural validator rightly refuses (see tests/fhir/test_validation.py KNOWN_BROKEN).
from tests.fhir.test_validation import KNOWN_BROKEN


def _examples(shared: Path) -> list[tuple[str, dict[str, Any]]]:
    found = []
    with tarfile.open(shared / "hl7.fhir.r4.examples-4.0.1.tgz") as tar:
        for member in tar.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if not name.endswith(".json") or name.startswith(".") or name == "package.json":
                continue
            if name in KNOWN_BROKEN:
                continue
            handle = tar.extractfile(member)
            assert handle is not None
            resource = orjson.loads(handle.read())
            # The audit trail is append-only: AuditEvents are written by the server alone.
            if resource.get("resourceType") == "AuditEvent":
                continue
            if isinstance(resource, dict) and "resourceType" in resource and "id" in resource:
                found.append((name, resource))
    return found


def _without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in resource.get("meta", {}).items() if k not in ("versionId", "lastUpdated")}
    rest = {k: v for k, v in resource.items() if k != "meta"}
    return {**rest, "meta": meta} if meta else rest


def test_every_official_example_round_trips(client: TestClient, shared_data: Path) -> None:
    examples = _examples(shared_data)
    assert len(examples) > 500
    failures = []
    stored: dict[tuple[str, str], dict[str, Any]] = {}
    for name, resource in examples:
        url = f"/fhir/{resource['resourceType']}/{resource['id']}"
        response = client.put(url, json=resource, headers={"Prefer": "return=minimal"})
        if response.status_code not in (200, 201):
            failures.append(f"{name}: {response.status_code} {response.text[:300]}")
        else:
            stored[(resource["resourceType"], resource["id"])] = resource
    assert not failures, "\n".join(failures[:20])
    for (res_type, res_id), resource in stored.items():
        back = client.get(f"/fhir/{res_type}/{res_id}").json()
        assert _without_meta(back) == _without_meta(resource), f"{res_type}/{res_id}"


@pytest.mark.parametrize("query", ["Patient?family=chalmers", "Observation?code=http://loinc.org|29463-7"])
def test_official_examples_are_searchable(client: TestClient, shared_data: Path, query: str) -> None:
    for _name, resource in _examples(shared_data):
        if resource["resourceType"] in ("Patient", "Observation"):
            client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
    assert client.get(f"/fhir/{query}").json()["total"] >= 1
