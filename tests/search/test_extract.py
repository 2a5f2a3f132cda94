"""Rules of the indexing pipeline (socle.search.extract) and the parameter registry it reads."""

from __future__ import annotations

import tarfile
from datetime import UTC, datetime, timedelta
from itertools import product
from pathlib import Path
from typing import Any

import orjson
import pytest

from socle.search.extract import Indexer, default_indexer, extract_index_rows
from socle.search.parameters import default_registry
from socle.search.rows import (
    DATE_MAX,
    DATE_MIN,
    CompositeRow,
    DateRow,
    IndexRow,
    NumberRow,
    QuantityRow,
    ReferenceRow,
    StringRow,
    TokenRow,
    UriRow,
)
from socle.synthetic import patient_bundles

EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hl7.fhir.r4.examples-4.0.1.tgz"


def us(
    year: int, month: int = 1, day: int = 1, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> int:
    """Epoch microseconds of a UTC wall-clock time."""
    moment = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def rows_of(resource: dict[str, Any], param: str) -> list[IndexRow]:
    return [row for row in extract_index_rows(resource) if row.param == param]


@pytest.fixture(scope="module")
def examples() -> dict[str, dict[str, Any]]:
    """The official R4 examples by file name (`Patient-example`)."""
    if not EXAMPLES.exists():
        pytest.skip(f"{EXAMPLES} is not available")
    loaded: dict[str, dict[str, Any]] = {}
    with tarfile.open(EXAMPLES) as archive:
        for member in archive:
            if member.isfile() and member.name.startswith("package/") and member.name.endswith(".json"):
                extracted = archive.extractfile(member)
                assert extracted is not None
                resource = orjson.loads(extracted.read())
                if isinstance(resource, dict) and "resourceType" in resource:
                    loaded[Path(member.name).stem] = resource
    return loaded


# --- over the official examples ----------------------------------------------------------------


def test_every_official_example_is_indexed_without_error_and_without_duplicates(
    examples: dict[str, dict[str, Any]],
) -> None:
    assert len(examples) > 5000
    indexed = 0
    for resource in examples.values():
        rows = extract_index_rows(resource)
        assert len(rows) == len(set(rows))
        indexed += bool(rows)
    assert indexed > 0.95 * len(examples)


def _rows_of_every_plan(indexer: Indexer, resource: dict[str, Any]) -> list[IndexRow]:
    """The generic path, without the indexer's shortcuts: every plan of the type evaluated, every
    composite component evaluated on its own, in order (what `Indexer.rows` did before its memos)."""
    resource_type = resource["resourceType"]
    out: list[IndexRow] = []
    for plan in indexer.plans(resource_type):
        items = plan.path.evaluate_items(resource, resource_type, resource)
        start = len(out)
        if plan.handlers is None:
            for element, element_type in items:
                values = [c.values(element, element_type, resource) for c in plan.components]
                if all(values):
                    rows = [c.rows(found) for c, found in zip(plan.components, values, strict=True)]
                    if all(rows):
                        out.extend(CompositeRow(plan.code, combination) for combination in product(*rows))
        else:
            for value, value_type in items:
                handler = plan.handlers[value_type]
                if handler is not None:
                    handler(plan.code, value, out)
        out[start:] = dict.fromkeys(out[start:])
    return out


def test_the_memoised_indexer_gives_the_rows_of_the_generic_path(
    examples: dict[str, dict[str, Any]],
) -> None:
    """Plans chosen by the resource's shape and component values shared between composites change
    no row and no order, on the official examples and on synthetic bundles (twice: memos warm)."""
    resources = list(examples.values())
    resources += [entry["resource"] for bundle in patient_bundles(40, seed=5) for entry in bundle["entry"]]
    indexer = default_indexer()
    for _ in range(2):
        for resource in resources:
            assert indexer.rows(resource) == _rows_of_every_plan(indexer, resource), resource.get("id")


def test_patient_example(examples: dict[str, dict[str, Any]]) -> None:
    patient = examples["Patient-example"]
    assert rows_of(patient, "family") == [
        StringRow("family", "chalmers", "Chalmers"),
        StringRow("family", "windsor", "Windsor"),
    ]
    assert TokenRow("identifier", "urn:oid:1.2.36.146.595.217.0.1", "12345") in rows_of(patient, "identifier")
    assert rows_of(patient, "identifier:of-type") == [
        TokenRow("identifier:of-type", "http://terminology.hl7.org/CodeSystem/v2-0203", "MR", None, "12345")
    ]
    assert rows_of(patient, "birthdate") == [DateRow("birthdate", us(1974, 12, 25), us(1974, 12, 26) - 1)]
    assert rows_of(patient, "gender") == [
        TokenRow("gender", "http://hl7.org/fhir/administrative-gender", "male")
    ]
    assert rows_of(patient, "deceased") == [TokenRow("deceased", None, "false")]
    assert rows_of(patient, "organization") == [ReferenceRow("organization", "Organization", "1", None)]
    assert TokenRow("phone", None, "(03) 5555 6473") in rows_of(patient, "phone")
    # The contact's name ("du Marché") is not the patient's name.
    assert "du marche" not in {
        row.normalized for row in rows_of(patient, "name") if isinstance(row, StringRow)
    }


def test_observation_example(examples: dict[str, dict[str, Any]]) -> None:
    observation = examples["Observation-example"]
    weight = QuantityRow("value-quantity", 185.0, 184.5, 185.5, "http://unitsofmeasure.org", "[lb_av]", "lbs")
    assert rows_of(observation, "value-quantity") == [weight]
    assert rows_of(observation, "subject") == [ReferenceRow("subject", "Patient", "example", None)]
    assert rows_of(observation, "patient") == [ReferenceRow("patient", "Patient", "example", None)]
    composites = rows_of(observation, "code-value-quantity")
    # One combination per coding of Observation.code, each with the one value.
    assert len(composites) == 4
    assert (
        CompositeRow(
            "code-value-quantity",
            (TokenRow("code", "http://loinc.org", "29463-7", "body weight"), weight),
        )
        in composites
    )


def test_encounter_period(examples: dict[str, dict[str, Any]]) -> None:
    # 16:00 to 16:30 at +10:00, the end covering its whole second.
    assert rows_of(examples["Encounter-home"], "date") == [
        DateRow("date", us(2015, 1, 17, 6), us(2015, 1, 17, 6, 30, 1) - 1)
    ]
    # An encounter still in progress (no end) is open to the future.
    assert rows_of(examples["Encounter-emerg"], "date") == [
        DateRow("date", us(2017, 1, 31, 21, 15), DATE_MAX)
    ]


def test_document_reference_relationship_pairs_the_relation_code_with_its_target(
    examples: dict[str, dict[str, Any]],
) -> None:
    # The R4 definition gives each component the other's expression; the registry corrects it.
    assert rows_of(examples["DocumentReference-example"], "relationship") == [
        CompositeRow(
            "relationship",
            (
                ReferenceRow("relatesto", "DocumentReference", "example", None),
                TokenRow("relation", None, "appends"),
            ),
        )
    ]


# --- rules, on small resources -----------------------------------------------------------------


def test_a_human_name_yields_one_string_row_per_part() -> None:
    patient = {
        "resourceType": "Patient",
        "name": [
            {"family": "Dupont", "given": ["Élodie", "Marie"], "prefix": ["Mme"], "text": "Mme Élodie Dupont"}
        ],
    }
    assert rows_of(patient, "name") == [
        StringRow("name", "dupont", "Dupont"),
        StringRow("name", "elodie", "Élodie"),
        StringRow("name", "marie", "Marie"),
        StringRow("name", "mme", "Mme"),
        StringRow("name", "mme elodie dupont", "Mme Élodie Dupont"),
    ]


def test_an_address_yields_one_string_row_per_part() -> None:
    patient = {
        "resourceType": "Patient",
        "address": [{"line": ["1 rue de la Paix"], "city": "Paris", "postalCode": "75002"}],
    }
    assert [row.exact for row in rows_of(patient, "address") if isinstance(row, StringRow)] == [
        "1 rue de la Paix",
        "Paris",
        "75002",
    ]


def test_a_codeable_concept_yields_one_token_per_coding_with_its_text() -> None:
    condition = {
        "resourceType": "Condition",
        "code": {
            "coding": [{"system": "http://snomed.info/sct", "code": "1", "display": "One"}, {"code": "x"}],
            "text": "Diabète",
        },
    }
    assert rows_of(condition, "code") == [
        TokenRow("code", "http://snomed.info/sct", "1", "diabete"),
        TokenRow("code", None, "x", "diabete"),
    ]


def test_a_codeable_concept_with_only_text_is_still_findable_by_text() -> None:
    condition = {"resourceType": "Condition", "code": {"text": "Mal de dos"}}
    assert rows_of(condition, "code") == [TokenRow("code", None, None, "mal de dos")]


def test_a_coding_uses_its_display_as_text() -> None:
    condition = {
        "resourceType": "Condition",
        "meta": {"tag": [{"system": "s", "code": "c", "display": "Étiquette"}]},
    }
    assert rows_of(condition, "_tag") == [TokenRow("_tag", "s", "c", "etiquette")]


def test_an_identifier_also_yields_of_type_rows() -> None:
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {
                "system": "urn:oid:1.2.250.1.213.1.4.8",
                "value": "1234",
                "type": {"coding": [{"system": "t", "code": "INS-NIR"}], "text": "NIR"},
            }
        ],
    }
    assert rows_of(patient, "identifier") == [
        TokenRow("identifier", "urn:oid:1.2.250.1.213.1.4.8", "1234", "nir")
    ]
    assert rows_of(patient, "identifier:of-type") == [
        TokenRow("identifier:of-type", "t", "INS-NIR", None, "1234")
    ]


def test_a_contact_point_token_is_its_value_without_system() -> None:
    patient = {
        "resourceType": "Patient",
        "telecom": [{"system": "email", "value": "a@b.fr"}, {"system": "phone"}],
    }
    assert rows_of(patient, "telecom") == [TokenRow("telecom", None, "a@b.fr")]
    assert rows_of(patient, "email") == [TokenRow("email", None, "a@b.fr")]
    assert rows_of(patient, "phone") == []


def test_booleans_are_tokens_without_system_and_bound_codes_carry_their_system() -> None:
    patient = {"resourceType": "Patient", "active": False, "gender": "female"}
    assert rows_of(patient, "active") == [TokenRow("active", None, "false")]
    # Patient.gender has a required binding to a value set drawn from one code system
    assert rows_of(patient, "gender") == [
        TokenRow("gender", "http://hl7.org/fhir/administrative-gender", "female")
    ]


def test_every_bound_code_carries_its_value_set_system() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "identifier": {"value": "x"}}
    assert rows_of(bundle, "type") == [TokenRow("type", "http://hl7.org/fhir/bundle-type", "collection")]


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Patient/123", ReferenceRow("subject", "Patient", "123", None)),
        ("Patient/123/_history/2", ReferenceRow("subject", "Patient", "123", None, "2")),
        (
            "http://example.org/fhir/Patient/123",
            ReferenceRow("subject", "Patient", "123", "http://example.org/fhir/Patient/123"),
        ),
        (
            "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0",
            ReferenceRow("subject", None, None, "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"),
        ),
        ("http://example.org/something", ReferenceRow("subject", None, None, "http://example.org/something")),
    ],
)
def test_literal_references_are_parsed(reference: str, expected: ReferenceRow) -> None:
    observation = {"resourceType": "Observation", "subject": {"reference": reference}}
    assert rows_of(observation, "subject") == [expected]


def test_a_contained_reference_is_not_indexed() -> None:
    observation = {
        "resourceType": "Observation",
        "contained": [{"resourceType": "Patient", "id": "p"}],
        "subject": {"reference": "#p"},
    }
    assert rows_of(observation, "subject") == []


def test_a_logical_reference_is_indexed_as_identifier_token() -> None:
    observation = {
        "resourceType": "Observation",
        "subject": {"type": "Patient", "identifier": {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "1"}},
    }
    assert rows_of(observation, "subject") == []
    assert rows_of(observation, "subject:identifier") == [
        TokenRow("subject:identifier", "urn:oid:1.2.250.1.213.1.4.8", "1")
    ]
    # `patient` is `subject.where(resolve() is Patient)`: Reference.type says it is one.
    assert rows_of(observation, "patient:identifier") == [
        TokenRow("patient:identifier", "urn:oid:1.2.250.1.213.1.4.8", "1")
    ]


def test_where_resolve_is_patient_keeps_only_patient_subjects() -> None:
    observation = {"resourceType": "Observation", "subject": {"reference": "Group/1"}}
    assert rows_of(observation, "subject") == [ReferenceRow("subject", "Group", "1", None)]
    assert rows_of(observation, "patient") == []


def test_a_canonical_reference_keeps_its_version_apart() -> None:
    response = {"resourceType": "QuestionnaireResponse", "questionnaire": "http://x.org/Questionnaire/q|2.0"}
    assert rows_of(response, "questionnaire") == [
        ReferenceRow("questionnaire", None, None, "http://x.org/Questionnaire/q", "2.0")
    ]


def test_a_bundle_is_a_composition_only_when_its_first_entry_is_one() -> None:
    document = {
        "resourceType": "Bundle",
        "entry": [{"resource": {"resourceType": "Composition", "id": "c1"}}],
    }
    searchset = {
        "resourceType": "Bundle",
        "entry": [{"resource": {"resourceType": "OperationOutcome", "id": "o"}}],
    }
    assert rows_of(document, "composition") == [ReferenceRow("composition", "Composition", "c1", None)]
    assert rows_of(document, "message") == []
    assert rows_of(searchset, "composition") == []


def test_a_period_with_no_end_is_open_to_the_future_and_no_start_to_the_past() -> None:
    open_end = {"resourceType": "Encounter", "period": {"start": "2020-05-17"}}
    open_start = {"resourceType": "Encounter", "period": {"end": "2020-05-17"}}
    assert rows_of(open_end, "date") == [DateRow("date", us(2020, 5, 17), DATE_MAX)]
    assert rows_of(open_start, "date") == [DateRow("date", DATE_MIN, us(2020, 5, 18) - 1)]


def test_a_timing_yields_its_events_and_its_bounds() -> None:
    care_plan = {
        "resourceType": "CarePlan",
        "activity": [
            {
                "detail": {
                    "status": "scheduled",
                    "scheduledTiming": {
                        "event": ["2020-01-02"],
                        "repeat": {"boundsPeriod": {"start": "2020-02"}},
                    },
                }
            }
        ],
    }
    assert rows_of(care_plan, "activity-date") == [
        DateRow("activity-date", us(2020, 1, 2), us(2020, 1, 3) - 1),
        DateRow("activity-date", us(2020, 2, 1), DATE_MAX),
    ]


def test_an_age_is_not_a_date() -> None:
    condition = {"resourceType": "Condition", "onsetAge": {"value": 52, "unit": "a"}}
    assert rows_of(condition, "onset-date") == []
    assert rows_of(condition, "onset-age") == [QuantityRow("onset-age", 52.0, 51.5, 52.5, None, None, "a")]


def test_an_invalid_stored_date_gives_no_row_rather_than_an_error() -> None:
    assert rows_of({"resourceType": "Patient", "birthDate": "1974-02-30"}, "birthdate") == []


def test_numbers_keep_the_precision_they_were_written_with() -> None:
    risk = {
        "resourceType": "RiskAssessment",
        "prediction": [{"probabilityDecimal": 0.25}, {"probabilityDecimal": 3}],
    }
    assert rows_of(risk, "probability") == pytest.approx(
        [NumberRow("probability", 0.25, 0.245, 0.255), NumberRow("probability", 3.0, 2.5, 3.5)]
    )


def test_money_is_a_quantity_in_iso_4217() -> None:
    invoice = {"resourceType": "Invoice", "totalNet": {"value": 40, "currency": "EUR"}}
    assert rows_of(invoice, "totalnet") == [
        QuantityRow("totalnet", 40.0, 39.5, 40.5, "urn:iso:std:iso:4217", "EUR", None)
    ]


def test_a_range_is_a_quantity_only_when_low_equals_high() -> None:
    def library(value_range: dict[str, Any]) -> dict[str, Any]:
        return {
            "resourceType": "Library",
            "useContext": [{"code": {"code": "age"}, "valueRange": value_range}],
        }

    point = {"low": {"value": 18, "code": "a"}, "high": {"value": 18, "code": "a"}}
    span = {"low": {"value": 18, "code": "a"}, "high": {"value": 65, "code": "a"}}
    assert rows_of(library(point), "context-quantity") == [
        QuantityRow("context-quantity", 18.0, 17.5, 18.5, None, "a", None)
    ]
    assert rows_of(library(span), "context-quantity") == []


def test_uris_are_indexed_as_written() -> None:
    value_set = {
        "resourceType": "ValueSet",
        "url": "http://x.org/ValueSet/v",
        "meta": {"profile": ["http://p|1"]},
    }
    assert rows_of(value_set, "url") == [UriRow("url", "http://x.org/ValueSet/v")]
    assert rows_of(value_set, "_profile") == [UriRow("_profile", "http://p|1")]


def test_composite_values_are_never_paired_across_elements() -> None:
    def component(code: str, value: int) -> dict[str, Any]:
        return {
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "valueQuantity": {"value": value},
        }

    blood_pressure = {
        "resourceType": "Observation",
        "component": [component("8480-6", 120), component("8462-4", 80)],
    }
    pairs = {
        (row.components[0].code, row.components[1].value)  # type: ignore[union-attr]
        for row in rows_of(blood_pressure, "component-code-value-quantity")
        if isinstance(row, CompositeRow)
    }
    assert pairs == {("8480-6", 120.0), ("8462-4", 80.0)}


def test_an_extension_parameter_indexes_the_extension_value() -> None:
    url = "http://hl7.org/fhir/StructureDefinition/patient-extensions-Patient-mothersMaidenName"
    patient = {"resourceType": "Patient", "extension": [{"url": url, "valueString": "Lefèvre"}]}
    assert rows_of(patient, "mothersMaidenName") == [StringRow("mothersMaidenName", "lefevre", "Lefèvre")]


def test_identical_rows_are_kept_once() -> None:
    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": "s", "value": "1"}, {"system": "s", "value": "1"}],
    }
    assert rows_of(patient, "identifier") == [TokenRow("identifier", "s", "1")]


def test_id_and_last_updated_are_left_to_the_resource_table() -> None:
    patient = {"resourceType": "Patient", "id": "p", "meta": {"lastUpdated": "2020-01-01T00:00:00Z"}}
    assert {row.param for row in extract_index_rows(patient)} == {"deceased"}


def test_a_resource_without_resource_type_is_refused() -> None:
    with pytest.raises(ValueError, match="resourceType"):
        extract_index_rows({"id": "x"})


# --- the registry ------------------------------------------------------------------------------


def test_the_registry_includes_resource_level_parameters_on_every_type() -> None:
    registry = default_registry()
    for code in ("_id", "_lastUpdated", "_tag", "_profile", "_security", "_source", "_text"):
        assert registry.get("Patient", code) is not None, code
    assert registry.get("Bundle", "_text") is None  # a DomainResource parameter; Bundle is not one
    assert registry.get("Bundle", "_tag") is not None
    assert registry.for_type("NotAType") == {}


def test_the_registry_ignores_the_search_parameter_examples_of_the_core_package() -> None:
    registry = default_registry()
    subject = registry.get("Condition", "subject")
    assert subject is not None and set(subject.targets) == {"Group", "Patient"}
    identifier = registry.get("Patient", "_id")
    assert identifier is not None and identifier.expression == "Resource.id"
    assert registry.get("Patient", "part-agree") is None
    assert registry.by_url("http://hl7.org/fhir/SearchParameter/individual-birthdate") == registry.get(
        "Patient", "birthdate"
    )
