"""The audit trail: one AuditEvent per interaction, the patient journal, a chain that detects tampering."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, select, update
from typer.testing import CliRunner

from socle.audit.trail import chain_length, verify_chain
from socle.cli import app
from socle.config import get_settings
from socle.store import schema
from tests.factories import observation, patient


def audit_events(client: TestClient, **params: str) -> list[dict[str, Any]]:
    bundle = client.get("/fhir/AuditEvent", params={"_count": "200", **params}).json()
    return [e["resource"] for e in bundle.get("entry", []) if e["resource"]["resourceType"] == "AuditEvent"]


def subtype(event: dict[str, Any]) -> str:
    return str(event["subtype"][0]["code"])


def test_each_interaction_leaves_exactly_one_matching_event(client: TestClient, engine: Engine) -> None:
    pid = client.post("/fhir/Patient", json=patient()).json()["id"]  # 1: create
    client.get(f"/fhir/Patient/{pid}")  # 2: read
    client.get("/fhir/Patient", params={"family": "martin"})  # 3: search
    client.get(f"/fhir/Patient/{pid}/_history")  # 4: history
    assert chain_length(engine) == 4
    client.get("/fhir/metadata")  # not patient data: not traced
    assert chain_length(engine) == 4
    events = audit_events(client, patient=pid)  # 5: this search is traced too, after it answered
    assert sorted(subtype(e) for e in events) == ["create", "history-instance", "read", "search-type"]
    read = next(e for e in events if subtype(e) == "read")
    assert read["action"] == "R" and read["outcome"] == "0"
    assert read["purposeOfEvent"][0]["coding"][0]["code"] == "normal"


def test_a_failed_attempt_is_traced_with_its_outcome(client: TestClient) -> None:
    client.get("/fhir/Patient/nobody")
    client.post("/fhir/Patient", json={**patient(), "birthDate": "1980-02-30"})
    events = audit_events(client)
    failures = {subtype(e): e for e in events if e["outcome"] != "0"}
    assert set(failures) == {"read", "create"}
    assert failures["read"]["outcome"] == "4" and "Patient/nobody" in failures["read"]["outcomeDesc"]
    assert failures["read"]["entity"][0]["what"]["reference"] == "Patient/nobody"


def test_a_transaction_is_traced_once_with_every_patient(client: TestClient) -> None:
    urn = "urn:uuid:4a4b4c4d-0000-4000-8000-000000000001"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": urn, "resource": patient(), "request": {"method": "POST", "url": "Patient"}},
            {"resource": observation(urn), "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    response = client.post("/fhir", json=bundle).json()
    pid = response["entry"][0]["resource"]["id"]
    events = [e for e in audit_events(client) if subtype(e) == "transaction"]
    assert len(events) == 1
    assert {"reference": f"Patient/{pid}"} in [ent["what"] for ent in events[0]["entity"] if "what" in ent]


def test_patient_journal_lists_who_read_the_record(client: TestClient) -> None:
    mine = client.post("/fhir/Patient", json=patient()).json()["id"]
    other = client.post("/fhir/Patient", json=patient("Autre")).json()["id"]
    client.post("/fhir/Observation", json=observation(f"Patient/{mine}"))
    client.get("/fhir/Observation", params={"subject": f"Patient/{mine}"})
    client.get(f"/fhir/Patient/{other}")
    journal = audit_events(client, patient=mine)
    assert sorted(subtype(e) for e in journal) == ["create", "create", "search-type"]
    assert all(e["agent"][0]["requestor"] for e in journal)


def test_moving_a_resource_to_another_patient_shows_in_both_journals(client: TestClient) -> None:
    first = client.post("/fhir/Patient", json=patient()).json()["id"]
    second = client.post("/fhir/Patient", json=patient("Autre")).json()["id"]
    created = client.post("/fhir/Observation", json=observation(f"Patient/{first}")).json()
    moved = {**created, "subject": {"reference": f"Patient/{second}"}}
    assert client.put(f"/fhir/Observation/{created['id']}", json=moved).status_code == 200
    for pid in (first, second):
        assert "update" in [subtype(e) for e in audit_events(client, patient=pid)], pid


def test_audit_events_cannot_be_written_through_the_api(client: TestClient, engine: Engine) -> None:
    client.get("/fhir/Patient")
    event = audit_events(client)[0]
    assert client.put(f"/fhir/AuditEvent/{event['id']}", json={**event, "outcome": "8"}).status_code == 405
    assert client.delete(f"/fhir/AuditEvent/{event['id']}").status_code == 405
    assert client.post("/fhir/AuditEvent", json=event).status_code == 405
    assert verify_chain(engine).intact


def _fill(client: TestClient, n: int) -> None:
    for i in range(n):
        client.post("/fhir/Patient", json=patient(f"P{i}"))


def test_an_intact_chain_verifies(client: TestClient, engine: Engine) -> None:
    _fill(client, 5)
    report = verify_chain(engine, batch=2)
    assert report.intact and report.entries == 5


@pytest.mark.audit_tampering
def test_a_modified_event_breaks_the_chain_at_its_link(client: TestClient, engine: Engine) -> None:
    _fill(client, 5)
    chain, version = schema.audit_chain, schema.resource_version
    with engine.begin() as connection:
        third = connection.execute(
            select(chain.c.seq, chain.c.resource_pk).order_by(chain.c.seq).offset(2)
        ).first()
        assert third is not None
        data = connection.execute(
            select(version.c.data).where(version.c.resource_pk == third.resource_pk)
        ).scalar_one()
        tampered = data.replace(b'"outcome":"0"', b'"outcome":"4"')
        connection.execute(
            update(version).where(version.c.resource_pk == third.resource_pk).values(data=tampered)
        )
    report = verify_chain(engine)
    assert report.broken_at == third.seq and report.entries == 2
    assert report.reason is not None and "altéré" in report.reason


@pytest.mark.audit_tampering
def test_a_deleted_link_and_reordered_links_are_detected(client: TestClient, engine: Engine) -> None:
    _fill(client, 5)
    chain = schema.audit_chain
    with engine.begin() as connection:
        seqs = [row[0] for row in connection.execute(select(chain.c.seq).order_by(chain.c.seq))]
        connection.execute(delete(chain).where(chain.c.seq == seqs[1]))
    report = verify_chain(engine)
    assert report.broken_at == seqs[2] and "supprimé ou déplacé" in (report.reason or "")
    with engine.begin() as connection:
        connection.execute(update(chain).where(chain.c.seq == seqs[3]).values(seq=10_000))
        connection.execute(update(chain).where(chain.c.seq == seqs[4]).values(seq=seqs[3]))
        connection.execute(update(chain).where(chain.c.seq == 10_000).values(seq=seqs[4]))
        connection.execute(update(chain).where(chain.c.seq == seqs[1] + 10_001).values(seq=seqs[1]))
    assert not verify_chain(engine).intact


@pytest.fixture
def cli(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("SOCLE_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


@pytest.mark.audit_tampering
def test_audit_verify_command(client: TestClient, engine: Engine, cli: CliRunner) -> None:
    _fill(client, 3)
    ok = cli.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0 and "3 événements vérifiés" in ok.output
    with engine.begin() as connection:
        connection.execute(delete(schema.resource).where(schema.resource.c.res_type == "AuditEvent"))
    broken = cli.invoke(app, ["audit", "verify"])
    assert broken.exit_code == 1 and "supprimé" in broken.output


def test_a_read_names_the_same_patients_as_the_index_without_a_query_of_its_own(
    client: TestClient, engine: Engine
) -> None:
    from socle.audit.trail import patients_of
    from socle.store.repository import FhirStore

    jeanne = client.post("/fhir/Patient", json=patient()).json()["id"]
    linked = {
        **patient("Martin", "J."),
        "link": [{"other": {"reference": f"Patient/{jeanne}"}, "type": "seealso"}],
    }
    other = client.post("/fhir/Patient", json=linked).json()["id"]
    weight = client.post("/fhir/Observation", json=observation(f"Patient/{jeanne}")).json()["id"]
    org = client.post("/fhir/Organization", json={"resourceType": "Organization", "name": "CH"}).json()["id"]
    store = FhirStore(engine)
    for res_type, res_id, expected in [
        ("Patient", jeanne, (jeanne,)),
        ("Patient", other, tuple(sorted((jeanne, other)))),
        ("Observation", weight, (jeanne,)),
        ("Organization", org, ()),
    ]:
        with store.session(readonly=True) as session:
            pk = session.read_any(res_type, res_id).pk
            assert patients_of(session, {pk}) == expected  # from what the read brought
        with store.session(readonly=True) as session:
            session.touched.add(pk)
            assert patients_of(session, {pk}) == expected  # from the index, queried
    assert client.get(f"/fhir/Observation/{weight}").status_code == 200
    read = next(e for e in audit_events(client, patient=jeanne) if subtype(e) == "read")
    assert {"reference": f"Patient/{jeanne}"} in [ent["what"] for ent in read["entity"] if "what" in ent]
