"""Transaction and batch bundles: atomicity, reference rewriting, processing order, failures."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from socle.store.repository import FhirStore
from tests.factories import observation, patient


def entry(resource: dict[str, Any], full_url: str | None = None, **request: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }
    item["request"].update(request)
    if full_url:
        item["fullUrl"] = full_url
    return item


def transaction(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def total(client: TestClient, res_type: str) -> int:
    return int(client.get(f"/fhir/{res_type}?_summary=count").json()["total"])


def test_transaction_rewrites_urn_uuid_references(client: TestClient) -> None:
    urn = "urn:uuid:0b1c4f46-0b4b-4d8e-9a4b-5d5d0a1b2c3d"
    bundle = transaction(entry(observation(urn)), entry(patient("Lefèvre"), urn))
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "transaction-response"
    assert [e["response"]["status"] for e in body["entry"]] == ["201", "201"]
    patient_id = body["entry"][1]["resource"]["id"]
    assert body["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{patient_id}"
    found = client.get(f"/fhir/Observation?subject=Patient/{patient_id}").json()
    assert found["total"] == 1


def test_transaction_with_one_bad_entry_writes_nothing(client: TestClient) -> None:
    urn = "urn:uuid:6f1f0a52-9d2b-4c1e-8a4e-8e0f5f1d2a3b"
    bad = {**patient(), "birthDate": "not-a-date"}
    bundle = transaction(entry(patient(), urn), entry(observation(urn)), entry(bad))
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "Bundle.entry[2]" in outcome["issue"][0]["diagnostics"]
    assert total(client, "Patient") == 0 and total(client, "Observation") == 0


def test_transaction_update_conflict_rolls_back_the_creates(client: TestClient) -> None:
    existing = client.post("/fhir/Patient", json=patient()).json()
    bundle = transaction(
        entry(patient("Nouveau")),
        entry({**existing, "gender": "male"}, method="PUT", url=f"Patient/{existing['id']}", ifMatch='W/"5"'),
    )
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 412
    assert total(client, "Patient") == 1
    assert "gender" not in client.get(f"/fhir/Patient/{existing['id']}").json()


def test_crash_in_the_middle_of_a_transaction_leaves_the_store_unchanged(
    client: TestClient, store: FhirStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.post("/fhir/Patient", json=patient("Avant"))
    calls = {"n": 0}
    real_index_rows = store.index_rows

    def crash_on_third(resource: dict[str, Any]) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash")
        return real_index_rows(resource)

    monkeypatch.setattr(store, "index_rows", crash_on_third)
    bundle = transaction(entry(patient("A")), entry(patient("B")), entry(patient("C")))
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 500
    assert response.json()["resourceType"] == "OperationOutcome"
    monkeypatch.undo()
    assert total(client, "Patient") == 1
    history = client.get("/fhir/Patient/_history").json()
    assert len(history["entry"]) == 1


def test_transaction_processing_order_delete_before_create(client: TestClient) -> None:
    old = client.post("/fhir/Patient", json=patient(ipp="111")).json()
    bundle = transaction(
        entry(patient(ipp="111"), ifNoneExist="identifier=111"),
        {"request": {"method": "DELETE", "url": f"Patient/{old['id']}"}},
    )
    body = client.post("/fhir", json=bundle).json()
    # DELETE runs first, so the conditional create no longer finds a match and creates.
    assert [e["response"]["status"] for e in body["entry"]] == ["201", "204"]
    assert total(client, "Patient") == 1


def test_transaction_conditional_create_matches_existing(client: TestClient) -> None:
    existing = client.post("/fhir/Patient", json=patient(ipp="222")).json()
    urn = "urn:uuid:3c9a3c5e-1d7e-4f53-bb1a-1d6b3b2c1a00"
    bundle = transaction(
        entry(patient(ipp="222"), urn, ifNoneExist="identifier=222"), entry(observation(urn))
    )
    body = client.post("/fhir", json=bundle).json()
    assert body["entry"][0]["response"]["status"] == "200"
    assert body["entry"][1]["resource"]["subject"]["reference"] == f"Patient/{existing['id']}"


def test_transaction_resolves_conditional_references(client: TestClient) -> None:
    existing = client.post("/fhir/Patient", json=patient(ipp="333")).json()
    bundle = transaction(entry(observation("Patient?identifier=333")))
    body = client.post("/fhir", json=bundle).json()
    assert body["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{existing['id']}"


def test_unresolvable_conditional_reference_fails_the_transaction(client: TestClient) -> None:
    bundle = transaction(entry(patient()), entry(observation("Patient?identifier=nobody")))
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 412
    assert "matches 0 resources" in response.json()["issue"][0]["diagnostics"]
    assert total(client, "Patient") == 0


def test_transaction_put_with_client_id_and_urn_reference(client: TestClient) -> None:
    urn = "urn:uuid:7d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6"
    bundle = transaction(
        entry({**patient(), "id": "p1"}, urn, method="PUT", url="Patient/p1"),
        entry(observation(urn)),
    )
    body = client.post("/fhir", json=bundle).json()
    assert body["entry"][0]["response"]["status"] == "201"
    assert body["entry"][1]["resource"]["subject"]["reference"] == "Patient/p1"


def test_transaction_entry_without_request_is_400(client: TestClient) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": patient()}]}
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 400
    assert total(client, "Patient") == 0


def test_batch_entries_succeed_or_fail_independently(client: TestClient) -> None:
    bundle = transaction(
        entry(patient("Bon")),
        entry({**patient(), "birthDate": "1980-02-30"}),
        {"request": {"method": "GET", "url": "Patient/unknown"}},
        kind="batch",
    )
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses == ["201", "400", "404"]
    assert body["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert total(client, "Patient") == 1


def test_batch_get_search_entry(client: TestClient) -> None:
    client.post("/fhir/Patient", json=patient("Cherche"))
    bundle = transaction({"request": {"method": "GET", "url": "Patient?family=cherche"}}, kind="batch")
    body = client.post("/fhir", json=bundle).json()
    assert body["entry"][0]["resource"]["total"] == 1


def test_other_bundle_types_are_refused(client: TestClient) -> None:
    response = client.post("/fhir", json={"resourceType": "Bundle", "type": "collection"})
    assert response.status_code == 400
    assert "transaction or batch" in response.json()["issue"][0]["diagnostics"]


def test_post_of_a_non_bundle_to_the_base_is_400(client: TestClient) -> None:
    response = client.post("/fhir", json=patient())
    assert response.status_code == 400


def test_duplicate_full_urls_are_refused(client: TestClient) -> None:
    urn = "urn:uuid:11111111-2222-4333-8444-555555555555"
    response = client.post("/fhir", json=transaction(entry(patient(), urn), entry(patient(), urn)))
    assert response.status_code == 400
    assert total(client, "Patient") == 0


def test_transaction_patch_entry_as_binary(client: TestClient) -> None:
    import base64
    import json

    created = client.post("/fhir/Patient", json=patient()).json()
    operations = json.dumps([{"op": "add", "path": "/gender", "value": "female"}]).encode()
    binary = {
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64.b64encode(operations).decode(),
    }
    bundle = transaction(
        {"resource": binary, "request": {"method": "PATCH", "url": f"Patient/{created['id']}"}}
    )
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 200, response.text
    assert client.get(f"/fhir/Patient/{created['id']}").json()["gender"] == "female"
