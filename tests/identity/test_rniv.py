"""The RNIV status machine: the table itself, then the transitions it allows and forbids."""

from __future__ import annotations

import json
import tarfile
from datetime import date
from pathlib import Path

import pytest

from socle.identity import rules
from socle.identity.errors import ForbiddenTransition, InsiMismatch, InvalidTrait, UnknownDocumentType
from socle.identity.record import Attribute, IdentityRecord, InsiResult, InsKind, InsMatricule, Status
from socle.identity.rules import Criteria, criteria_of, rniv_table, status_of
from socle.identity.traits import Sex
from tests.identity.factories import (
    JEANNE_NIR,
    insi_found,
    jeanne,
    jeanne_ins,
    made_up_nir,
    provisional_jeanne,
)

DAY = date(2024, 5, 17)
LATER = date(2024, 6, 3)


def qualified_jeanne() -> IdentityRecord:
    record = rules.retrieve_from_insi(provisional_jeanne(), insi_found(), on=DAY)
    return rules.verify_with_document(record, "PA", on=DAY)


# -- the table ------------------------------------------------------------------------------------


def test_four_exclusive_statuses_come_from_two_criteria() -> None:
    assert status_of(Criteria(retrieved_via_insi=False, checked_with_document=False)) is Status.PROV
    assert status_of(Criteria(retrieved_via_insi=True, checked_with_document=False)) is Status.RECUP
    assert status_of(Criteria(retrieved_via_insi=False, checked_with_document=True)) is Status.VALI
    assert status_of(Criteria(retrieved_via_insi=True, checked_with_document=True)) is Status.QUAL
    assert all(status_of(criteria_of(s)) is s for s in Status)


def test_retrieving_via_insi_adds_the_insi_criterion_and_keeps_the_other() -> None:
    for before, after in rniv_table().transitions["retrieve_from_insi"].items():
        assert criteria_of(after) == Criteria(True, criteria_of(before).checked_with_document)


def test_checking_a_document_adds_the_document_criterion_and_keeps_the_other() -> None:
    for before, after in rniv_table().transitions["verify_with_document"].items():
        assert criteria_of(after) == Criteria(criteria_of(before).retrieved_via_insi, True)


def test_editing_a_strict_trait_drops_the_insi_criterion_only() -> None:
    for before, after in rniv_table().transitions["edit_strict_trait"].items():
        assert criteria_of(after) == Criteria(False, criteria_of(before).checked_with_document)


def test_a_doubtful_or_fictitious_identity_is_never_validated_in_the_table() -> None:
    table = rniv_table()
    for attribute in (Attribute.DOUBTFUL, Attribute.FICTITIOUS):
        assert not table.attributes[attribute].allowed_statuses & {Status.VALI, Status.QUAL}
    assert table.attributes[Attribute.FICTITIOUS].allowed_statuses == {Status.PROV}
    assert table.attributes[Attribute.HOMONYM].allowed_statuses == set(Status)


def test_high_trust_documents_are_those_of_the_rniv() -> None:
    documents = rniv_table().documents
    assert {code for code, d in documents.items() if d.high_trust} == {
        "PA",
        "CN",
        "AN",
        "LE",
        "CS",
        "DC",
        "AC",
        "IE",
    }
    for low in ("PC", "CV", "CE", "CC", "TC", "CM"):
        assert not documents[low].high_trust


def test_a_broken_table_is_refused_on_load() -> None:
    raw = json.loads(rules.DATA_FILE.read_text(encoding="utf-8"))
    del raw["transitions"]["edit_strict_trait"]["QUAL"]
    with pytest.raises(ValueError, match="edit_strict_trait"):
        rules.load_rniv_table(raw)


def test_the_document_table_covers_fr_core_and_its_ins_value_set_is_high_trust(shared_data: Path) -> None:
    with tarfile.open(shared_data / "fr-core-2.2.0" / "package.tgz") as package:

        def load(name: str) -> dict[str, object]:
            member = package.extractfile(f"package/{name}")
            assert member is not None
            loaded: dict[str, object] = json.load(member)
            return loaded

        code_system = load("CodeSystem-fr-core-cs-mode-validation-identity.json")
        value_set = load("ValueSet-fr-core-vs-mode-validation-identity-ins.json")
    fr_core_codes = {c["code"] for c in code_system["concept"]}  # type: ignore[attr-defined]
    documents = rniv_table().documents
    assert fr_core_codes <= set(documents)
    ins_codes = {c["code"] for c in value_set["compose"]["include"][0]["concept"]}  # type: ignore[index]
    assert all(documents[code].high_trust for code in ins_codes)


# -- transitions ----------------------------------------------------------------------------------


def test_retrieving_a_provisional_identity_via_insi_makes_it_recup_with_the_ins_traits() -> None:
    insi_traits = jeanne(birth_given_names=("Jeanne", "Louise", "Marie"))
    record = rules.retrieve_from_insi(provisional_jeanne(), insi_found(insi_traits), on=DAY)
    assert record.status is Status.RECUP
    assert record.traits == insi_traits  # the INS traits replace the local ones
    assert record.ins == jeanne_ins()
    assert record.insi_date == DAY
    assert record.used_name == "Dupont"  # used names are not INS traits: INSi leaves them


def test_verifying_a_recup_identity_with_a_passport_makes_it_qual() -> None:
    record = qualified_jeanne()
    assert record.status is Status.QUAL
    assert (record.validation_document, record.validation_date) == ("PA", DAY)


def test_verifying_a_provisional_identity_with_an_identity_card_makes_it_vali() -> None:
    record = rules.verify_with_document(provisional_jeanne(), "CN", on=DAY)
    assert record.status is Status.VALI


def test_retrieving_a_validated_identity_via_insi_makes_it_qual() -> None:
    validated = rules.verify_with_document(provisional_jeanne(), "LE", on=DAY)
    assert rules.retrieve_from_insi(validated, insi_found(), on=LATER).status is Status.QUAL


@pytest.mark.parametrize("document", ["PC", "CV", "TC"])
def test_a_low_trust_document_gives_no_criterion(document: str) -> None:
    record = provisional_jeanne()
    assert rules.verify_with_document(record, document, on=DAY) is record


def test_an_unknown_document_type_is_refused() -> None:
    with pytest.raises(UnknownDocumentType) as caught:
        rules.verify_with_document(provisional_jeanne(), "XX", on=DAY)
    assert caught.value.message.startswith("type de document d'identité inconnu : XX (attendu : AC, AN, CC")


def test_editing_the_birth_name_of_a_qual_identity_makes_it_vali() -> None:
    record = rules.edit_strict_trait(qualified_jeanne(), "birth_name", "Martin-Durand")
    assert record.status is Status.VALI
    assert record.traits.birth_name == "MARTIN-DURAND"
    assert record.insi_date is None
    assert record.validation_document == "PA"


@pytest.mark.parametrize(
    ("trait", "value"),
    [
        ("birth_given_names", ["Jeanne"]),
        ("birth_date", "1985-01-16"),
        ("sex", Sex.UNKNOWN),
        ("birthplace_code", "2A004"),
    ],
)
def test_editing_any_strict_trait_of_a_recup_identity_makes_it_provisional(trait: str, value: object) -> None:
    recup = rules.retrieve_from_insi(provisional_jeanne(), insi_found(), on=DAY)
    assert rules.edit_strict_trait(recup, trait, value).status is Status.PROV  # type: ignore[arg-type]


def test_editing_a_validated_identity_keeps_it_validated() -> None:
    validated = rules.verify_with_document(provisional_jeanne(), "PA", on=DAY)
    assert rules.edit_strict_trait(validated, "birth_date", "1985-01-16").status is Status.VALI


def test_writing_the_same_trait_in_another_spelling_is_not_an_edit() -> None:
    record = qualified_jeanne()
    assert rules.edit_strict_trait(record, "birth_name", "martin") is record


def test_an_unknown_trait_is_refused() -> None:
    with pytest.raises(InvalidTrait) as caught:
        rules.edit_strict_trait(provisional_jeanne(), "used_name", "X")
    assert caught.value.message == (
        "trait strict inconnu : used_name "
        "(attendu : birth_name, birth_given_names, birth_date, sex, birthplace_code)"
    )


def test_a_doubtful_identity_cannot_be_validated() -> None:
    doubtful = rules.add_attribute(provisional_jeanne(), Attribute.DOUBTFUL)
    with pytest.raises(ForbiddenTransition) as caught:
        rules.verify_with_document(doubtful, "PA", on=DAY)
    assert caught.value.message == (
        "transition interdite par le RNIV : une identité douteuse ne peut pas devenir « identité validée »"
    )


def test_a_doubtful_identity_may_still_be_retrieved_via_insi_but_not_qualified() -> None:
    doubtful = rules.add_attribute(provisional_jeanne(), Attribute.DOUBTFUL)
    recup = rules.retrieve_from_insi(doubtful, insi_found(), on=DAY)
    assert recup.status is Status.RECUP
    with pytest.raises(ForbiddenTransition) as caught:
        rules.verify_with_document(recup, "CN", on=DAY)
    assert caught.value.message.endswith("ne peut pas devenir « identité qualifiée »")


def test_a_fictitious_identity_is_never_retrieved_via_insi() -> None:
    fictitious = rules.add_attribute(provisional_jeanne(), Attribute.FICTITIOUS)
    with pytest.raises(ForbiddenTransition) as caught:
        rules.retrieve_from_insi(fictitious, insi_found(), on=DAY)
    assert caught.value.message == (
        "transition interdite par le RNIV : une identité fictive ne peut pas devenir « identité récupérée »"
    )


def test_casting_doubt_on_a_qualified_identity_drops_its_document_criterion() -> None:
    record = rules.add_attribute(qualified_jeanne(), Attribute.DOUBTFUL)
    assert record.status is Status.RECUP
    assert record.attributes == {Attribute.DOUBTFUL}
    assert record.validation_document is None


def test_lifting_a_doubt_does_not_revalidate() -> None:
    doubtful = rules.add_attribute(qualified_jeanne(), Attribute.DOUBTFUL)
    assert rules.remove_attribute(doubtful, Attribute.DOUBTFUL).status is Status.RECUP


def test_a_qualified_identity_cannot_be_declared_fictitious() -> None:
    with pytest.raises(ForbiddenTransition) as caught:
        rules.add_attribute(qualified_jeanne(), Attribute.FICTITIOUS)
    assert caught.value.message == (
        "transition interdite par le RNIV : une identité qualifiée ne peut pas être déclarée fictive"
    )


def test_a_homonym_may_be_qualified() -> None:
    homonym = rules.add_attribute(provisional_jeanne(), Attribute.HOMONYM)
    record = rules.verify_with_document(rules.retrieve_from_insi(homonym, insi_found(), on=DAY), "PA", on=DAY)
    assert (record.status, record.attributes) == (Status.QUAL, frozenset({Attribute.HOMONYM}))


# -- INSi answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        ("01", "aucune identité trouvée"),
        ("02", "plusieurs identités trouvées (ajouter les autres prénoms, puis le lieu de naissance)"),
    ],
)
def test_an_insi_answer_without_a_single_identity_is_not_applied(code: str, meaning: str) -> None:
    with pytest.raises(InsiMismatch) as caught:
        rules.retrieve_from_insi(provisional_jeanne(), InsiResult(code), on=DAY)
    assert (
        caught.value.message
        == f"le téléservice INSi n'a pas renvoyé une identité unique : {code} ({meaning})"
    )


def test_a_validated_identity_is_only_qualified_when_insi_returns_the_checked_traits() -> None:
    validated = rules.verify_with_document(provisional_jeanne(), "PA", on=DAY)
    other = jeanne(birth_date="1985-01-16")
    with pytest.raises(InsiMismatch) as caught:
        rules.retrieve_from_insi(validated, insi_found(other, InsMatricule(InsKind.NIR, JEANNE_NIR)), on=DAY)
    assert caught.value.message == (
        "traits INSi incohérents avec l'identité validée (local ≠ INSi) : "
        "date de naissance (1985-01-15 ≠ 1985-01-16)"
    )


def test_an_insi_matricule_that_contradicts_the_insi_traits_is_refused() -> None:
    male_nir = InsMatricule(InsKind.NIR, made_up_nir(sex="1"))
    with pytest.raises(InsiMismatch) as caught:
        rules.retrieve_from_insi(provisional_jeanne(), insi_found(ins=male_nir), on=DAY)
    assert caught.value.message == (
        "matricule INS incohérent avec les traits INSi : sexe : le NIR indique male, les traits female"
    )


def test_a_nia_replaced_by_a_nir_is_kept_as_a_former_matricule() -> None:
    nia = InsMatricule(InsKind.NIA, made_up_nir(sex="8"))
    with_nia = rules.retrieve_from_insi(provisional_jeanne(), insi_found(ins=nia), on=DAY)
    with_nir = rules.retrieve_from_insi(with_nia, insi_found(), on=LATER)
    assert with_nir.ins == jeanne_ins()
    assert with_nir.previous_ins == (nia,)
    assert with_nir.insi_date == LATER


# -- records before they are stored ---------------------------------------------------------------


def test_a_recup_record_needs_an_ins() -> None:
    with pytest.raises(ForbiddenTransition) as caught:
        rules.check_record(IdentityRecord(jeanne(), status=Status.RECUP))
    assert caught.value.message == "identité récupérée sans matricule INS : l'INS vient de l'INSi"


def test_a_validated_record_needs_a_high_trust_document() -> None:
    with pytest.raises(ForbiddenTransition) as caught:
        rules.check_record(IdentityRecord(jeanne(), status=Status.VALI, validation_document="PC"))
    assert caught.value.message == (
        "identité validée : « Permis de conduire » n'est pas un dispositif "
        "d'identification à haut niveau de confiance"
    )


def test_a_record_cannot_be_both_doubtful_and_validated() -> None:
    record = IdentityRecord(
        jeanne(), status=Status.VALI, validation_document="PA", attributes=frozenset({Attribute.DOUBTFUL})
    )
    with pytest.raises(ForbiddenTransition) as caught:
        rules.check_record(record)
    assert caught.value.message == (
        "interdit par le RNIV : une identité douteuse ne peut pas avoir le statut « identité validée »"
    )
