"""Create, read, vread, update, delete, patch and their failures, over HTTP on both backends."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.factories import observation, patient

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def create(client: TestClient, resource: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def issue_text(response: Any) -> str:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return " ".join(i.get("diagnostics", "") for i in body["issue"])


def count_patients(client: TestClient) -> int:
    return int(client.get("/fhir/Patient", params={"_summary": "count"}).json()["total"])


def test_create_assigns_id_version_and_location(client: TestClient) -> None:
    response = client.post("/fhir/Patient", json=patient(family="Martin"))
    assert response.status_code == 201
    body = response.json()
    assert body["id"] and body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"].endswith("Z")
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["location"].endswith(f"/fhir/Patient/{body['id']}/_history/1")
    assert response.headers["content-type"].startswith("application/fhir+json")


def test_create_ignores_a_client_id(client: TestClient) -> None:
    body = create(client, {**patient(), "id": "chosen-by-client"})
    assert body["id"] != "chosen-by-client"


def test_read_returns_the_stored_resource(client: TestClient) -> None:
    created = create(client, patient(family="Dupont"))
    response = client.get(f"/fhir/Patient/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    assert response.headers["etag"] == 'W/"1"'


def test_read_unknown_resource_is_404_outcome(client: TestClient) -> None:
    response = client.get("/fhir/Patient/does-not-exist")
    assert response.status_code == 404
    assert "Patient/does-not-exist" in issue_text(response)


def test_unknown_resource_type_is_404(client: TestClient) -> None:
    response = client.get("/fhir/Patientt/1")
    assert response.status_code == 404
    assert "Unknown resource type 'Patientt'" in issue_text(response)


def test_invalid_id_in_url_is_400(client: TestClient) -> None:
    response = client.get("/fhir/Patient/" + "x" * 65)
    assert response.status_code == 400


def test_update_creates_a_new_version(client: TestClient) -> None:
    created = create(client, patient(family="Martin"))
    changed = {**created, "gender": "female"}
    response = client.put(f"/fhir/Patient/{created['id']}", json=changed)
    assert response.status_code == 200
    assert response.json()["meta"]["versionId"] == "2"
    assert response.headers["etag"] == 'W/"2"'
    old = client.get(f"/fhir/Patient/{created['id']}/_history/1")
    assert old.status_code == 200 and "gender" not in old.json()


def test_update_without_change_keeps_the_version(client: TestClient) -> None:
    created = create(client, patient(family="Martin"))
    response = client.put(f"/fhir/Patient/{created['id']}", json=created)
    assert response.status_code == 200
    assert response.json()["meta"]["versionId"] == "1"


def test_update_with_client_id_creates(client: TestClient) -> None:
    response = client.put("/fhir/Patient/ins-123", json={**patient(), "id": "ins-123"})
    assert response.status_code == 201
    assert response.json()["id"] == "ins-123"
    assert client.get("/fhir/Patient/ins-123").status_code == 200


def test_update_id_mismatch_is_400_and_writes_nothing(client: TestClient) -> None:
    response = client.put("/fhir/Patient/a", json={**patient(), "id": "b"})
    assert response.status_code == 400
    assert "does not match" in issue_text(response)
    assert client.get("/fhir/Patient/a").status_code == 404


def test_if_match_mismatch_is_412_and_keeps_the_resource(client: TestClient) -> None:
    created = create(client, patient(family="Martin"))
    response = client.put(
        f"/fhir/Patient/{created['id']}", json={**created, "gender": "male"}, headers={"If-Match": 'W/"7"'}
    )
    assert response.status_code == 412
    assert "Version conflict" in issue_text(response)
    assert "gender" not in client.get(f"/fhir/Patient/{created['id']}").json()


def test_if_match_current_version_succeeds(client: TestClient) -> None:
    created = create(client, patient())
    response = client.put(
        f"/fhir/Patient/{created['id']}", json={**created, "gender": "male"}, headers={"If-Match": 'W/"1"'}
    )
    assert response.status_code == 200


def test_delete_then_read_is_410_and_history_keeps_it(client: TestClient) -> None:
    created = create(client, patient())
    assert client.delete(f"/fhir/Patient/{created['id']}").status_code == 204
    assert client.get(f"/fhir/Patient/{created['id']}").status_code == 410
    history = client.get(f"/fhir/Patient/{created['id']}/_history").json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
    assert client.get(f"/fhir/Patient/{created['id']}/_history/1").status_code == 200
    assert client.delete(f"/fhir/Patient/{created['id']}").status_code == 204


def test_deleted_resource_can_be_recreated_by_update(client: TestClient) -> None:
    created = create(client, patient())
    client.delete(f"/fhir/Patient/{created['id']}")
    response = client.put(f"/fhir/Patient/{created['id']}", json=created)
    assert response.status_code == 200
    assert response.json()["meta"]["versionId"] == "3"


def test_delete_unknown_is_404(client: TestClient) -> None:
    assert client.delete("/fhir/Patient/nope").status_code == 404


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post("/fhir/Patient", content=b'{"resourceType": "Patient",', headers=FHIR_JSON)
    assert response.status_code == 400
    assert "not valid JSON" in issue_text(response)
    assert count_patients(client) == 0


def test_wrong_resource_type_for_url_is_400(client: TestClient) -> None:
    response = client.post("/fhir/Patient", json=observation("Patient/x"))
    assert response.status_code == 400
    assert "does not match" in issue_text(response)


def test_unknown_element_is_rejected_with_its_path(client: TestClient) -> None:
    response = client.post("/fhir/Patient", json={**patient(), "favouriteColour": "blue"})
    assert response.status_code == 400
    body = response.json()
    assert any(
        "favouriteColour" in (i.get("diagnostics", "") + str(i.get("expression"))) for i in body["issue"]
    )
    assert count_patients(client) == 0


def test_invalid_date_is_rejected(client: TestClient) -> None:
    response = client.post("/fhir/Patient", json={**patient(), "birthDate": "1980-13-45"})
    assert response.status_code == 400
    assert "1980-13-45" in issue_text(response)


def test_wrong_reference_type_is_rejected(client: TestClient) -> None:
    response = client.post("/fhir/Observation", json=observation("Medication/123"))
    assert response.status_code == 400
    assert "Medication" in issue_text(response)


def test_conditional_create_returns_the_existing_match(client: TestClient) -> None:
    first = client.post(
        "/fhir/Patient",
        json=patient(ipp="1800175123456"),
        headers={"If-None-Exist": "identifier=1800175123456"},
    )
    second = client.post(
        "/fhir/Patient",
        json=patient(ipp="1800175123456"),
        headers={"If-None-Exist": "identifier=1800175123456"},
    )
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert count_patients(client) == 1


def test_conditional_create_with_several_matches_is_412(client: TestClient) -> None:
    create(client, patient(family="Twin"))
    create(client, patient(family="Twin"))
    response = client.post("/fhir/Patient", json=patient(), headers={"If-None-Exist": "family=Twin"})
    assert response.status_code == 412
    assert count_patients(client) == 2


def test_conditional_update_updates_the_single_match(client: TestClient) -> None:
    created = create(client, patient(ipp="2850275123456"))
    body = {**patient(ipp="2850275123456"), "gender": "female"}
    response = client.put("/fhir/Patient", params={"identifier": "2850275123456"}, json=body)
    assert response.status_code == 200
    assert response.json()["id"] == created["id"]
    assert response.json()["meta"]["versionId"] == "2"


def test_conditional_update_without_match_creates(client: TestClient) -> None:
    response = client.put("/fhir/Patient", params={"identifier": "999"}, json=patient(ipp="999"))
    assert response.status_code == 201


def test_conditional_delete(client: TestClient) -> None:
    created = create(client, patient(ipp="123"))
    assert client.delete("/fhir/Patient", params={"identifier": "123"}).status_code == 204
    assert client.get(f"/fhir/Patient/{created['id']}").status_code == 410


def test_json_patch_changes_the_resource(client: TestClient) -> None:
    created = create(client, patient(family="Martin"))
    operations = [
        {"op": "replace", "path": "/name/0/family", "value": "Durand"},
        {"op": "add", "path": "/gender", "value": "male"},
    ]
    response = client.patch(
        f"/fhir/Patient/{created['id']}",
        json=operations,
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"][0]["family"] == "Durand" and body["gender"] == "male"
    assert body["meta"]["versionId"] == "2"


def test_json_patch_failing_test_op_is_422_and_changes_nothing(client: TestClient) -> None:
    created = create(client, patient(family="Martin"))
    operations = [{"op": "test", "path": "/name/0/family", "value": "Other"}]
    response = client.patch(
        f"/fhir/Patient/{created['id']}",
        json=operations,
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 422
    assert client.get(f"/fhir/Patient/{created['id']}").json()["meta"]["versionId"] == "1"


def test_json_patch_producing_an_invalid_resource_is_400(client: TestClient) -> None:
    created = create(client, patient())
    operations = [{"op": "add", "path": "/birthDate", "value": "not-a-date"}]
    response = client.patch(
        f"/fhir/Patient/{created['id']}",
        json=operations,
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 400


def test_prefer_return_minimal_has_no_body(client: TestClient) -> None:
    response = client.post("/fhir/Patient", json=patient(), headers={"Prefer": "return=minimal"})
    assert response.status_code == 201
    assert response.content == b""
    assert response.headers["location"]


def test_prefer_return_operation_outcome(client: TestClient) -> None:
    response = client.post("/fhir/Patient", json=patient(), headers={"Prefer": "return=OperationOutcome"})
    assert response.status_code == 201
    assert response.json()["resourceType"] == "OperationOutcome"


def test_xml_format_is_refused_with_406(client: TestClient) -> None:
    response = client.get("/fhir/Patient", params={"_format": "xml"})
    assert response.status_code == 406


def test_method_not_allowed_is_405(client: TestClient) -> None:
    created = create(client, patient())
    response = client.post(f"/fhir/Patient/{created['id']}", json=patient())
    assert response.status_code == 405


def test_vread_unknown_version_is_404(client: TestClient) -> None:
    created = create(client, patient())
    assert client.get(f"/fhir/Patient/{created['id']}/_history/9").status_code == 404


def test_if_none_match_gives_304(client: TestClient) -> None:
    created = create(client, patient())
    response = client.get(f"/fhir/Patient/{created['id']}", headers={"If-None-Match": 'W/"1"'})
    assert response.status_code == 304


def test_capability_statement_lists_resources_and_params(client: TestClient) -> None:
    body = client.get("/fhir/metadata").json()
    assert body["resourceType"] == "CapabilityStatement" and body["fhirVersion"] == "4.0.1"
    resources = {r["type"]: r for r in body["rest"][0]["resource"]}
    assert len(resources) >= 140
    names = {p["name"] for p in resources["Patient"]["searchParam"]}
    assert {"name", "birthdate", "identifier", "_id", "_lastUpdated"} <= names
