"""IdentityRecord <-> FHIR Patient after FR Core Patient INS, and the exchange form that hides the INS."""

from __future__ import annotations

import json
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from socle.fhir.validation import default_validator
from socle.identity import rules
from socle.identity.errors import InvalidInsNumber, NotAnIdentity
from socle.identity.fhir import (
    BIRTH_LIST_GIVEN_NAME_URL,
    BIRTH_PLACE_URL,
    COMMUNE_SYSTEM,
    COUNTRY_SYSTEM,
    INSEE_CODE_URL,
    RELIABILITY_URL,
    apply_record,
    patient_for_exchange,
    patient_to_record,
    record_to_patient,
)
from socle.identity.record import Attribute, IdentityRecord, InsKind, InsMatricule, Status
from socle.identity.traits import Sex
from tests.identity.factories import insi_found, jeanne, jeanne_ins, made_up_nir, provisional_jeanne

DAY = date(2024, 5, 17)
INS_SYSTEMS = {
    "urn:oid:1.2.250.1.213.1.4.8",
    "urn:oid:1.2.250.1.213.1.4.9",
    "urn:oid:1.2.250.1.213.1.4.10",
    "urn:oid:1.2.250.1.213.1.4.11",
}


def jeanne_in(status: Status) -> IdentityRecord:
    record = provisional_jeanne()
    if status in (Status.RECUP, Status.QUAL):
        record = rules.retrieve_from_insi(record, insi_found(), on=DAY)
    if status in (Status.VALI, Status.QUAL):
        record = rules.verify_with_document(record, "PA", on=DAY)
    assert record.status is status
    return record


def reliability(patient: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in patient["extension"] if e["url"] == RELIABILITY_URL]


def sub(extension: dict[str, Any], url: str) -> Any:
    return next((p for p in extension["extension"] if p["url"] == url), None)


def ins_identifiers(patient: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in patient.get("identifier", []) if i["system"] in INS_SYSTEMS]


@pytest.mark.parametrize("status", list(Status))
def test_the_patient_of_every_status_passes_the_structural_validator(status: Status) -> None:
    record = rules.add_attribute(jeanne_in(status), Attribute.HOMONYM)
    assert default_validator().validate(record_to_patient(record)) == []
    assert default_validator().validate(patient_for_exchange(record)) == []


@pytest.mark.parametrize("status", list(Status))
def test_a_record_survives_the_round_trip_through_a_patient(status: Status) -> None:
    record = rules.add_attribute(jeanne_in(status), Attribute.POTENTIAL_DUPLICATE)
    assert patient_to_record(record_to_patient(record)) == record


def test_the_ins_is_an_official_identifier_typed_ins_nir_under_the_nir_authority() -> None:
    patient = record_to_patient(jeanne_in(Status.QUAL))
    assert ins_identifiers(patient) == [
        {
            "use": "official",
            "type": {
                "coding": [
                    {"system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203", "code": "INS-NIR"}
                ]
            },
            "system": "urn:oid:1.2.250.1.213.1.4.8",
            "value": made_up_nir(),
        }
    ]


@pytest.mark.parametrize(
    ("kind", "oid"),
    [
        (InsKind.NIA, "1.2.250.1.213.1.4.9"),
        (InsKind.NIR_TEST, "1.2.250.1.213.1.4.10"),
        (InsKind.NIR_DEMO, "1.2.250.1.213.1.4.11"),
    ],
)
def test_nia_test_and_demo_matricules_have_their_own_authority(kind: InsKind, oid: str) -> None:
    ins = InsMatricule(kind, made_up_nir(sex="2"))
    record = rules.retrieve_from_insi(provisional_jeanne(), insi_found(ins=ins), on=DAY)
    [identifier] = ins_identifiers(record_to_patient(record))
    assert identifier["system"] == f"urn:oid:{oid}"
    assert identifier["type"]["coding"][0]["code"] == kind.value


def test_a_former_matricule_is_an_old_identifier() -> None:
    nia = InsMatricule(InsKind.NIA, made_up_nir(sex="8"))
    record = rules.retrieve_from_insi(provisional_jeanne(), insi_found(ins=nia), on=DAY)
    record = rules.retrieve_from_insi(record, insi_found(), on=DAY)
    uses = [(i["system"][-1], i["use"]) for i in ins_identifiers(record_to_patient(record))]
    assert uses == [("8", "official"), ("9", "old")]


def test_the_birth_first_names_list_is_one_space_separated_string_and_given_is_the_first() -> None:
    record = IdentityRecord(jeanne(birth_given_names=("Jeanne", "Anne-Sophie", "Louise")))
    [official] = [n for n in record_to_patient(record)["name"] if n["use"] == "official"]
    assert official["family"] == "MARTIN"
    assert official["given"] == ["JEANNE"]
    assert official["extension"] == [
        {"url": BIRTH_LIST_GIVEN_NAME_URL, "valueString": "JEANNE ANNE-SOPHIE LOUISE"}
    ]


def test_used_names_are_a_usual_name() -> None:
    record = IdentityRecord(jeanne(), used_name="Dupont", used_given_name="Jeannette")
    assert {"use": "usual", "family": "Dupont", "given": ["Jeannette"]} in record_to_patient(record)["name"]


def test_the_birthplace_extension_carries_the_insee_code() -> None:
    patient = record_to_patient(IdentityRecord(jeanne(birthplace_code="2A004")))
    [birthplace] = [e for e in patient["extension"] if e["url"] == BIRTH_PLACE_URL]
    assert birthplace["valueAddress"] == {
        "extension": [{"url": INSEE_CODE_URL, "valueCoding": {"system": COMMUNE_SYSTEM, "code": "2A004"}}],
        "city": "Ajaccio",
    }


def test_a_birth_abroad_is_coded_with_the_country_code() -> None:
    patient = record_to_patient(IdentityRecord(jeanne(birthplace_code="99352")))
    [birthplace] = [e for e in patient["extension"] if e["url"] == BIRTH_PLACE_URL]
    coding = birthplace["valueAddress"]["extension"][0]["valueCoding"]
    assert coding == {"system": COUNTRY_SYSTEM, "code": "99352"}


def test_the_status_extension_says_how_each_criterion_was_met() -> None:
    patient = record_to_patient(jeanne_in(Status.QUAL))
    [status] = reliability(patient)
    assert sub(status, "identityStatus")["valueCoding"]["code"] == "QUAL"
    assert sub(status, "methodCollection")["valueCoding"]["code"] == "INSI"
    assert sub(status, "dateCollection") == {"url": "dateCollection", "valueDate": "2024-05-17"}
    assert sub(status, "validationMode")["valueCoding"]["code"] == "PA"
    assert sub(status, "validationDate") == {"url": "validationDate", "valueDate": "2024-05-17"}


def test_a_provisional_identity_has_a_status_and_no_evidence() -> None:
    [status] = reliability(record_to_patient(provisional_jeanne()))
    assert [p["url"] for p in status["extension"]] == ["identityStatus"]


def test_each_attribute_is_one_more_reliability_extension() -> None:
    record = rules.add_attribute(
        rules.add_attribute(provisional_jeanne(), Attribute.DOUBTFUL), Attribute.HOMONYM
    )
    codes = [sub(e, "identityStatus")["valueCoding"]["code"] for e in reliability(record_to_patient(record))]
    assert codes == ["PROV", "DOUT", "HOMA"]


# -- exchange -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.RECUP, Status.VALI])
def test_only_a_qualified_identity_shows_its_ins_to_other_systems(status: Status) -> None:
    assert ins_identifiers(patient_for_exchange(jeanne_in(status))) == []


def test_a_provisional_identity_holding_an_ins_does_not_show_it() -> None:
    # e.g. a retrieved identity whose birth name was edited since: the INS is kept, unverified.
    record = IdentityRecord(jeanne(), ins=jeanne_ins())
    assert ins_identifiers(record_to_patient(record)) != []
    assert ins_identifiers(patient_for_exchange(record)) == []


def test_a_qualified_identity_is_exchanged_with_its_ins_and_its_five_traits() -> None:
    patient = patient_for_exchange(jeanne_in(Status.QUAL))
    assert [i["value"] for i in ins_identifiers(patient)] == [made_up_nir()]
    assert patient["gender"] == "female"
    assert patient["birthDate"] == "1985-01-15"


def test_editing_a_strict_trait_of_a_qualified_identity_hides_its_ins_again() -> None:
    record = rules.edit_strict_trait(jeanne_in(Status.QUAL), "birth_name", "Durand")
    assert record.status is Status.VALI
    assert record.ins is not None  # still stored...
    assert ins_identifiers(patient_for_exchange(record)) == []  # ...but no longer shown


def test_the_exchange_form_keeps_other_identifiers() -> None:
    record = jeanne_in(Status.RECUP)
    ipp = {"system": "urn:oid:1.2.250.1.999.1", "value": "IPP-0042"}
    stored = apply_record({"resourceType": "Patient", "identifier": [ipp]}, record)
    assert patient_to_record(stored) == record
    exchanged = apply_record(stored, record)
    assert ipp in exchanged["identifier"]


# -- reading Patients -----------------------------------------------------------------------------


def test_applying_a_record_keeps_what_is_not_identity() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "telecom": [{"system": "phone", "value": "01 00 00 00 00"}],
        "address": [{"city": "Orléans"}],
        "extension": [{"url": "http://example.org/other", "valueBoolean": True}],
        "name": [{"use": "nickname", "text": "Jeannot"}],
    }
    out = apply_record(patient, jeanne_in(Status.VALI))
    assert out["telecom"] == patient["telecom"]
    assert out["address"] == patient["address"]
    assert {"url": "http://example.org/other", "valueBoolean": True} in out["extension"]
    assert {"use": "nickname", "text": "Jeannot"} in out["name"]
    assert out["id"] == "p1"
    assert "telecom" in patient and patient["extension"] == [
        {"url": "http://example.org/other", "valueBoolean": True}
    ]


def test_a_patient_written_without_identity_extensions_reads_as_provisional() -> None:
    patient = {
        "resourceType": "Patient",
        "name": [{"use": "official", "family": "Martin", "given": ["Jeanne", "Louise"]}],
        "gender": "female",
        "birthDate": "1985-01-15",
    }
    record = patient_to_record(patient)
    assert record.status is Status.PROV
    assert record.traits == jeanne(birthplace_code="99999")


@pytest.mark.parametrize(
    ("patient", "message"),
    [
        (
            {"resourceType": "Patient", "id": "x", "name": [{"family": "Martin"}]},
            "Patient/x : pas de nom de naissance (name avec use = official)",
        ),
        (
            {
                "resourceType": "Patient",
                "id": "x",
                "name": [{"use": "official", "family": "Martin", "given": ["A"]}],
                "gender": "other",
                "birthDate": "1985",
            },
            "Patient/x : sexe 'other' absent ou non pris en charge (male, female, unknown)",
        ),
    ],
)
def test_a_patient_without_strict_traits_is_not_an_identity(patient: dict[str, Any], message: str) -> None:
    with pytest.raises(NotAnIdentity) as caught:
        patient_to_record(patient)
    assert caught.value.message == message


def test_the_fr_core_example_patient_reads_as_an_identity(shared_data: Path) -> None:
    with zipfile.ZipFile(shared_data / "fr-core-2.2.0" / "examples.json.zip") as examples:
        patient = json.loads(examples.read("Patient-FRCorePatientExample.json"))
    # Its INS-NIR is a placeholder (123456789012244: month 45, key 12 expected): refused as such.
    with pytest.raises(InvalidInsNumber) as caught:
        patient_to_record(patient)
    assert caught.value.message == "mois de naissance invalide : 45"
    del patient["identifier"]
    record = patient_to_record(patient)
    assert record.traits.birth_name == "DURAND"
    assert record.traits.birth_given_names == ("PIERRE", "YVES")
    assert record.traits.birthplace_code == "01006"
    assert record.traits.sex is Sex.MALE
    assert record.status is Status.VALI
