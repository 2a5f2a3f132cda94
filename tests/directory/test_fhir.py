"""Directory records as FHIR: every resource passes the R4 validator and has the ANS shapes."""

from __future__ import annotations

from typing import Any

import pytest

from socle.directory import fhir
from socle.directory.extractions import parse_finess_establishment, split_finess_line
from socle.directory.geodesy import LatLon
from socle.directory.identifiers import FINESS_SYSTEM, ID_NAT_PS_SYSTEM, ID_NAT_ST_SYSTEM, RPPS_SYSTEM
from socle.directory.rules import is_mssante_address
from socle.fhir.validation import default_validator

FLEYRIAT = (
    "structureet;010000024;010780054;CH DE FLEYRIAT;CENTRE HOSPITALIER DE BOURG-EN-BRESSE FLEYRIAT;;;900;"
    "RTE;DE PARIS;;;451;01;AIN;01440 VIRIAT;0474454647;0474454114;355;Centre Hospitalier (C.H.);1102;"
    "Centres Hospitaliers;26010004500012;8610Z;03;ARS établissements Publics de santé dotation globale;1;"
    "Etablissement public de santé;1979-02-13;1979-02-13;2020-02-04;"
)


def assert_valid(resource: dict[str, Any]) -> None:
    issues = [i for i in default_validator().validate(resource) if i.severity in ("error", "fatal")]
    assert issues == []


def doctor() -> dict[str, Any]:
    return fhir.practitioner(
        "10001045367",
        family="LEFÈVRE",
        given="Élise",
        title="Dr",
        professions=[fhir.Profession("10", "C")],
        specialties=[fhir.Specialty("SM54")],
    )


def test_a_practitioner_carries_its_id_nat_ps_and_rpps_identifiers() -> None:
    resource = doctor()
    assert_valid(resource)
    assert resource["id"] == "rpps-10001045367"
    assert [(i["system"], i["value"], i["type"]["coding"][0]["code"]) for i in resource["identifier"]] == [
        (ID_NAT_PS_SYSTEM, "810001045367", "IDNPS"),
        (RPPS_SYSTEM, "10001045367", "RPPS"),
    ]


def test_a_doctor_is_named_with_the_dr_prefix_and_qualified_by_profession_and_specialty() -> None:
    resource = doctor()
    assert resource["name"] == [{"use": "usual", "family": "LEFÈVRE", "given": ["Élise"], "prefix": ["Dr"]}]
    profession, specialty = resource["qualification"]
    assert [c["code"] for c in profession["code"]["coding"]] == ["10", "10", "C"]
    assert "urn:oid:1.2.250.1.71.1.2.7" in [c["system"] for c in profession["code"]["coding"]]
    assert specialty["code"]["coding"][1]["code"] == "SM54"
    assert specialty["code"]["coding"][1]["display"] == "Médecine générale"


def test_a_nurse_has_no_title_prefix() -> None:
    nurse = fhir.practitioner(
        "10006122583",
        family="GARÇON",
        given="Maïwenn",
        title=None,
        professions=[fhir.Profession("60")],
        specialties=[],
    )
    assert_valid(nurse)
    assert "prefix" not in nurse["name"][0]


def test_a_practitioner_role_links_practitioner_organization_location_profession_and_specialty() -> None:
    role = fhir.practitioner_role(
        fhir.Activity(
            role_id="rpps-10001045367-0123456789",
            rpps="10001045367",
            profession_code="10",
            organization_id="finess-010000024",
            location_id="finess-010000024",
            mode_code="S",
            mode_label="Salarié",
            role_code="FON-AU",
            kind_code="GENR01",
            specialties=(fhir.Specialty("SM54"),),
        )
    )
    assert_valid(role)
    assert role["practitioner"] == {"reference": "Practitioner/rpps-10001045367"}
    assert role["organization"] == {"reference": "Organization/finess-010000024"}
    assert role["location"] == [{"reference": "Location/finess-010000024"}]
    assert role["code"][0]["coding"][0]["code"] == "10"
    assert [c["coding"][0]["code"] for c in role["code"][1:]] == ["S", "FON-AU", "GENR01"]
    assert role["specialty"][0]["coding"][0]["code"] == "SM54"


def test_availability_flags_are_extensions_kept_apart_from_other_extensions() -> None:
    flags = fhir.availability_extensions(accepting_new_patients=True, teleconsultation=False)
    role = fhir.practitioner_role(fhir.Activity("rpps-1-x", "10001045367", "10"), availability=flags)
    assert_valid(role)
    assert fhir.availability_of(role) == flags
    other = {"url": "http://example.org/other", "valueString": "x"}
    cleared = fhir.with_availability({**role, "extension": [*flags, other]}, [])
    assert cleared["extension"] == [other]
    assert "extension" not in fhir.with_availability(role, [])


def test_an_mssante_mailbox_is_an_email_telecom_of_type_mssante_with_its_mailbox_type() -> None:
    telecom = fhir.mssante_telecom("elise.lefevre@medecin.mssante.fr", "PER")
    assert telecom["system"] == "email"
    email_type, metadata = telecom["extension"]
    assert email_type["valueCoding"]["code"] == "MSSANTE"
    assert metadata["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "PER"
    assert fhir.is_mssante_telecom(telecom)
    assert_valid({"resourceType": "Practitioner", "telecom": [telecom]})
    with pytest.raises(ValueError, match="PER, ORG or APP"):
        fhir.mssante_telecom("x@medecin.mssante.fr", "XYZ")


@pytest.mark.parametrize(
    ("email", "mssante"),
    [
        ("a@medecin.mssante.fr", True),
        ("a@ch-lyon.mssante.fr", True),
        ("a@mssante.fr", True),
        ("a@notmssante.fr", False),
        ("a@mssante.fr.example.com", False),
        ("a@orange.fr", False),
    ],
)
def test_only_addresses_under_mssante_fr_are_mssante_mailboxes(email: str, mssante: bool) -> None:
    assert is_mssante_address(email) is mssante
    assert fhir.is_mssante_telecom(fhir.email_telecom(email, "ORG")) is mssante


def test_a_finess_establishment_becomes_an_organization_with_finess_and_id_nat_st() -> None:
    establishment = parse_finess_establishment(split_finess_line(FLEYRIAT), 2)
    organization = fhir.organization_from_finess(establishment)
    assert_valid(organization)
    assert organization["id"] == "finess-010000024"
    systems = {i["system"]: i["value"] for i in organization["identifier"]}
    assert systems[FINESS_SYSTEM] == "010000024"
    assert systems[ID_NAT_ST_SYSTEM] == "1010000024"
    assert organization["name"] == "CENTRE HOSPITALIER DE BOURG-EN-BRESSE FLEYRIAT"
    assert organization["alias"] == ["CH DE FLEYRIAT"]
    assert organization["type"][1]["coding"][0]["code"] == "355"
    assert organization["partOf"]["identifier"]["value"] == "010780054"
    (place,) = organization["address"]
    assert place["postalCode"] == "01440"
    assert place["city"] == "VIRIAT"
    assert place["extension"][0]["valueCoding"]["code"] == "01451"
    assert place["line"] == ["900 RTE DE PARIS"]


def test_a_finess_location_carries_the_position_and_points_to_its_organization() -> None:
    establishment = parse_finess_establishment(split_finess_line(FLEYRIAT), 2)
    location = fhir.location_from_finess(establishment, LatLon(46.2227447911, 5.2085961326))
    assert_valid(location)
    assert location["position"] == {"longitude": 5.2085961, "latitude": 46.2227448}
    assert location["managingOrganization"] == {"reference": "Organization/finess-010000024"}
    assert "position" not in fhir.location_from_finess(establishment, None)


def test_a_healthcare_service_can_say_it_offers_teleconsultation() -> None:
    service = fhir.healthcare_service(
        "svc-1",
        organization_id="finess-010000024",
        name="Consultations de cardiologie",
        location_ids=["finess-010000024"],
        specialties=[fhir.Specialty("SM04")],
        teleconsultation=True,
    )
    assert_valid(service)
    assert service["characteristic"] == [{"text": "téléconsultation"}]


def test_french_dates_of_older_extractions_become_fhir_dates() -> None:
    assert fhir.fhir_date("13/02/1979") == "1979-02-13"
    assert fhir.fhir_date("1979-02-13") == "1979-02-13"
    assert fhir.fhir_date("") is None
