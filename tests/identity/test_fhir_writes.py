"""Patient writes through the FHIR API follow the RNIV: single interactions, JSON Patch and bundles.

Refused: a status without its criteria, a strict-trait edit that would keep the INSi criterion
(applied instead, as a downgrade), an INS matricule on an identity not retrieved via INSi. A refused
Patient in a transaction leaves nothing written.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import date
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from socle.identity.fhir import RELIABILITY_URL, patient_to_record, record_to_patient
from socle.identity.record import Attribute, IdentityRecord, Status
from tests.identity.factories import jeanne, jeanne_ins, made_up_nir

ON = date(2024, 5, 17)


def qualified(**changes: Any) -> IdentityRecord:
    record = IdentityRecord(
        jeanne(),
        status=Status.QUAL,
        ins=jeanne_ins(),
        insi_date=ON,
        validation_document="PA",
        validation_date=ON,
    )
    return replace(record, **changes)


def retrieved(**changes: Any) -> IdentityRecord:
    return replace(qualified(status=Status.RECUP, validation_document=None, validation_date=None), **changes)


def provisional(**changes: Any) -> IdentityRecord:
    return replace(IdentityRecord(jeanne()), **changes)


def put(client: TestClient, patient_id: str, record: IdentityRecord) -> Any:
    return client.put(f"/fhir/Patient/{patient_id}", json={**record_to_patient(record), "id": patient_id})


def stored_record(client: TestClient, patient_id: str) -> IdentityRecord:
    # From the store: the API leaves out the INS of an identity that is not qualified.
    with client.app.state.store.session(readonly=True) as session:  # type: ignore[attr-defined]
        return patient_to_record(session.read("Patient", patient_id).json())


def refusal(response: Any) -> tuple[str, list[str]]:
    assert response.status_code == 422, response.text
    issue = response.json()["issue"][0]
    return issue["diagnostics"], issue.get("expression", [])


def test_a_qualified_identity_with_both_criteria_is_accepted(client: TestClient) -> None:
    assert put(client, "p1", qualified()).status_code == 201
    assert stored_record(client, "p1") == qualified()


@pytest.mark.parametrize(
    ("record", "says"),
    [
        (qualified(validation_document=None, validation_date=None), "sans document d'identité vérifié"),
        (qualified(validation_document="PC"), "haut niveau de confiance"),
        (qualified(ins=None), "sans matricule INS"),
        (qualified(insi_date=None), "sans date de récupération INSi"),
    ],
)
def test_qualified_without_its_criteria_is_refused_naming_the_rule(
    client: TestClient, record: IdentityRecord, says: str
) -> None:
    diagnostics, expression = refusal(put(client, "p1", record))
    assert diagnostics.startswith("Règle RNIV « ") and says in diagnostics
    assert expression and ("identity-reliability" in expression[0] or expression[0] == "Patient.identifier")
    assert client.get("/fhir/Patient/p1").status_code == 404


def test_raising_a_provisional_identity_to_qualified_without_evidence_is_refused(client: TestClient) -> None:
    put(client, "p1", provisional())
    patient = client.get("/fhir/Patient/p1").json()
    for extension in patient["extension"]:
        if extension["url"] == RELIABILITY_URL:
            extension["extension"][0]["valueCoding"]["code"] = "QUAL"
    diagnostics, _ = refusal(client.put("/fhir/Patient/p1", json=patient))
    assert "statut et critères" in diagnostics
    assert stored_record(client, "p1").status is Status.PROV


def test_an_ins_matricule_is_refused_on_an_identity_not_retrieved_via_insi(client: TestClient) -> None:
    diagnostics, expression = refusal(put(client, "p1", provisional(ins=jeanne_ins())))
    assert "origine du matricule INS" in diagnostics and "seul le téléservice INSi" in diagnostics
    assert expression == ["Patient.identifier"]
    bare = {
        "resourceType": "Patient",
        "identifier": [{"system": jeanne_ins().system, "value": jeanne_ins().value}],
    }
    diagnostics, _ = refusal(client.post("/fhir/Patient", json=bare))
    assert "traits stricts" in diagnostics
    validated = provisional(
        status=Status.VALI, validation_document="PA", validation_date=ON, ins=jeanne_ins()
    )
    assert "seul le téléservice INSi" in refusal(put(client, "p2", validated))[0]


def test_a_matricule_that_contradicts_the_traits_is_refused(client: TestClient) -> None:
    someone_else = jeanne_ins(value=made_up_nir(sex="1"))
    assert "sexe" in refusal(put(client, "p1", retrieved(ins=someone_else)))[0]


def test_changing_a_strict_trait_drops_the_insi_criterion(client: TestClient) -> None:
    put(client, "p1", qualified())
    edited = put(client, "p1", qualified(traits=jeanne(birth_name="Dupont")))
    assert edited.status_code == 200
    record = stored_record(client, "p1")
    assert record.status is Status.VALI and record.traits.birth_name == "DUPONT"
    assert record.insi_date is None and record.ins == jeanne_ins()  # kept, to be checked again
    other = jeanne_ins(value=made_up_nir(order="043"))
    assert put(client, "p2", retrieved(ins=other)).status_code == 201
    put(client, "p2", retrieved(ins=other, traits=jeanne(birth_date="1985-01-16")))
    assert stored_record(client, "p2").status is Status.PROV


def test_re_claiming_the_insi_criterion_needs_a_retrieval_date(client: TestClient) -> None:
    put(client, "p1", retrieved())
    put(client, "p1", retrieved(traits=jeanne(sex="unknown")))
    assert stored_record(client, "p1").status is Status.PROV
    assert (
        "dateCollection"
        in refusal(put(client, "p1", retrieved(traits=jeanne(sex="unknown"), insi_date=None)))[0]
    )


def test_other_edits_keep_the_status(client: TestClient) -> None:
    put(client, "p1", qualified())
    assert put(client, "p1", qualified(used_name="Durand")).status_code == 200
    assert stored_record(client, "p1").status is Status.QUAL


def test_doubt_on_a_validated_identity_drops_its_document_criterion_and_fiction_is_refused(
    client: TestClient,
) -> None:
    put(client, "p1", qualified())
    put(client, "p1", qualified(attributes=frozenset({Attribute.DOUBTFUL})))
    assert stored_record(client, "p1").status is Status.RECUP
    diagnostics, _ = refusal(put(client, "p1", retrieved(attributes=frozenset({Attribute.FICTITIOUS}))))
    assert "attributs de l'identité" in diagnostics and "fictive" in diagnostics


def test_removing_the_strict_traits_of_a_qualified_identity_is_refused(client: TestClient) -> None:
    put(client, "p1", qualified())
    plain = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Martin"}]}
    assert "garde ses traits stricts" in refusal(client.put("/fhir/Patient/p1", json=plain))[0]


def test_plain_patients_are_left_alone(client: TestClient) -> None:
    plain = {"resourceType": "Patient", "name": [{"family": "Martin"}], "birthDate": "1970"}
    assert client.post("/fhir/Patient", json=plain).status_code == 201


def test_an_ins_already_carried_by_another_patient_is_a_conflict(client: TestClient) -> None:
    put(client, "p1", qualified())
    response = put(client, "p2", qualified())
    assert response.status_code == 409 and "doublon potentiel" in response.text


def patch(client: TestClient, patient_id: str, operations: list[dict[str, Any]]) -> Any:
    return client.patch(
        f"/fhir/Patient/{patient_id}",
        content=orjson.dumps(operations),
        headers={"Content-Type": "application/json-patch+json"},
    )


def test_json_patch_goes_through_the_same_rules(client: TestClient) -> None:
    put(client, "p1", qualified())
    renamed = patch(client, "p1", [{"op": "replace", "path": "/name/0/family", "value": "DUPONT"}])
    assert renamed.status_code == 200
    assert stored_record(client, "p1").status is Status.VALI
    put(client, "p2", provisional())
    ins = {"system": jeanne_ins().system, "value": jeanne_ins().value, "use": "official"}
    diagnostics, _ = refusal(patch(client, "p2", [{"op": "add", "path": "/identifier", "value": [ins]}]))
    assert "origine du matricule INS" in diagnostics


def transaction(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def test_a_transaction_with_one_refused_patient_writes_nothing(client: TestClient) -> None:
    bundle = transaction(
        {"resource": record_to_patient(provisional()), "request": {"method": "POST", "url": "Patient"}},
        {
            "resource": {**record_to_patient(qualified(ins=None)), "id": "p9"},
            "request": {"method": "PUT", "url": "Patient/p9"},
        },
    )
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 422 and "Bundle.entry[1]" in response.text
    assert "statut et critères" in response.text
    assert client.get("/fhir/Patient", params={"family": "martin"}).json().get("total", 0) == 0


def test_a_transaction_applies_the_downgrade_and_patches_in_bundles_too(client: TestClient) -> None:
    put(client, "p1", qualified())
    operations = [{"op": "replace", "path": "/birthDate", "value": "1985-02-15"}]
    binary = {"resourceType": "Binary", "contentType": "application/json-patch+json"}
    binary["data"] = base64.b64encode(orjson.dumps(operations)).decode()
    bundle = transaction(
        {"resource": binary, "request": {"method": "PATCH", "url": "Patient/p1"}},
        {
            "resource": record_to_patient(retrieved(ins=None, status=Status.PROV, insi_date=None)),
            "request": {"method": "POST", "url": "Patient"},
        },
    )
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 200, response.text
    assert stored_record(client, "p1").status is Status.VALI


def test_a_refused_batch_entry_fails_alone(client: TestClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": record_to_patient(provisional(ins=jeanne_ins())),
                "request": {"method": "POST", "url": "Patient"},
            },
            {"resource": record_to_patient(provisional()), "request": {"method": "POST", "url": "Patient"}},
        ],
    }
    statuses = [e["response"]["status"] for e in client.post("/fhir", json=bundle).json()["entry"]]
    assert statuses == ["422", "201"]
