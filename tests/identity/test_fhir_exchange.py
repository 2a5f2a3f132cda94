"""Only a qualified identity shows its INS matricule to other systems (RNIV EXI SI 08).

The store keeps the matricule of a retrieved or validated identity; every way the API returns a
Patient leaves it out; a client writing back the Patient it was served does not remove it.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from socle.identity.fhir import patient_to_record, record_to_patient
from socle.identity.record import INS_KIND_BY_SYSTEM, Status
from socle.store.repository import FhirStore
from tests.identity.test_fhir_writes import qualified, retrieved


def ins_values(patient: dict[str, Any]) -> list[str]:
    return [i["value"] for i in patient.get("identifier", []) if i.get("system") in INS_KIND_BY_SYSTEM]


def stored(store: FhirStore, patient_id: str) -> dict[str, Any]:
    with store.session(readonly=True) as session:
        return session.read("Patient", patient_id).json()


def served_everywhere(client: TestClient, patient_id: str) -> list[dict[str, Any]]:
    """The Patient as each read path of the API returns it."""
    read = client.get(f"/fhir/Patient/{patient_id}").json()
    vread = client.get(f"/fhir/Patient/{patient_id}/_history/1").json()
    search = client.get("/fhir/Patient", params={"_id": patient_id}).json()["entry"][0]["resource"]
    summary = client.get("/fhir/Patient", params={"_id": patient_id, "_summary": "true"}).json()
    history = client.get(f"/fhir/Patient/{patient_id}/_history").json()["entry"][-1]["resource"]
    everything = client.get(f"/fhir/Patient/{patient_id}/$everything").json()
    in_everything = next(
        e["resource"] for e in everything["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    return [read, vread, search, summary["entry"][0]["resource"], history, in_everything]


def test_a_retrieved_identity_is_served_without_its_ins_but_stored_with_it(
    client: TestClient, store: FhirStore
) -> None:
    assert (
        client.put("/fhir/Patient/p1", json={**record_to_patient(retrieved()), "id": "p1"}).status_code == 201
    )
    assert ins_values(stored(store, "p1")) == [retrieved().ins.value]  # type: ignore[union-attr]
    for patient in served_everywhere(client, "p1"):
        assert ins_values(patient) == [], patient
        assert patient["name"][0]["family"]  # the rest of the Patient is there


def test_a_qualified_identity_is_served_with_its_ins(client: TestClient) -> None:
    assert (
        client.put("/fhir/Patient/p1", json={**record_to_patient(qualified()), "id": "p1"}).status_code == 201
    )
    for patient in served_everywhere(client, "p1"):
        assert ins_values(patient) == [qualified().ins.value]  # type: ignore[union-attr]


def test_writing_back_the_served_patient_keeps_the_stored_ins(client: TestClient, store: FhirStore) -> None:
    assert (
        client.put("/fhir/Patient/p1", json={**record_to_patient(retrieved()), "id": "p1"}).status_code == 201
    )
    served = client.get("/fhir/Patient/p1").json()
    served["telecom"] = [{"system": "phone", "value": "0601020304"}]
    assert client.put("/fhir/Patient/p1", json=served).status_code == 200
    kept = stored(store, "p1")
    assert ins_values(kept) == [retrieved().ins.value]  # type: ignore[union-attr]
    assert patient_to_record(kept).status is Status.RECUP and kept["telecom"][0]["value"] == "0601020304"


def test_a_patch_addresses_the_served_patient_and_keeps_the_stored_ins(
    client: TestClient, store: FhirStore
) -> None:
    record = retrieved()
    patient = {**record_to_patient(record), "id": "p1"}
    patient["identifier"] = [
        {"system": "urn:oid:1.2.250.1.71.4.2.7", "value": "IPP-42"},
        *patient["identifier"],
    ]
    assert client.put("/fhir/Patient/p1", json=patient).status_code == 201
    served = client.get("/fhir/Patient/p1").json()
    assert [i["value"] for i in served["identifier"]] == ["IPP-42"]
    response = client.patch(
        "/fhir/Patient/p1",
        content=b'[{"op": "replace", "path": "/identifier/0/value", "value": "IPP-43"}]',
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 200, response.text
    kept = stored(store, "p1")
    assert sorted(i["value"] for i in kept["identifier"]) == sorted(["IPP-43", record.ins.value])  # type: ignore[union-attr]
