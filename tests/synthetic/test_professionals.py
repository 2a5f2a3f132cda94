"""The synthetic health directory: valid national identifiers, realistic professions, places."""

from __future__ import annotations

from collections import Counter
from datetime import date
from functools import cache

from socle.directory.fhir import ACCEPTING_NEW_PATIENTS_EXTENSION, is_mssante_telecom
from socle.directory.identifiers import check_finess, check_rpps
from socle.directory.nomenclatures import tre_g15, tre_r38
from socle.directory.rules import is_mssante_address
from socle.fhir.validation import default_validator
from socle.search.geo import haversine_km
from socle.synthetic.professionals import Directory, generate_directory

AS_OF = date(2026, 1, 1)


@cache
def directory() -> Directory:
    return generate_directory(1500, seed=4, as_of=AS_OF)


def test_national_identifiers_have_valid_keys_and_are_unique() -> None:
    professionals = directory().professionals
    assert {check_rpps(p.rpps) for p in professionals} == {p.rpps for p in professionals}
    assert len({p.rpps for p in professionals}) == len(professionals)
    finess = [s.finess for s in directory().sites if s.finess]
    assert finess and all(check_finess(f) == f for f in finess)


def test_professions_and_specialties_come_in_realistic_proportions() -> None:
    professionals = directory().professionals
    kinds = Counter(p.profession.key for p in professionals)
    total = len(professionals)
    assert 0.12 < kinds["gp"] / total < 0.18
    assert 0.2 < kinds["nurse"] / total < 0.3
    assert {"pharmacist", "dentist", "physio", "midwife", "specialist"} <= set(kinds)
    assert all(p.profession.code in tre_g15().concepts for p in professionals)
    specialties = Counter(p.specialty for p in professionals if p.specialty)
    assert all(code in tre_r38().concepts for code in specialties)
    assert specialties["SM54"] >= kinds["gp"] * 0.85  # médecine générale
    assert all(p.specialty is None for p in professionals if p.profession.key in ("nurse", "pharmacist"))


def test_every_resource_is_valid_fhir_and_every_reference_resolves() -> None:
    resources = list(directory().resources())
    validator = default_validator()
    ids = {(r["resourceType"], r["id"]) for r in resources}
    for resource in resources:
        issues = [i for i in validator.validate(resource) if i.severity in ("error", "fatal")]
        assert issues == [], (resource["id"], issues)
        if resource["resourceType"] == "PractitionerRole":
            for key, kind in (("practitioner", "Practitioner"), ("organization", "Organization")):
                assert (kind, resource[key]["reference"].split("/")[1]) in ids
            assert ("Location", resource["location"][0]["reference"].split("/")[1]) in ids
        if resource["resourceType"] == "Location":
            assert {"latitude", "longitude"} <= set(resource["position"])


def test_mailboxes_flags_and_positions() -> None:
    d = directory()
    mailboxes = [p.mssante for p in d.professionals if p.mssante]
    assert len(mailboxes) == len(set(mailboxes)) and len(mailboxes) > len(d.professionals) / 3
    assert all(is_mssante_address(m) for m in mailboxes)
    roles = [r for r in d.resources() if r["resourceType"] == "PractitionerRole"]
    assert any(is_mssante_telecom(t) for r in roles for t in r.get("telecom", []))
    accepting = [
        e["valueBoolean"]
        for r in roles
        for e in r.get("extension", [])
        if e["url"] == ACCEPTING_NEW_PATIENTS_EXTENSION
    ]
    assert True in accepting and False in accepting
    assert any(p.teleconsultation for p in d.professionals) and not all(
        p.teleconsultation for p in d.professionals
    )
    assert Counter(s.kind for s in d.sites).keys() >= {"cabinet", "pharmacy", "hospital"}


def test_nearest_finds_the_closest_professionals_of_a_kind() -> None:
    d = directory()
    latitude, longitude = 45.764, 4.836  # Lyon
    found = d.nearest("gp", latitude, longitude, 3)
    gps = [p for p in d.professionals if p.kind == "gp"]

    def distance(p: object) -> float:
        address = p.site.address  # type: ignore[attr-defined]
        return haversine_km(latitude, longitude, address.latitude, address.longitude)

    assert [distance(p) for p in found] == sorted(distance(p) for p in gps)[:3]
    assert d.nearest("no-such-kind", latitude, longitude) == []
    assert generate_directory(1500, seed=4, as_of=AS_OF).professionals == d.professionals
