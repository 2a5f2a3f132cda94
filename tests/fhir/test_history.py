"""Instance, type and system history; `_since`, `_count`, paging; `Patient/$everything`."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from tests.factories import observation, patient


def test_instance_history_lists_versions_newest_first(client: TestClient) -> None:
    created = client.post("/fhir/Patient", json=patient()).json()
    client.put(f"/fhir/Patient/{created['id']}", json={**created, "gender": "male"})
    client.put(f"/fhir/Patient/{created['id']}", json={**created, "gender": "female"})
    bundle = client.get(f"/fhir/Patient/{created['id']}/_history").json()
    assert bundle["type"] == "history"
    assert [e["resource"]["meta"]["versionId"] for e in bundle["entry"]] == ["3", "2", "1"]
    assert [e["request"]["method"] for e in bundle["entry"]] == ["PUT", "PUT", "POST"]
    assert bundle["entry"][0]["response"]["etag"] == 'W/"3"'


def test_type_and_system_history(client: TestClient) -> None:
    pid = client.post("/fhir/Patient", json=patient()).json()["id"]
    client.post("/fhir/Observation", json=observation(f"Patient/{pid}"))
    type_history = client.get("/fhir/Patient/_history").json()
    assert {e["resource"]["resourceType"] for e in type_history["entry"]} == {"Patient"}
    system_history = client.get("/fhir/_history").json()
    clinical = [
        e["resource"]["resourceType"] for e in system_history["entry"] if "AuditEvent" not in e["fullUrl"]
    ]
    assert clinical == ["Observation", "Patient"]


def test_history_since_and_count_paging(client: TestClient) -> None:
    first = client.post("/fhir/Patient", json=patient("Ancien")).json()
    time.sleep(0.01)
    marker = client.post("/fhir/Patient", json=patient("Marqueur")).json()["meta"]["lastUpdated"]
    for i in range(4):
        client.post("/fhir/Patient", json=patient(f"Nouveau{i}"))
    since = client.get("/fhir/Patient/_history", params={"_since": marker}).json()
    assert first["id"] not in {e["resource"]["id"] for e in since["entry"]}
    assert len(since["entry"]) == 5
    page = client.get("/fhir/Patient/_history?_count=2").json()
    assert len(page["entry"]) == 2
    seen = [e["resource"]["id"] for e in page["entry"]]
    nxt = next(link["url"] for link in page["link"] if link["relation"] == "next")
    client.post("/fhir/Patient", json=patient("Pendant"))  # must not shift the next page
    page2 = client.get(nxt.replace("http://testserver", "")).json()
    seen += [e["resource"]["id"] for e in page2["entry"]]
    assert len(set(seen)) == 4


def test_history_of_unknown_resource_is_404(client: TestClient) -> None:
    assert client.get("/fhir/Patient/nobody/_history").status_code == 404


def test_invalid_since_is_400(client: TestClient) -> None:
    response = client.get("/fhir/_history", params={"_since": "yesterday"})
    assert response.status_code == 400


def test_patient_everything_returns_the_compartment(client: TestClient) -> None:
    pid = client.post("/fhir/Patient", json=patient()).json()["id"]
    other = client.post("/fhir/Patient", json=patient("Autre")).json()["id"]
    mine = [
        client.post("/fhir/Observation", json=observation(f"Patient/{pid}")).json()["id"] for _ in range(3)
    ]
    client.post("/fhir/Observation", json=observation(f"Patient/{other}"))
    bundle = client.get(f"/fhir/Patient/{pid}/$everything").json()
    found = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]}
    assert found == {("Patient", pid)} | {("Observation", o) for o in mine}
    page = client.get(f"/fhir/Patient/{pid}/$everything?_count=2").json()
    assert len(page["entry"]) == 2 and any(link["relation"] == "next" for link in page["link"])


def test_everything_of_unknown_patient_is_404(client: TestClient) -> None:
    assert client.get("/fhir/Patient/nobody/$everything").status_code == 404


def test_unknown_operation_is_404(client: TestClient) -> None:
    assert client.get("/fhir/Patient/$unknown").status_code == 404
