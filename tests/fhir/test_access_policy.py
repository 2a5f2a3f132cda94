"""Who may do what on the FHIR API: scopes, a citizen's own compartment, the care relationship,
bris de glace, and "not found" looking the same as "forbidden"."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from socle.auth.context import RequestContext
from socle.store.repository import FhirStore
from tests.conftest import InteractionCounter, app_client
from tests.factories import observation, patient


def citizen(
    patient_id: str, *, represents: tuple[str, ...] = (), scopes: str = "patient/*.rs"
) -> RequestContext:
    return RequestContext(
        actor_type="patient",
        actor_id=f"Patient/{patient_id}",
        display="Citoyenne",
        scopes=frozenset(scopes.split()),
        patient_ids=frozenset({patient_id, *represents}),
    )


def doctor(practitioner_id: str, **kwargs: Any) -> RequestContext:
    return RequestContext(
        actor_type="practitioner",
        actor_id=f"Practitioner/{practitioner_id}",
        display="Dr Test",
        scopes=frozenset({"user/*.cruds"}),
        profession="10",
        specialty="SM54",
        **kwargs,
    )


@pytest.fixture
def world(client: TestClient) -> dict[str, str]:
    """Two patients; Dr House is the médecin traitant of the first only; one Observation each."""
    house = client.put(
        "/fhir/Practitioner/house", json={"resourceType": "Practitioner", "id": "house"}
    ).json()
    client.put("/fhir/Practitioner/other", json={"resourceType": "Practitioner", "id": "other"})
    alice = client.post(
        "/fhir/Patient",
        json={**patient("Alice"), "generalPractitioner": [{"reference": f"Practitioner/{house['id']}"}]},
    ).json()["id"]
    bob = client.post("/fhir/Patient", json=patient("Bob")).json()["id"]
    return {
        "alice": alice,
        "bob": bob,
        "alice_obs": client.post("/fhir/Observation", json=observation(f"Patient/{alice}")).json()["id"],
        "bob_obs": client.post("/fhir/Observation", json=observation(f"Patient/{bob}")).json()["id"],
    }


@pytest.fixture
def as_actor(store: FhirStore, interactions: InteractionCounter) -> Iterator[Any]:
    opened: list[TestClient] = []

    def make(ctx: RequestContext) -> TestClient:
        test_client = app_client(store, ctx, interactions)
        opened.append(test_client)
        return test_client

    yield make
    for test_client in opened:
        test_client.close()


def found_ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(
        e["resource"]["id"] for e in response.json().get("entry", []) if e["search"]["mode"] == "match"
    )


def test_an_anonymous_request_is_401(
    store: FhirStore, world: dict[str, str], interactions: InteractionCounter
) -> None:
    anonymous = RequestContext(actor_type="anonymous", actor_id="anonymous", display="anonyme")
    with app_client(store, anonymous, interactions) as test_client:
        response = test_client.get(f"/fhir/Patient/{world['alice']}")
        assert response.status_code == 401
        assert test_client.get("/fhir/metadata").status_code == 200


def test_a_citizen_sees_only_their_own_record(as_actor: Any, world: dict[str, str]) -> None:
    alice = as_actor(citizen(world["alice"]))
    assert alice.get(f"/fhir/Patient/{world['alice']}").status_code == 200
    assert found_ids(alice.get("/fhir/Observation")) == [world["alice_obs"]]
    assert found_ids(alice.get("/fhir/Patient")) == [world["alice"]]


def test_another_persons_data_looks_like_it_does_not_exist(as_actor: Any, world: dict[str, str]) -> None:
    alice = as_actor(citizen(world["alice"]))
    forbidden = alice.get(f"/fhir/Observation/{world['bob_obs']}")
    missing = alice.get("/fhir/Observation/never-existed")
    assert forbidden.status_code == missing.status_code == 404
    assert alice.get(f"/fhir/Patient/{world['bob']}").status_code == 404
    assert alice.get(f"/fhir/Patient/{world['bob']}/_history").status_code == 404
    assert alice.get(f"/fhir/Patient/{world['bob']}/$everything").status_code == 404
    assert found_ids(alice.get(f"/fhir/Observation?subject=Patient/{world['bob']}")) == []
    assert alice.get("/fhir/Observation?_summary=count").json()["total"] == 1


def test_a_parent_reaches_the_record_of_their_child(as_actor: Any, world: dict[str, str]) -> None:
    parent = as_actor(citizen(world["alice"], represents=(world["bob"],)))
    assert found_ids(parent.get("/fhir/Observation")) == sorted([world["alice_obs"], world["bob_obs"]])


def test_a_citizen_cannot_write_without_a_write_scope(as_actor: Any, world: dict[str, str]) -> None:
    alice = as_actor(citizen(world["alice"]))
    response = alice.post("/fhir/Observation", json=observation(f"Patient/{world['alice']}"))
    assert response.status_code == 403
    assert "scopes" in response.json()["issue"][0]["diagnostics"]


def test_a_citizen_cannot_write_into_another_record(as_actor: Any, world: dict[str, str]) -> None:
    alice = as_actor(citizen(world["alice"], scopes="patient/*.cruds"))
    assert alice.post("/fhir/Observation", json=observation(f"Patient/{world['alice']}")).status_code == 201
    assert alice.post("/fhir/Observation", json=observation(f"Patient/{world['bob']}")).status_code == 403
    bob_obs = alice.get(f"/fhir/Observation/{world['bob_obs']}")
    assert bob_obs.status_code == 404
    assert alice.delete(f"/fhir/Observation/{world['bob_obs']}").status_code == 404


def test_the_gp_sees_their_patient_and_not_the_others(as_actor: Any, world: dict[str, str]) -> None:
    house = as_actor(doctor("house"))
    assert house.get(f"/fhir/Observation/{world['alice_obs']}").status_code == 200
    assert house.get(f"/fhir/Observation/{world['bob_obs']}").status_code == 404
    assert found_ids(house.get("/fhir/Observation")) == [world["alice_obs"]]


def test_a_professional_without_care_relationship_sees_nothing(as_actor: Any, world: dict[str, str]) -> None:
    other = as_actor(doctor("other"))
    assert found_ids(other.get("/fhir/Patient")) == []
    assert other.get(f"/fhir/Patient/{world['alice']}").status_code == 404


def test_a_care_team_or_an_encounter_creates_the_relationship(
    client: TestClient, as_actor: Any, world: dict[str, str]
) -> None:
    client.post(
        "/fhir/CareTeam",
        json={
            "resourceType": "CareTeam",
            "status": "active",
            "subject": {"reference": f"Patient/{world['bob']}"},
            "participant": [{"member": {"reference": "Practitioner/other"}}],
        },
    )
    other = as_actor(doctor("other"))
    assert other.get(f"/fhir/Observation/{world['bob_obs']}").status_code == 200
    assert other.get(f"/fhir/Observation/{world['alice_obs']}").status_code == 404


def test_bris_de_glace_opens_the_record_and_requires_a_reason(
    client: TestClient, as_actor: Any, world: dict[str, str]
) -> None:
    no_reason = as_actor(doctor("other", purpose_of_use="bris-de-glace"))
    assert no_reason.get(f"/fhir/Patient/{world['bob']}").status_code == 403
    urgent = as_actor(doctor("other", purpose_of_use="bris-de-glace", purpose_reason="patient inconscient"))
    assert urgent.get(f"/fhir/Patient/{world['bob']}").status_code == 200
    events = client.get("/fhir/AuditEvent", params={"patient": world["bob"]}).json()["entry"]
    emergency = [
        e["resource"]
        for e in events
        if e["resource"]["purposeOfEvent"][0]["coding"][0]["code"] == "bris-de-glace"
    ]
    assert emergency and emergency[-1]["purposeOfEvent"][0]["text"] == "patient inconscient"


def test_includes_do_not_leak_other_patients(
    client: TestClient, as_actor: Any, world: dict[str, str]
) -> None:
    shared = client.post(
        "/fhir/Observation",
        json={
            **observation(f"Patient/{world['alice']}"),
            "hasMember": [{"reference": f"Observation/{world['bob_obs']}"}],
        },
    ).json()["id"]
    alice = as_actor(citizen(world["alice"]))
    bundle = alice.get(f"/fhir/Observation?_id={shared}&_include=Observation:has-member").json()
    assert [e["resource"]["id"] for e in bundle["entry"]] == [shared]


def test_a_system_client_is_bound_by_its_scopes(as_actor: Any, world: dict[str, str]) -> None:
    reader = as_actor(
        RequestContext(
            actor_type="system",
            actor_id="Client/lab",
            display="Laboratoire",
            client_id="lab",
            scopes=frozenset({"system/Observation.rs"}),
        )
    )
    assert reader.get(f"/fhir/Observation/{world['bob_obs']}").status_code == 200
    assert reader.get(f"/fhir/Patient/{world['bob']}").status_code == 403
    assert reader.post("/fhir/Observation", json=observation(f"Patient/{world['bob']}")).status_code == 403
    assert reader.get("/fhir/_history").status_code == 403


def test_a_transaction_entry_outside_the_reach_fails_the_whole_transaction(
    client: TestClient, as_actor: Any, world: dict[str, str]
) -> None:
    alice = as_actor(citizen(world["alice"], scopes="patient/*.cruds"))
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": observation(f"Patient/{world['alice']}"),
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "resource": observation(f"Patient/{world['bob']}"),
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    assert alice.post("/fhir", json=bundle).status_code == 403
    assert client.get("/fhir/Observation?_summary=count").json()["total"] == 2


def test_denied_attempts_are_traced(client: TestClient, as_actor: Any, world: dict[str, str]) -> None:
    as_actor(citizen(world["alice"])).get(f"/fhir/Patient/{world['bob']}")
    events = client.get("/fhir/AuditEvent", params={"patient": world["bob"]}).json()["entry"]
    denied = [e["resource"] for e in events if e["resource"]["outcome"] != "0"]
    assert len(denied) == 1
    assert denied[0]["agent"][0]["who"]["reference"] == f"Patient/{world['alice']}"
