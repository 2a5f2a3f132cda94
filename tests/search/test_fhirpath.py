"""Rules of the FHIRPath subset used by search-parameter expressions (socle.fhir.fhirpath)."""

from __future__ import annotations

from typing import Any

import pytest

from socle.fhir.definitions import resource_types, search_parameter_definitions, structures
from socle.fhir.fhirpath import TypedValue, UnsupportedExpression, compile_path, split_reference


def values(expression: str, resource: dict[str, Any]) -> list[Any]:
    return [
        tv.value
        for tv in compile_path(expression, resource["resourceType"]).evaluate(
            resource, resource["resourceType"]
        )
    ]


def _concrete_types(base: str) -> list[str]:
    if base not in ("Resource", "DomainResource"):
        return [base]
    return sorted(t for t in resource_types() if base == "Resource" or structures()[t].get("base") == base)


def test_every_r4_search_parameter_expression_compiles_for_each_of_its_bases() -> None:
    compiled = 0
    for definition in search_parameter_definitions():
        expression = definition.get("expression")
        if not expression:  # _text, _content, _query, _filter and a few extension parameters
            continue
        for base in definition.get("base", ()):
            for resource_type in _concrete_types(base):
                path = compile_path(expression, resource_type)
                compiled += 1
                # Composite components are relative to each element the base expression yields.
                for component in definition.get("component", ()):
                    for element_type in path.result_types or ():
                        compile_path(component["expression"], element_type)
    assert compiled > 2500


def test_every_result_carries_its_fhir_type_from_the_type_tables() -> None:
    patient = {
        "resourceType": "Patient",
        "birthDate": "1974-12-25",
        "name": [{"family": "Chalmers"}],
        "active": True,
    }
    path = compile_path("Patient.birthDate | Patient.name | Patient.active", "Patient")
    assert path.evaluate(patient, "Patient") == [
        TypedValue("1974-12-25", "date"),
        TypedValue({"family": "Chalmers"}, "HumanName"),
        TypedValue(True, "boolean"),
    ]
    assert path.result_types == frozenset({"date", "HumanName", "boolean"})


def test_repeating_primitives_give_one_item_each_and_skip_nulls_kept_for_extensions() -> None:
    patient = {"resourceType": "Patient", "name": [{"given": ["Peter", None, "James"]}]}
    assert compile_path("Patient.name.given", "Patient").evaluate(patient, "Patient") == [
        TypedValue("Peter", "string"),
        TypedValue("James", "string"),
    ]


def test_a_choice_element_is_found_under_its_typed_json_name() -> None:
    quantity = {"resourceType": "Observation", "valueQuantity": {"value": 185}}
    text = {"resourceType": "Observation", "valueString": "negative"}
    path = compile_path("Observation.value", "Observation")
    assert path.evaluate(quantity, "Observation") == [TypedValue({"value": 185}, "Quantity")]
    assert path.evaluate(text, "Observation") == [TypedValue("negative", "string")]


def test_as_keeps_only_values_of_that_type_in_every_spelling() -> None:
    text = {"resourceType": "Observation", "valueString": "negative"}
    quantity = {"resourceType": "Observation", "valueQuantity": {"value": 1}}
    for expression in (
        "(Observation.value as Quantity)",
        "Observation.value.as(Quantity)",
        "value.ofType(Quantity)",
    ):
        assert values(expression, text) == []
        assert values(expression, quantity) == [{"value": 1}]


def test_as_accepts_subtypes_and_system_type_names() -> None:
    condition = {"resourceType": "Condition", "onsetAge": {"value": 52, "unit": "a"}}
    assert compile_path("Condition.onset.as(Quantity)", "Condition").evaluate(condition, "Condition") == [
        TypedValue({"value": 52, "unit": "a"}, "Age")
    ]
    observation = {"resourceType": "Observation", "valueDateTime": "2020-05-17"}
    # The R4 composite `code-value-date` writes `value.as(DateTime)`: the System type.
    assert compile_path("value.as(DateTime)", "Observation").evaluate(observation, "Observation") == [
        TypedValue("2020-05-17", "dateTime")
    ]


def test_a_property_after_as_reads_into_the_converted_value() -> None:
    observation = {"resourceType": "Observation", "valueCodeableConcept": {"text": "Positive"}}
    expression = "(Observation.value as string) | (Observation.value as CodeableConcept).text"
    assert values(expression, observation) == ["Positive"]


def test_union_members_for_other_types_are_dropped_when_compiling_for_a_type() -> None:
    path = compile_path("Patient.name | Person.name | Practitioner.telecom", "Patient")
    assert path.result_types == frozenset({"HumanName"})
    assert compile_path("DocumentReference.extension('http://x')", "Patient").is_empty
    person = {"resourceType": "Person", "name": [{"family": "Doe"}]}
    # Uncompiled for a type, a leading type name filters the focus at run time.
    assert compile_path("Patient.name | Person.name").evaluate(person, "Person") == [
        TypedValue({"family": "Doe"}, "HumanName")
    ]


def test_a_path_compiled_for_one_type_still_answers_for_another() -> None:
    path = compile_path("Patient.name | Person.name", "Patient")
    person = {"resourceType": "Person", "name": [{"family": "Doe"}]}
    assert path.evaluate(person, "Person") == [TypedValue({"family": "Doe"}, "HumanName")]


def test_quoted_identifiers_are_names_never_keywords() -> None:
    narrative = {"resourceType": "Patient", "text": {"div": "<div/>"}}
    assert values("Patient.text.`div`", narrative) == ["<div/>"]


def test_union_removes_duplicates() -> None:
    patient = {"resourceType": "Patient", "name": [{"family": "Doe"}]}
    assert values("Patient.name | Patient.name", patient) == [{"family": "Doe"}]


def test_where_resolve_is_patient_keeps_only_references_to_patients() -> None:
    observation = {
        "resourceType": "Observation",
        "contained": [{"resourceType": "Patient", "id": "p1"}, {"resourceType": "Group", "id": "g1"}],
    }
    subjects = [
        {"reference": "Patient/1"},
        {"reference": "Patient/1/_history/3"},
        {"reference": "http://other.org/fhir/Patient/2"},
        {"type": "Patient", "identifier": {"value": "123"}},
        {"reference": "#p1"},
        {"reference": "Group/1"},
        {"reference": "#g1"},
        {"reference": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"},
        {"display": "someone"},
    ]
    path = compile_path("Observation.subject.where(resolve() is Patient)", "Observation")
    kept: list[Any] = []
    for subject in subjects:
        kept.extend(tv.value for tv in path.evaluate(dict(observation, subject=subject), "Observation"))
    assert kept == subjects[:5]


def test_where_with_equality_on_a_child_filters_by_that_child() -> None:
    patient = {
        "resourceType": "Patient",
        "telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "a@b"}, {"value": "2"}],
    }
    assert values("Patient.telecom.where(system='phone')", patient) == [{"system": "phone", "value": "1"}]
    artifacts = {
        "resourceType": "Library",
        "relatedArtifact": [
            {"type": "composed-of", "resource": "http://x/Library/a"},
            {"type": "depends-on"},
        ],
    }
    assert values("Library.relatedArtifact.where(type='composed-of').resource", artifacts) == [
        "http://x/Library/a"
    ]


def test_extension_selects_extensions_by_url() -> None:
    patient = {
        "resourceType": "Patient",
        "extension": [{"url": "http://a", "valueString": "Smith"}, {"url": "http://b", "valueString": "x"}],
    }
    path = compile_path("Patient.extension('http://a')", "Patient")
    assert path.evaluate(patient, "Patient") == [
        TypedValue({"url": "http://a", "valueString": "Smith"}, "Extension")
    ]
    assert compile_path("value", "Extension").evaluate(patient["extension"][0], "Extension") == [
        TypedValue("Smith", "string")
    ]


def test_has_extension_inside_where_and_of_type() -> None:
    response = {
        "resourceType": "QuestionnaireResponse",
        "item": [
            {
                "extension": [
                    {"url": "http://hl7.org/fhir/StructureDefinition/questionnaireresponse-isSubject"}
                ],
                "answer": [{"valueReference": {"reference": "Patient/1"}}, {"valueString": "no"}],
            },
            {"answer": [{"valueReference": {"reference": "Patient/2"}}]},
        ],
    }
    # The R4 `item-subject` parameter: answers of the items flagged as the subject.
    expression = (
        "QuestionnaireResponse.item.where(hasExtension('http://hl7.org/fhir/StructureDefinition/"
        "questionnaireresponse-isSubject')).answer.value.ofType(Reference)"
    )
    assert values(expression, response) == [{"reference": "Patient/1"}]


def test_indexing_takes_one_item_and_resources_are_typed_by_resource_type() -> None:
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {"resource": {"resourceType": "Composition", "id": "c"}},
            {"resource": {"resourceType": "Patient"}},
        ],
    }
    assert compile_path("Bundle.entry[0].resource", "Bundle").evaluate(bundle, "Bundle") == [
        TypedValue({"resourceType": "Composition", "id": "c"}, "Composition")
    ]


@pytest.mark.parametrize(
    ("deceased", "expected"),
    [
        ({}, False),
        ({"deceasedBoolean": False}, False),
        ({"deceasedBoolean": True}, True),
        ({"deceasedDateTime": "2015"}, True),
    ],
)
def test_deceased_is_true_when_a_death_date_or_true_is_recorded(
    deceased: dict[str, Any], expected: bool
) -> None:
    path = compile_path("Patient.deceased.exists() and Patient.deceased != false", "Patient")
    assert path.evaluate({"resourceType": "Patient", **deceased}, "Patient") == [
        TypedValue(expected, "boolean")
    ]


def test_resource_variable_reaches_the_root_from_a_component() -> None:
    sequence: dict[str, Any] = {
        "resourceType": "MolecularSequence",
        "referenceSeq": {"chromosome": {"text": "2"}},
        "variant": [{}],
    }
    path = compile_path("%resource.referenceSeq.chromosome", "MolecularSequence.variant")
    assert path.evaluate(sequence["variant"][0], "MolecularSequence.variant", sequence) == [
        TypedValue({"text": "2"}, "CodeableConcept")
    ]


@pytest.mark.parametrize(
    "expression",
    [
        "Patient.name.select(given)",  # unsupported function
        "Patient.birthDate + 1",  # arithmetic
        "Patient.birthDate > @2020",  # comparison (and a date literal)
        "Patient.nickname",  # no such element
        "Patient.name as Unknown",  # no such type
        "Patient.telecom.where(",  # syntax
        "Patient.name[index]",  # non-literal index
        "%context.name",  # unsupported variable
    ],
)
def test_unsupported_syntax_is_refused_at_compile_time(expression: str) -> None:
    with pytest.raises(UnsupportedExpression):
        compile_path(expression, "Patient")


def test_literal_references_name_their_target() -> None:
    assert split_reference("Patient/123") == ("Patient", "123", None)
    assert split_reference("Patient/123/_history/2") == ("Patient", "123", "2")
    assert split_reference("https://h/fhir/Observation/a.1") == ("Observation", "a.1", None)
    assert split_reference("urn:uuid:1234") is None
    assert split_reference("Unknown/1") is None
    assert split_reference("#p1") is None
