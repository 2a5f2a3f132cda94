"""`seed_france`: the synthetic France in the FHIR store and the INSi registry (both backends)."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from socle.auth.context import RequestContext
from socle.directory.queries import find_resources
from socle.identity.insi import do_qualify_with_insi, lookup_by_carte_vitale, registry_size
from socle.identity.record import Status
from socle.store import schema
from socle.store.repository import FhirStore
from socle.synthetic import SeedRefused, france_bundles, generate_france, seed_france, seed_store
from socle.synthetic.clinical import ATC, LOINC, TRE_R260_ROLE, UCUM

BASE = "http://testserver/fhir"
PEOPLE, SEED, PROFESSIONALS = 40, 7, 150


@pytest.fixture
def seeded(store: FhirStore) -> FhirStore:
    report = seed_france(
        store, store.engine, people=PEOPLE, seed=SEED, base_url=BASE, professionals=PROFESSIONALS
    )
    assert report.people >= PEOPLE and report.registry == report.people
    return store


def everything(
    store: FhirStore, res_type: str, params: list[tuple[str, str]] | None = None
) -> list[dict[str, Any]]:
    with store.session(readonly=True) as session:
        return list(find_resources(session, res_type, params or []))


def test_the_store_holds_every_person_their_history_and_the_directory(store: FhirStore) -> None:
    progress: list[tuple[str, int, int]] = []
    report = seed_france(
        store,
        store.engine,
        people=PEOPLE,
        seed=SEED,
        base_url=BASE,
        professionals=PROFESSIONALS,
        progress=lambda *step: progress.append(step),
    )
    with store.session(readonly=True) as session:
        rows = session.connection.execute(
            select(schema.resource.c.res_type, func.count()).group_by(schema.resource.c.res_type)
        )
        stored = Counter({res_type: count for res_type, count in rows})
    assert stored["AuditEvent"] == report.bundles  # every transaction traced
    del stored["AuditEvent"]
    assert stored == report.resources
    assert stored["Patient"] == report.people + report.duplicates
    assert stored["Practitioner"] == report.professionals == stored["PractitionerRole"]
    assert stored["Location"] == report.sites
    assert {"Encounter", "Observation", "Immunization"} <= set(stored)
    assert registry_size(store.engine) == report.people
    assert progress[-1] == ("personnes", report.people, report.people)
    assert "personnes" in report.summary() and "INSi" in report.summary()


def test_histories_use_loinc_ucum_atc_and_point_at_the_directory(seeded: FhirStore) -> None:
    observations = everything(seeded, "Observation")
    assert observations and all(o["code"]["coding"][0]["system"] == LOINC for o in observations)
    quantities = [o.get("valueQuantity") or o["component"][0]["valueQuantity"] for o in observations]
    assert all(q["system"] == UCUM for q in quantities)
    immunizations = everything(seeded, "Immunization")
    assert immunizations and all(i["vaccineCode"]["coding"][0]["system"] == ATC for i in immunizations)
    practitioners = {p["id"] for p in everything(seeded, "Practitioner")}
    for encounter in everything(seeded, "Encounter"):
        assert (
            encounter["participant"][0]["individual"]["reference"].removeprefix("Practitioner/")
            in practitioners
        )
    roles = {r["practitioner"]["reference"]: r for r in everything(seeded, "PractitionerRole")}
    for patient in everything(seeded, "Patient"):
        gp = patient["generalPractitioner"][0]["reference"]
        assert roles[gp]["specialty"][0]["coding"][0]["code"] in ("SM54", "SM26", "SM53")  # a GP


def test_minors_have_their_parents_as_legal_representatives(seeded: FhirStore) -> None:
    patients = {p["id"]: p for p in everything(seeded, "Patient")}
    representatives = everything(seeded, "RelatedPerson")
    assert representatives
    for related in representatives:
        child = patients[related["patient"]["reference"].removeprefix("Patient/")]
        assert child["birthDate"] > "2008-01-01"  # a minor on 2026-01-01
        roles = {c["code"] for concept in related["relationship"] for c in concept["coding"]}
        assert "GUARD" in roles and roles & {"MTH", "FTH"}
        assert any(
            c["system"] == TRE_R260_ROLE for concept in related["relationship"] for c in concept["coding"]
        )
        parents = [
            p
            for p in patients.values()
            if any(
                link["other"]["reference"] == f"RelatedPerson/{related['id']}" for link in p.get("link", [])
            )
        ]
        assert len(parents) == 1 and parents[0]["link"][0]["type"] == "seealso"


def test_the_insi_registry_finds_the_people_of_the_store(seeded: FhirStore) -> None:
    france = generate_france(PEOPLE, seed=SEED, professionals=PROFESSIONALS)
    people = france.population.people
    adult = next(p for p in people if p.age(date(2026, 1, 1)) >= 18)
    found = lookup_by_carte_vitale(seeded.engine, adult.cartes_vitale[0], birth_date=adult.traits.birth_date)
    assert found.code == "00" and found.ins == adult.ins
    # A provisional identity of the store gets its INS from the registry (PROV -> RECUP).
    provisional = next(p for p in people if p.status is Status.PROV and len(p.traits.birth_date) == 10)
    candidates = everything(
        seeded,
        "Patient",
        [("family", provisional.traits.birth_name), ("birthdate", provisional.traits.birth_date)],
    )
    patient = next(
        c
        for c in candidates
        if c["name"][0]["extension"][0]["valueString"] == " ".join(provisional.traits.birth_given_names)
        and "identifier" not in c
    )
    operator = RequestContext.operator("tests")
    with seeded.session() as session:
        qualification = do_qualify_with_insi(session, operator, seeded.engine, patient["id"])
    assert qualification.response.code == "00"
    assert qualification.record.status is Status.RECUP and qualification.record.ins == provisional.ins


def test_seeding_refuses_a_platform_that_holds_data(seeded: FhirStore) -> None:
    with pytest.raises(SeedRefused) as refused:
        seed_france(seeded, seeded.engine, people=5, seed=1, base_url=BASE)
    assert "contient déjà des données" in refused.value.message
    assert seed_store(seeded, people=5, base_url=BASE) == 0  # `socle demo`: seeds the first start only


def test_the_same_seed_gives_the_same_bundles() -> None:
    first = [b for b, _ in france_bundles(generate_france(30, seed=3, professionals=100))]
    again = [b for b, _ in france_bundles(generate_france(30, seed=3, professionals=100))]
    other = [b for b, _ in france_bundles(generate_france(30, seed=4, professionals=100))]
    assert first == again and first != other
    entries = [e for b in first for e in b["entry"]]
    assert len({e["fullUrl"] for e in entries}) == len(entries)
