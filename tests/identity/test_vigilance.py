"""Identity vigilance: duplicate candidates (scores, reasons, blocking) and merging two Patients."""

from __future__ import annotations

from typing import Any

import pytest

from socle.errors import InvalidRequest, NotFound
from socle.identity import vigilance
from socle.identity.actions import do_create_identity
from socle.identity.fhir import record_to_patient
from socle.identity.record import IdentityRecord, InsKind, InsMatricule, Status
from socle.identity.vigilance import (
    DuplicateCandidate,
    MergeIncomplete,
    MergeRefused,
    PatientTraits,
    close_dates,
    close_names,
    do_merge_identities,
    find_potential_duplicates,
    name_key,
    patient_traits,
    repoint_references,
    score_pair,
)
from socle.search.engine import search_bundle
from socle.store.repository import FhirStore, StoreSession
from tests.identity.factories import OPERATOR, jeanne, made_up_nir

BASE = "http://x/fhir"


def person(patient_id: str = "a", **changes: Any) -> PatientTraits:
    values: dict[str, Any] = {
        "patient_id": patient_id,
        "birth_name": "MARTIN",
        "given_names": ("JEANNE", "LOUISE"),
        "birth_date": "1985-01-15",
        "sex": "female",
        "birthplace_code": None,
        "ins": None,
        "old_ins": frozenset(),
        "replaced_by": None,
        "linked": frozenset(),
    }
    values.update(changes)
    return PatientTraits(**values)


# -- scoring (pure) ---------------------------------------------------------------------------------


def test_identical_traits_score_one_with_their_reasons() -> None:
    score, reasons = score_pair(person("a", birthplace_code="75115"), person("b", birthplace_code="75115"))
    assert score == 1.0
    assert reasons == (
        "nom de naissance identique",
        "prénom identique",
        "même date de naissance",
        "même sexe",
        "même lieu de naissance",
    )


def test_close_traits_score_less_and_say_so() -> None:
    score, reasons = score_pair(person("a"), person("b", given_names=("JEANE",), birth_date="1985-01-16"))
    assert reasons == ("nom de naissance identique", "prénom proche", "date de naissance proche", "même sexe")
    assert score == round((0.30 + 0.10 + 0.125 + 0.10) / 0.85, 3)


def test_the_same_ins_makes_a_likely_duplicate_and_different_ins_rather_two_people() -> None:
    ins = "urn:oid:1.2.250.1.213.1.4.8|285017511504231"
    other = "urn:oid:1.2.250.1.213.1.4.8|285016938100708"
    same, reasons = score_pair(
        person("a", ins=ins, birth_name="DURAND"), person("b", old_ins=frozenset({ins}))
    )
    assert same >= 0.9 and reasons[0] == "même INS"
    different, reasons = score_pair(person("a", ins=ins), person("b", ins=other))
    assert different == 0.5 and reasons[-1] == "INS différents"


def test_what_counts_as_close() -> None:
    assert close_names("JEANNE", "JEANE")  # one letter missing
    assert close_names("MARTIN", "MATRIN")  # two letters swapped
    assert close_names("JEAN", "JEAN-PIERRE")  # part of a compound first name
    assert not close_names("MARTIN", "MARTINEZ")
    assert close_dates("1985-01-12", "1985-12-01")  # day and month typed the wrong way round
    assert close_dates("1985-01-15", "1985-01-16")
    assert not close_dates("1985-01-15", "1986-02-15")
    assert name_key("Lefèvre d’ Arc  - Œuvray") == "LEFEVRE D'ARC-OEUVRAY"


# -- detection on the store ---------------------------------------------------------------------------


def patient(family: str, given: str, birth_date: str, gender: str = "female", **extra: Any) -> dict[str, Any]:
    # A plain FHIR Patient, as any client writes it (no FR Core identity extensions).
    return {
        "resourceType": "Patient",
        "name": [{"family": family, "given": given.split()}],
        "gender": gender,
        "birthDate": birth_date,
        **extra,
    }


def create(store: FhirStore, *resources: dict[str, Any]) -> list[str]:
    with store.session() as session:
        return [session.create(r).res_id for r in resources]


def test_duplicates_are_found_scored_and_sorted(store: FhirStore) -> None:
    a, b, c, d, e = create(
        store,
        patient("Martin", "Jeanne Louise", "1985-01-15"),
        patient("MARTIN", "Jeane", "1985-01-15"),  # a typo in the first name
        patient("Durand", "Paul", "1970-03-04", "male"),
        patient("Durand", "Paul", "1970-04-03", "male"),  # day and month swapped: another block
        patient("Bernard", "Zoé", "1985-01-15"),  # same birth date, nothing else
    )
    with store.session(readonly=True) as session:
        found = find_potential_duplicates(session)
    assert [(c.patient_a, c.patient_b) for c in found] == [tuple(sorted((a, b))), tuple(sorted((c, d)))]
    assert found[0] == DuplicateCandidate(
        *sorted((a, b)),
        score=round((0.30 + 0.10 + 0.25 + 0.10) / 0.85, 3),
        reasons=("nom de naissance identique", "prénom proche", "même date de naissance", "même sexe"),
    )
    assert found[1].reasons == (
        "nom de naissance identique",
        "prénom identique",
        "date de naissance proche",
        "même sexe",
    )
    assert e not in {x for pair in found for x in (pair.patient_a, pair.patient_b)}


def test_detection_compares_blocks_not_all_pairs(store: FhirStore, monkeypatch: pytest.MonkeyPatch) -> None:
    resources = [
        patient("Nom", f"Prenom{'ABCDEFGH'[i % 8]}", f"19{40 + i // 12:02d}-{i % 12 + 1:02d}-10")
        for i in range(120)
    ]
    create(store, *resources)
    compared = []
    real = vigilance.score_pair

    def counting(a: PatientTraits, b: PatientTraits) -> tuple[float, tuple[str, ...]]:
        compared.append((a.patient_id, b.patient_id))
        return real(a, b)

    monkeypatch.setattr(vigilance, "score_pair", counting)
    with store.session(readonly=True) as session:
        find_potential_duplicates(session)
    assert len(compared) < 120  # all pairs would be 7,140


def test_merged_patients_are_no_longer_candidates(store: FhirStore) -> None:
    kept, merged = create(
        store, patient("Martin", "Jeanne", "1985-01-15"), patient("Martin", "Jeanne", "1985-01-15")
    )
    with store.session() as session:
        assert len(find_potential_duplicates(session)) == 1
        do_merge_identities(session, OPERATOR, kept, merged, "doublon créé aux urgences")
        assert find_potential_duplicates(session) == []


def test_patient_traits_read_fr_core_and_plain_patients() -> None:
    record = IdentityRecord(jeanne(), ins=InsMatricule(InsKind.NIR, made_up_nir()))
    fr_core = patient_traits({**record_to_patient(record), "id": "p1"})
    assert fr_core is not None
    assert (fr_core.birth_name, fr_core.given_names, fr_core.birthplace_code) == (
        "MARTIN",
        ("JEANNE", "LOUISE"),
        "75115",
    )
    assert fr_core.ins == f"urn:oid:1.2.250.1.213.1.4.8|{made_up_nir()}"
    assert patient_traits({"resourceType": "Patient", "id": "p2", "name": [{"family": "X"}]}) is None


# -- re-pointing references (pure) --------------------------------------------------------------------


def test_every_reference_is_repointed_wherever_it_sits() -> None:
    resource = {
        "resourceType": "Encounter",
        "subject": {"reference": "Patient/m"},
        "participant": [{"individual": {"reference": "Practitioner/m"}}],
        "extension": [{"url": "x", "valueReference": {"reference": "http://x/fhir/Patient/m/_history/2"}}],
        "contained": [{"resourceType": "Observation", "subject": {"reference": "Patient/m"}}],
        "partOf": {"reference": "Encounter/Patient/m"},
        "account": [{"reference": "Patient/mm"}],
    }
    rewritten, count = repoint_references(resource, "m", "k")
    assert count == 3
    assert rewritten["subject"] == {"reference": "Patient/k"}
    assert rewritten["extension"][0]["valueReference"] == {"reference": "http://x/fhir/Patient/k"}
    assert rewritten["contained"][0]["subject"] == {"reference": "Patient/k"}
    assert rewritten["participant"] == resource["participant"]
    assert rewritten["account"] == [{"reference": "Patient/mm"}]
    assert resource["subject"] == {"reference": "Patient/m"}  # the input is left as it was


# -- merging ------------------------------------------------------------------------------------------


def observation(patient_id: str, code: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "performer": [{"reference": f"Patient/{patient_id}"}],
    }


def ids(session: StoreSession, res_type: str, params: list[tuple[str, str]]) -> set[str]:
    bundle = search_bundle(session, res_type, params, BASE)
    return {e["fullUrl"].rsplit("/", 1)[1] for e in bundle.get("entry", [])}


def test_repointing_keeps_every_observation_of_the_merged_patient(store: FhirStore) -> None:
    kept, merged = create(
        store, patient("Martin", "Jeanne", "1985-01-15"), patient("MARTIN", "Jeane", "1985-01-15")
    )
    of_merged = create(store, *(observation(merged, f"{n}-1") for n in range(3)))
    (of_kept,) = create(store, observation(kept, "9-9"))
    (encounter,) = create(
        store,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{merged}"},
            "extension": [{"url": "http://x/ext", "valueReference": {"reference": f"Patient/{merged}"}}],
        },
    )
    with store.session() as session:
        outcome = do_merge_identities(session, OPERATOR, kept, merged, "  doublon créé aux urgences ")
    assert outcome.reason == "doublon créé aux urgences"
    assert sorted(outcome.repointed) == sorted(
        [f"Observation/{i}" for i in of_merged] + [f"Encounter/{encounter}"]
    )
    with store.session(readonly=True) as session:
        assert ids(session, "Observation", [("subject", f"Patient/{kept}")]) == {*of_merged, of_kept}
        assert ids(session, "Observation", [("subject", f"Patient/{merged}")]) == set()
        encounter_now = session.read("Encounter", encounter).json()
        assert encounter_now["extension"][0]["valueReference"] == {"reference": f"Patient/{kept}"}
        retired = session.read("Patient", merged).json()
        assert retired["active"] is False
        assert retired["link"] == [{"other": {"reference": f"Patient/{kept}"}, "type": "replaced-by"}]
        assert session.read("Patient", kept).json()["link"] == [
            {"other": {"reference": f"Patient/{merged}"}, "type": "replaces"}
        ]
        # Nothing is deleted: each rewritten resource keeps its first version in its history.
        history = session.history("Observation", of_merged[0])
        assert [stored.version for _, stored in history] == [2, 1]
        assert history[1][1].json()["subject"] == {"reference": f"Patient/{merged}"}


def test_a_merged_patient_cannot_be_merged_again(store: FhirStore) -> None:
    kept, merged, other = create(store, *(patient("Martin", "Jeanne", "1985-01-15") for _ in range(3)))
    with store.session() as session:
        do_merge_identities(session, OPERATOR, kept, merged, "doublon")
    with pytest.raises(MergeRefused) as caught, store.session() as session:
        do_merge_identities(session, OPERATOR, other, merged, "doublon")
    assert (caught.value.status, caught.value.message) == (
        422,
        f"fusion impossible : Patient/{merged} a déjà été fusionné dans Patient/{kept}",
    )
    with pytest.raises(MergeRefused) as caught, store.session() as session:
        do_merge_identities(session, OPERATOR, merged, other, "doublon")  # into a merged patient
    assert (
        caught.value.message
        == f"fusion impossible : Patient/{merged} a déjà été fusionné dans Patient/{kept}"
    )


def qualified(order: str) -> IdentityRecord:
    ins = InsMatricule(InsKind.NIR, made_up_nir(order=order))
    return IdentityRecord(jeanne(), status=Status.QUAL, ins=ins, validation_document="PA")


def test_two_qualified_identities_with_different_ins_are_not_merged(store: FhirStore) -> None:
    with store.session() as session:
        first = do_create_identity(session, OPERATOR, qualified("042"))
        second = do_create_identity(session, OPERATOR, qualified("043"))
    assert first.patient_id is not None and second.patient_id is not None and first.ins and second.ins
    with pytest.raises(MergeRefused) as caught, store.session() as session:
        do_merge_identities(session, OPERATOR, first.patient_id, second.patient_id, "doublon")
    assert (caught.value.status, caught.value.message) == (
        422,
        f"fusion refusée : Patient/{first.patient_id} et Patient/{second.patient_id} sont deux identités "
        f"qualifiées d'INS différents ({first.ins.value} ≠ {second.ins.value}) : deux personnes distinctes, "
        "à signaler à la cellule d'identitovigilance (collision)",
    )
    with store.session(readonly=True) as session:
        assert session.read("Patient", second.patient_id).version == 1


def test_a_patient_is_not_merged_into_itself_and_a_merge_needs_a_reason(store: FhirStore) -> None:
    (only,) = create(store, patient("Martin", "Jeanne", "1985-01-15"))
    with pytest.raises(MergeRefused) as caught, store.session() as session:
        do_merge_identities(session, OPERATOR, only, only, "doublon")
    assert (
        caught.value.message == f"fusion impossible : Patient/{only} ne peut pas être fusionné avec lui-même"
    )
    with pytest.raises(InvalidRequest) as missing, store.session() as session:
        do_merge_identities(session, OPERATOR, only, "other", " ")
    assert (missing.value.status, missing.value.message) == (400, "fusion : le motif est obligatoire")
    with pytest.raises(NotFound) as unknown, store.session() as session:
        do_merge_identities(session, OPERATOR, only, "nobody", "doublon")
    assert unknown.value.message == "Patient/nobody inconnu"


def test_a_merge_that_would_lose_a_reference_leaves_the_store_unchanged(
    store: FhirStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept, merged = create(store, *(patient("Martin", "Jeanne", "1985-01-15") for _ in range(2)))
    observations = create(store, *(observation(merged, f"{n}-1") for n in range(2)))
    real = vigilance.repoint_references
    calls = []

    def forgetful(resource: Any, old: str, new: str) -> tuple[Any, int]:
        calls.append(resource["id"])
        return (resource, 0) if len(calls) == 1 else real(resource, old, new)

    monkeypatch.setattr(vigilance, "repoint_references", forgetful)
    with pytest.raises(MergeIncomplete) as caught, store.session() as session:
        do_merge_identities(session, OPERATOR, kept, merged, "doublon")
    assert caught.value.status == 500
    assert caught.value.message == (
        f"fusion annulée : 2 ressources désignaient Patient/{merged} ou Patient/{kept}, 1 désignent "
        f"Patient/{kept} après réécriture (1 désignent encore Patient/{merged})"
    )
    with store.session(readonly=True) as session:
        assert ids(session, "Observation", [("subject", f"Patient/{merged}")]) == set(observations)
        assert session.read("Patient", merged).version == 1
