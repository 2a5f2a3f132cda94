"""Search over HTTP: every parameter type, modifiers, chains, includes, sort, paging, on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from socle.search import engine as search_engine
from tests.factories import IPP_SYSTEM, observation, patient


def create(client: TestClient, resource: dict[str, Any]) -> str:
    response = client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def ids(client: TestClient, query: str) -> list[str]:
    response = client.get(f"/fhir/{query}")
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["type"] == "searchset"
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


@pytest.fixture
def people(client: TestClient) -> dict[str, str]:
    return {
        "eloise": create(client, patient("Lefèvre", "Éloïse", ipp="2850275123456", birth_date="1985-02-10")),
        "jean": create(
            client, patient("Martin", "Jean", ipp="1700175123457", birth_date="1970-01-01", gender="male")
        ),
        "marie": create(client, patient("Martinez", "Marie", birth_date="2001-07", gender="female")),
    }


def test_string_default_is_starts_with_accent_and_case_insensitive(
    client: TestClient, people: dict[str, str]
) -> None:
    assert sorted(ids(client, "Patient?family=martin")) == sorted([people["jean"], people["marie"]])
    assert ids(client, "Patient?family=lefevre") == [people["eloise"]]
    assert ids(client, "Patient?given=ELOISE") == [people["eloise"]]
    assert ids(client, "Patient?name=eloi") == [people["eloise"]]


def test_string_exact_and_contains(client: TestClient, people: dict[str, str]) -> None:
    assert ids(client, "Patient?family:exact=Martin") == [people["jean"]]
    assert ids(client, "Patient?family:exact=martin") == []
    assert ids(client, "Patient?family:contains=tine") == [people["marie"]]


def test_or_values_and_repeated_params(client: TestClient, people: dict[str, str]) -> None:
    assert sorted(ids(client, "Patient?family=lefevre,martinez")) == sorted(
        [people["eloise"], people["marie"]]
    )
    assert ids(client, "Patient?family=martin&gender=female") == [people["marie"]]


def test_token_forms(client: TestClient, people: dict[str, str]) -> None:
    system = IPP_SYSTEM
    assert ids(client, f"Patient?identifier={system}|2850275123456") == [people["eloise"]]
    assert ids(client, "Patient?identifier=2850275123456") == [people["eloise"]]
    assert ids(client, "Patient?identifier=other|2850275123456") == []
    assert sorted(ids(client, f"Patient?identifier={system}|")) == sorted([people["eloise"], people["jean"]])
    assert ids(client, "Patient?gender:not=male") == [people["eloise"], people["marie"]]


def test_token_without_system(client: TestClient, people: dict[str, str]) -> None:
    # gender has a required binding to one code system: its codes are indexed with that system
    assert ids(client, "Patient?gender=http://hl7.org/fhir/administrative-gender|female") == [people["marie"]]
    assert ids(client, "Patient?gender=female") == [people["marie"]]
    assert ids(client, "Patient?gender=|female") == []


def test_missing_modifier(client: TestClient, people: dict[str, str]) -> None:
    assert ids(client, "Patient?gender:missing=true") == [people["eloise"]]
    assert sorted(ids(client, "Patient?gender:missing=false")) == sorted([people["jean"], people["marie"]])


def test_id_and_last_updated(client: TestClient, people: dict[str, str]) -> None:
    assert ids(client, f"Patient?_id={people['jean']}") == [people["jean"]]
    assert len(ids(client, "Patient?_lastUpdated=gt2000-01-01")) == 3
    assert ids(client, "Patient?_lastUpdated=lt2000-01-01") == []


def test_date_prefixes_and_partial_dates(client: TestClient, people: dict[str, str]) -> None:
    assert ids(client, "Patient?birthdate=1985-02-10") == [people["eloise"]]
    assert ids(client, "Patient?birthdate=1985") == [people["eloise"]]
    assert ids(client, "Patient?birthdate=2001-07-15") == []  # stored month is wider than the day
    assert ids(client, "Patient?birthdate=2001-07") == [people["marie"]]
    assert sorted(ids(client, "Patient?birthdate=ge1985-01-01")) == sorted(
        [people["eloise"], people["marie"]]
    )
    assert ids(client, "Patient?birthdate=lt1971") == [people["jean"]]
    assert ids(client, "Patient?birthdate=gt1970-01-01&birthdate=lt2000") == [people["eloise"]]
    assert sorted(ids(client, "Patient?birthdate=ne1985-02-10")) == sorted([people["jean"], people["marie"]])
    assert ids(client, "Patient?birthdate=sa2000") == [people["marie"]]
    assert ids(client, "Patient?birthdate=eb1971") == [people["jean"]]


def test_date_with_timezone(client: TestClient) -> None:
    pid = create(client, patient())
    oid = create(client, observation(f"Patient/{pid}", when="2024-05-17T23:30:00-02:00"))
    # 23:30 at UTC-2 is 01:30 UTC on the 18th.
    assert ids(client, "Observation?date=ge2024-05-18T01:00:00Z") == [oid]
    assert ids(client, "Observation?date=lt2024-05-18T01:00:00Z") == []


def test_invalid_date_is_400(client: TestClient) -> None:
    response = client.get("/fhir/Patient?birthdate=2020-13")
    assert response.status_code == 400
    assert "2020-13" in response.json()["issue"][0]["diagnostics"]


def test_quantity_and_number(client: TestClient) -> None:
    pid = create(client, patient())
    heavy = create(client, observation(f"Patient/{pid}", value=95.0))
    light = create(client, observation(f"Patient/{pid}", value=60.5))
    assert ids(client, "Observation?value-quantity=gt90") == [heavy]
    assert ids(client, "Observation?value-quantity=le60.5") == [light]
    assert ids(client, "Observation?value-quantity=95|http://unitsofmeasure.org|kg") == [heavy]
    assert ids(client, "Observation?value-quantity=95|http://unitsofmeasure.org|g") == []
    assert ids(client, "Observation?value-quantity=60.5||kg") == [light]
    assert ids(client, "Observation?value-quantity=ap100") == [heavy]


def test_composite_code_value_quantity(client: TestClient) -> None:
    pid = create(client, patient())
    weight = create(client, observation(f"Patient/{pid}", code="29463-7", value=95.0))
    create(client, observation(f"Patient/{pid}", code="8302-2", value=180.0))
    assert ids(client, "Observation?code-value-quantity=http://loinc.org|29463-7$gt90") == [weight]
    assert ids(client, "Observation?code-value-quantity=29463-7$gt100") == []
    assert ids(client, "Observation?code-value-quantity=8302-2$lt90") == []


def test_reference_forms(client: TestClient) -> None:
    pid = create(client, patient())
    other = create(client, patient("Autre"))
    oid = create(client, observation(f"Patient/{pid}"))
    create(client, observation(f"Patient/{other}"))
    assert ids(client, f"Observation?subject=Patient/{pid}") == [oid]
    assert ids(client, f"Observation?subject={pid}") == [oid]
    assert ids(client, f"Observation?subject:Patient={pid}") == [oid]
    assert ids(client, f"Observation?patient={pid}") == [oid]
    assert ids(client, f"Observation?subject=http://testserver/fhir/Patient/{pid}") == [oid]


def test_chained_and_reverse_chained(client: TestClient) -> None:
    pid = create(client, patient("Lefèvre"))
    other = create(client, patient("Martin"))
    oid = create(client, observation(f"Patient/{pid}", code="8302-2"))
    create(client, observation(f"Patient/{other}", code="29463-7"))
    assert ids(client, "Observation?subject:Patient.name=lefevre") == [oid]
    assert ids(client, "Observation?patient.family=lefevre") == [oid]
    assert ids(client, "Patient?_has:Observation:patient:code=8302-2") == [pid]
    assert ids(client, "Patient?_has:Observation:subject:code=http://loinc.org|29463-7") == [other]


def test_criteria_by_id_never_admit_another_type_sharing_the_id(client: TestClient) -> None:
    # Planning drops `res_type = T` where a criterion already pins the type (index rows filed
    # under T); ids are only unique within a type, so criteria by id must keep it.
    assert client.put("/fhir/Patient/shared", json=patient("Partage") | {"id": "shared"}).status_code == 201
    group = {"resourceType": "Group", "id": "shared", "type": "person", "actual": True}
    assert client.put("/fhir/Group/shared", json=group).status_code == 201
    create(client, observation("Patient/shared", code="8302-2"))
    create(client, observation("Group/shared", code="8302-2"))
    assert ids(client, "Patient?_has:Observation:subject:code=8302-2") == ["shared"]
    assert ids(client, "Group?_has:Observation:subject:code=8302-2") == ["shared"]
    assert ids(client, "Patient?_id=shared") == ["shared"]
    assert ids(client, "Patient?_has:Observation:subject:code=8302-2&_id=shared&family=partage") == ["shared"]
    assert len(ids(client, "Observation?subject:Patient._id=shared")) == 1
    assert len(ids(client, "Observation?subject._id=shared")) == 2


@pytest.mark.parametrize("checked_row_by_row", [False, True], ids=["as-set", "row-by-row"])
def test_chains_and_has_find_the_same_pages_in_either_sql_form(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, checked_row_by_row: bool
) -> None:
    # A chain or _has with many inner keys is checked resource by resource while walking keys in
    # order; the results, their order and the paging must not depend on which form ran.
    monkeypatch.setattr(search_engine, "ROW_CHECK_ABOVE", 0 if checked_row_by_row else 10_000)
    martins = [create(client, patient("Martin", given)) for given in ("Jean", "Paul", "Luc")]
    others = [create(client, patient("Petit", given)) for given in ("Anne", "Zoé")]
    expected = []
    for index, pid in enumerate(martins + others):
        for code in ("8302-2", "29463-7"):
            oid = create(client, observation(f"Patient/{pid}", code=code))
            if pid in martins:
                expected.append(oid)
        if index % 2 == 0:
            create(
                client,
                {
                    "resourceType": "Condition",
                    "subject": {"reference": f"Patient/{pid}"},
                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
                },
            )
    gone = create(client, patient("Martinez", "Supprimé"))
    create(client, observation(f"Patient/{gone}", code="8302-2"))
    assert client.delete(f"/fhir/Patient/{gone}").status_code == 204

    assert ids(client, "Observation?subject:Patient.family:exact=Martin&_count=100") == expected
    pages, url = [], "/fhir/Observation?subject:Patient.family=martin&_count=4"
    while url:
        bundle = client.get(url.removeprefix("http://testserver")).json()
        pages += [e["resource"]["id"] for e in bundle.get("entry", [])]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), "")
    assert pages == expected
    assert ids(client, "Observation?subject:Patient.family=martin&code=8302-2") == expected[::2]
    with_condition = [pid for index, pid in enumerate(martins + others) if index % 2 == 0]
    assert (
        ids(client, "Patient?_has:Condition:subject:code=http://snomed.info/sct|44054006") == with_condition
    )
    assert ids(client, "Patient?_has:Condition:subject:code=44054006&family=petit") == [others[1]]
    assert ids(client, "Patient?_has:Observation:subject:code=8302-2&_count=2")[:2] == martins[:2]


def test_include_and_revinclude(client: TestClient) -> None:
    pid = create(client, patient())
    oid = create(client, observation(f"Patient/{pid}"))
    bundle = client.get("/fhir/Observation?_include=Observation:subject").json()
    modes = {(e["resource"]["resourceType"], e["search"]["mode"]) for e in bundle["entry"]}
    assert modes == {("Observation", "match"), ("Patient", "include")}
    bundle = client.get(f"/fhir/Patient?_id={pid}&_revinclude=Observation:subject").json()
    assert [e["resource"]["id"] for e in bundle["entry"]] == [pid, oid]


def test_include_iterate(client: TestClient) -> None:
    org = create(client, {"resourceType": "Organization", "name": "CHU"})
    pid = create(client, {**patient(), "managingOrganization": {"reference": f"Organization/{org}"}})
    create(client, observation(f"Patient/{pid}"))
    query = "Observation?_include=Observation:subject&_include:iterate=Patient:organization"
    bundle = client.get(f"/fhir/{query}").json()
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {
        "Observation",
        "Patient",
        "Organization",
    }


def test_sort_multiple_keys_and_descending(client: TestClient, people: dict[str, str]) -> None:
    assert ids(client, "Patient?_sort=birthdate") == [people["jean"], people["eloise"], people["marie"]]
    assert ids(client, "Patient?_sort=-birthdate") == [people["marie"], people["eloise"], people["jean"]]
    assert ids(client, "Patient?_sort=family,-birthdate") == [
        people["eloise"],
        people["jean"],
        people["marie"],
    ]


def test_unknown_sort_is_400(client: TestClient) -> None:
    assert client.get("/fhir/Patient?_sort=colour").status_code == 400


def test_paging_with_next_and_previous_links(client: TestClient) -> None:
    created = [create(client, patient(f"P{i:02d}")) for i in range(7)]
    seen: list[str] = []
    url: str | None = "/fhir/Patient?_count=3"
    pages = 0
    while url:
        bundle = client.get(url).json()
        seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        url = links.get("next", "").replace("http://testserver", "") or None
        pages += 1
        if pages == 2:
            # a resource created while paging does not shift the pages already planned
            create(client, patient("Late"))
            previous = client.get(links["previous"].replace("http://testserver", "")).json()
            assert [e["resource"]["id"] for e in previous["entry"]] == created[:3]
    assert seen[:7] == created
    assert pages == 3


def test_sorted_paging_is_stable_while_data_changes(client: TestClient) -> None:
    for i in range(5):
        create(client, patient(f"S{i}"))
    first = client.get("/fhir/Patient?_sort=family&_count=2").json()
    create(client, patient("A-first"))  # would sort before everything
    nxt = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = client.get(nxt.replace("http://testserver", "")).json()
    assert [e["resource"]["name"][0]["family"] for e in second["entry"]] == ["S2", "S3"]


def test_total_and_summary_count(client: TestClient, people: dict[str, str]) -> None:
    assert client.get("/fhir/Patient?_summary=count").json()["total"] == 3
    assert client.get("/fhir/Patient?_count=1&_total=accurate").json()["total"] == 3
    bundle = client.get("/fhir/Patient?_count=0").json()
    assert bundle["total"] == 3 and "entry" not in bundle


def test_elements_and_summary_mark_subsetted(client: TestClient, people: dict[str, str]) -> None:
    entry = client.get(f"/fhir/Patient?_id={people['jean']}&_elements=gender").json()["entry"][0]["resource"]
    assert set(entry) == {"resourceType", "id", "meta", "gender"}
    assert entry["meta"]["tag"][-1]["code"] == "SUBSETTED"
    summary = client.get(f"/fhir/Patient/{people['jean']}?_summary=true").json()
    assert "name" in summary and "SUBSETTED" in str(summary["meta"])


def test_unknown_parameter_is_ignored_with_a_warning(client: TestClient, people: dict[str, str]) -> None:
    bundle = client.get("/fhir/Patient?colour=blue").json()
    assert len([e for e in bundle["entry"] if e["search"]["mode"] == "match"]) == 3
    outcome = next(e for e in bundle["entry"] if e["search"]["mode"] == "outcome")["resource"]
    assert "colour" in outcome["issue"][0]["diagnostics"]


def test_unknown_parameter_is_rejected_under_strict_handling(client: TestClient) -> None:
    response = client.get("/fhir/Patient?colour=blue", headers={"Prefer": "handling=strict"})
    assert response.status_code == 400
    assert "colour" in response.json()["issue"][0]["diagnostics"]


def test_post_search(client: TestClient, people: dict[str, str]) -> None:
    response = client.post(
        "/fhir/Patient/_search",
        content=b"family=lefevre",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert [e["resource"]["id"] for e in response.json()["entry"]] == [people["eloise"]]


def test_deleted_resources_are_not_found_by_search(client: TestClient, people: dict[str, str]) -> None:
    client.delete(f"/fhir/Patient/{people['jean']}")
    assert ids(client, "Patient?family=martin") == [people["marie"]]


def test_updated_resource_is_reindexed(client: TestClient, people: dict[str, str]) -> None:
    current = client.get(f"/fhir/Patient/{people['jean']}").json()
    current["name"][0]["family"] = "Bernard"
    client.put(f"/fhir/Patient/{people['jean']}", json=current)
    assert ids(client, "Patient?family=bernard") == [people["jean"]]
    assert ids(client, "Patient?family:exact=Martin") == []


def test_tag_and_profile(client: TestClient) -> None:
    tagged = create(
        client,
        {
            **patient(),
            "meta": {
                "tag": [{"system": "http://example.org/tags", "code": "demo"}],
                "profile": ["http://interopsante.org/fhir/StructureDefinition/FrPatient"],
            },
        },
    )
    create(client, patient())
    assert ids(client, "Patient?_tag=http://example.org/tags|demo") == [tagged]
    assert ids(client, "Patient?_profile=http://interopsante.org/fhir/StructureDefinition/FrPatient") == [
        tagged
    ]


def test_uri_below_and_above(client: TestClient) -> None:
    vs = create(
        client, {"resourceType": "ValueSet", "status": "active", "url": "http://example.org/fhir/ValueSet/a"}
    )
    assert ids(client, "ValueSet?url=http://example.org/fhir/ValueSet/a") == [vs]
    assert ids(client, "ValueSet?url:below=http://example.org/fhir") == [vs]
    assert ids(client, "ValueSet?url:above=http://example.org/fhir/ValueSet/a/sub") == [vs]
    assert ids(client, "ValueSet?url:below=http://other.org") == []


def test_identifier_of_type(client: TestClient) -> None:
    typed = {
        **patient(),
        "identifier": [
            {
                "type": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]
                },
                "system": "http://hopital.example/ipp",
                "value": "IPP42",
            }
        ],
    }
    pid = create(client, typed)
    assert ids(
        client, "Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|IPP42"
    ) == [pid]
    assert ids(client, "Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|X") == []


def test_token_text_modifier(client: TestClient) -> None:
    pid = create(client, patient())
    obs = observation(f"Patient/{pid}")
    obs["code"]["text"] = "Poids corporel mesuré"
    oid = create(client, obs)
    create(client, observation(f"Patient/{pid}", code="8302-2"))
    assert ids(client, "Observation?code:text=poids") == [oid]
    assert ids(client, "Observation?code:text=POIDS%20CORPOREL%20MESURE") == [oid]
    assert ids(client, "Observation?code:text=taille") == []


def test_reference_identifier_modifier(client: TestClient) -> None:
    obs = observation("Patient/x")
    obs["subject"] = {"identifier": {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "1800175123456"}}
    oid = create(client, obs)
    assert ids(client, "Observation?subject:identifier=urn:oid:1.2.250.1.213.1.4.8|1800175123456") == [oid]
    assert ids(client, "Observation?subject:identifier=1800175123456") == [oid]
    assert ids(client, "Observation?subject:identifier=urn:oid:1.2.250.1.213.1.4.8|0") == []


def test_number_parameter_with_implicit_precision(client: TestClient) -> None:
    def assessment(probability: float) -> dict[str, Any]:
        return {
            "resourceType": "RiskAssessment",
            "status": "final",
            "subject": {"reference": "Patient/p"},
            "prediction": [{"probabilityDecimal": probability}],
        }

    low = create(client, assessment(0.2))
    high = create(client, assessment(0.81))
    assert ids(client, "RiskAssessment?probability=0.2") == [low]
    assert ids(client, "RiskAssessment?probability=gt0.5") == [high]
    assert ids(client, "RiskAssessment?probability=le0.2") == [low]
    assert ids(client, "RiskAssessment?probability=0.8") == [high]  # 0.81 lies in [0.75, 0.85)
    assert ids(client, "RiskAssessment?probability=0.80") == []  # two decimals: [0.795, 0.805)
    assert client.get("/fhir/RiskAssessment?probability=abc").status_code == 400


def test_security_label(client: TestClient) -> None:
    labelled = create(
        client,
        {
            **patient(),
            "meta": {
                "security": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
                ]
            },
        },
    )
    create(client, patient())
    assert ids(client, "Patient?_security=http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R") == [
        labelled
    ]


def test_summary_data_drops_the_narrative_and_text_keeps_it(client: TestClient) -> None:
    narrative = {
        "status": "generated",
        "div": '<div xmlns="http://www.w3.org/1999/xhtml">Jeanne Martin</div>',
    }
    pid = create(client, {**patient(), "text": narrative})
    data = client.get(f"/fhir/Patient?_id={pid}&_summary=data").json()["entry"][0]["resource"]
    assert "text" not in data and "name" in data
    text_only = client.get(f"/fhir/Patient?_id={pid}&_summary=text").json()["entry"][0]["resource"]
    assert "text" in text_only and "name" not in text_only


def test_include_with_target_type_and_revinclude_iterate(client: TestClient) -> None:
    pid = create(client, patient())
    encounter = create(
        client,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{pid}"},
        },
    )
    obs = observation(f"Patient/{pid}")
    obs["encounter"] = {"reference": f"Encounter/{encounter}"}
    oid = create(client, obs)
    bundle = client.get(f"/fhir/Observation?_id={oid}&_include=Observation:subject:Group").json()
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["Observation"]
    query = f"Patient?_id={pid}&_revinclude=Encounter:subject&_revinclude:iterate=Observation:encounter"
    bundle = client.get(f"/fhir/{query}").json()
    found = {e["resource"]["resourceType"]: e["search"]["mode"] for e in bundle["entry"]}
    assert found == {"Patient": "match", "Encounter": "include", "Observation": "include"}


def test_invalid_include_is_400(client: TestClient) -> None:
    response = client.get("/fhir/Observation?_include=Observation:status")
    assert response.status_code == 400
    assert "not a reference parameter" in response.json()["issue"][0]["diagnostics"]


def test_bad_modifier_and_bad_count_are_400(client: TestClient) -> None:
    assert client.get("/fhir/Patient?birthdate:exact=2000").status_code == 400
    assert client.get("/fhir/Patient?_count=-1").status_code == 400
    assert client.get("/fhir/Patient?_summary=maybe").status_code == 400
    assert client.get("/fhir/Observation?code-value-quantity=only-one-part").status_code == 400


def test_has_with_unknown_parameter_is_400(client: TestClient) -> None:
    response = client.get("/fhir/Patient?_has:Observation:patient:colour=x")
    assert response.status_code == 400
