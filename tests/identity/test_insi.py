"""The simulated INSi teleservice: its registry (SQLite and PostgreSQL), the matching rules, the
return codes and what they ask for, bulk loading, and qualifying a stored identity with it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import Engine, delete

from socle.identity.actions import do_create_identity
from socle.identity.errors import InvalidTrait
from socle.identity.insi import (
    FOUND,
    NOT_FOUND,
    REGISTRY_TABLES,
    SEVERAL,
    InsiResponse,
    InvalidCarteVitale,
    RegistryConflict,
    RegistryPerson,
    do_qualify_with_insi,
    insi_queries,
    load_registry,
    lookup_by_carte_vitale,
    lookup_by_traits,
    matching_name,
    register_person,
    registry_size,
    synthetic_people,
    verify,
)
from socle.identity.record import IdentityRecord, InsKind, InsMatricule, Status
from socle.identity.traits import Sex, StrictTraits
from socle.store.repository import FhirStore
from tests.identity.factories import JEANNE_NIR, OPERATOR, jeanne, jeanne_ins, made_up_nir, provisional_jeanne

DAY = date(2024, 5, 17)

# Made-up people. Jeanne has two strict homonyms on (name, first first name, sex, birth date), and
# those two share their whole list of first names: only the birthplace tells them apart.
JEANNE = RegistryPerson(jeanne_ins(), jeanne(), ("0100000000001",))
JEANNE_LYON = RegistryPerson(
    InsMatricule(InsKind.NIR, made_up_nir(place="69381", order="007")),
    jeanne(birth_given_names=("Jeanne", "Marie"), birthplace_code="69381"),
)
JEANNE_MARSEILLE = RegistryPerson(
    InsMatricule(InsKind.NIR, made_up_nir(place="13201", order="008")),
    jeanne(birth_given_names=("Jeanne", "Marie"), birthplace_code="13201"),
)
JEAN_PIERRE = RegistryPerson(
    InsMatricule(InsKind.NIR, made_up_nir(sex="1", year="70", month="03", place="33063", order="011")),
    StrictTraits("Dupont", ("Jean-Pierre", "Marc"), "1970-03-04", Sex.MALE, "33063"),
    previous_ins=(InsMatricule(InsKind.NIA, made_up_nir(sex="7", year="70", month="03", place="33063")),),
)
HELENE = RegistryPerson(
    InsMatricule(InsKind.NIR, made_up_nir(sex="2", year="92", month="07", place="59350", order="012")),
    StrictTraits("Lefèvre d’Arc", ("Hélène",), "1992-07-21", Sex.FEMALE, "59350"),
    ("0100000000002",),
)
# Léo is on his mother Hélène's Carte Vitale.
LEO = RegistryPerson(
    InsMatricule(InsKind.NIR, made_up_nir(sex="1", year="15", month="06", place="75115", order="013")),
    StrictTraits("Lefèvre d’Arc", ("Léo",), "2015-06-02", Sex.MALE, "75115"),
    ("0100000000002",),
)
PEOPLE = (JEANNE, JEANNE_LYON, JEANNE_MARSEILLE, JEAN_PIERRE, HELENE, LEO)


@pytest.fixture
def registry(engine: Engine) -> Iterator[Engine]:
    # The PostgreSQL test database is shared by a worker's tests and the store fixture only empties
    # the store's tables: empty the registry's too.
    with engine.begin() as connection:
        for table in REGISTRY_TABLES:
            connection.execute(delete(table))
    load_registry(engine, PEOPLE)
    yield engine


def traits_of(engine: Engine, given: str | list[str], **changes: str) -> InsiResponse:
    query = {"birth_name": "Martin", "sex": "F", "birth_date": "1985-01-15", **changes}
    return lookup_by_traits(engine, given_names=given, **query)


# -- return codes and what they ask for -------------------------------------------------------------


def test_one_identity_is_00_with_the_ins_and_the_traits_as_the_registry_holds_them(registry: Engine) -> None:
    response = traits_of(registry, "jeanne louise")
    assert (response.code, response.ins, response.traits) == (FOUND, jeanne_ins(), jeanne())
    assert response.to_result().found() == (jeanne_ins(), jeanne())


def test_return_code_02_asks_for_more_first_names_then_the_birthplace(registry: Engine) -> None:
    first = traits_of(registry, "Jeanne")
    assert (first.code, first.ins, first.traits) == (SEVERAL, None, None)
    assert first.message == (
        "plusieurs identités trouvées : relancer la recherche avec tous les prénoms de naissance, "
        "dans l'ordre de la pièce d'identité"
    )
    second = traits_of(registry, ["Jeanne", "Marie"])
    assert second.code == SEVERAL
    assert second.message == (
        "plusieurs identités trouvées : relancer la recherche en ajoutant le code INSEE du lieu de naissance"
    )
    third = traits_of(registry, ["Jeanne", "Marie"], birthplace_code="69381")
    assert (third.code, third.ins) == (FOUND, JEANNE_LYON.ins)


def test_several_identities_with_every_trait_go_to_identitovigilance(registry: Engine) -> None:
    twin = RegistryPerson(
        InsMatricule(InsKind.NIR, made_up_nir(place="69381", order="099")), JEANNE_LYON.traits
    )
    register_person(registry, twin)
    response = traits_of(registry, "Jeanne Marie", birthplace_code="69381")
    assert response.code == SEVERAL
    assert response.message == (
        "plusieurs identités trouvées avec tous les traits : identité à signaler à la cellule "
        "d'identitovigilance"
    )


def test_no_identity_is_01(registry: Engine) -> None:
    response = traits_of(registry, "Jeanne", birth_date="1985-01-16")
    assert (response.code, response.ins) == (NOT_FOUND, None)
    assert response.message == (
        "aucune identité trouvée : vérifier sur la pièce d'identité le nom de naissance, le premier "
        "prénom de naissance, le sexe et la date de naissance"
    )
    assert response.to_json() == {
        "code": "01",
        "libelle": "aucune identité trouvée",
        "message": response.message,
    }


# -- matching rules ---------------------------------------------------------------------------------


def helene(registry: Engine, birth_name: str, given: str = "Helene") -> str:
    return lookup_by_traits(
        registry, birth_name=birth_name, given_names=given, sex="F", birth_date="1992-07-21"
    ).code


def test_a_name_with_an_accent_matches_its_unaccented_form_but_a_prefix_does_not(registry: Engine) -> None:
    assert helene(registry, "LEFEVRE D'ARC") == FOUND  # registered "Lefèvre d’Arc", "Hélène"
    assert helene(registry, "lefèvre d'arc", "HÉLÈNE") == FOUND
    assert helene(registry, "Lefevre d’ Arc") == FOUND  # typographic apostrophe, space after it
    assert helene(registry, "LEFEVRE") == NOT_FOUND  # a prefix of the name
    assert helene(registry, "LEFEVRE D'AR") == NOT_FOUND
    assert helene(registry, "LEFEVRE D'ARC", "HELEN") == NOT_FOUND  # a prefix of the first name


def test_apostrophes_hyphens_and_spaces_are_significant(registry: Engine) -> None:
    assert helene(registry, "LEFEVRE D ARC") == NOT_FOUND
    assert helene(registry, "LEFEVRE DARC") == NOT_FOUND
    assert helene(registry, "LEFEVRE-D'ARC") == NOT_FOUND
    assert helene(registry, "LEFEBVRE D'ARC") == NOT_FOUND  # sounds the same: no phonetic match


def test_the_first_name_is_the_first_birth_first_name_or_the_whole_list(registry: Engine) -> None:
    def dupont(given: str | list[str]) -> str:
        return lookup_by_traits(
            registry, birth_name="Dupont", given_names=given, sex="M", birth_date="1970-03-04"
        ).code

    assert dupont("Jean-Pierre") == FOUND
    assert dupont("jean - pierre") == FOUND  # spaces around a hyphen are a typing matter
    assert dupont(["Jean-Pierre", "Marc"]) == FOUND
    assert dupont("JEAN-PIERRE MARC") == FOUND
    assert dupont("JEAN") == NOT_FOUND  # a part of a compound first name is not the first name
    assert dupont("JEAN PIERRE") == NOT_FOUND  # two first names, not the compound one
    assert dupont("MARC") == NOT_FOUND  # the second first name alone
    assert dupont("MARC JEAN-PIERRE") == NOT_FOUND  # the list in another order


def test_sex_birth_date_and_birthplace_are_compared_as_given(registry: Engine) -> None:
    assert traits_of(registry, "Jeanne Louise", sex="M").code == NOT_FOUND
    assert traits_of(registry, "Jeanne Louise", birth_date="1985-01").code == NOT_FOUND
    assert traits_of(registry, "Jeanne Louise", birthplace_code="75115").code == FOUND
    # Paris 15e is where she was born, not "Paris": an arrondissement is not its city.
    assert traits_of(registry, "Jeanne Louise", birthplace_code="75056").code == NOT_FOUND


def test_a_former_commune_code_names_the_commune_it_became(registry: Engine) -> None:
    corsican = RegistryPerson(
        InsMatricule(InsKind.NIR, made_up_nir(sex="1", year="60", month="02", place="2A004")),
        StrictTraits("Colonna", ("Paul",), "1960-02-10", Sex.MALE, "2A004"),
    )
    register_person(registry, corsican)
    found = lookup_by_traits(
        registry,
        birth_name="Colonna",
        given_names="Paul",
        sex="M",
        birth_date="1960-02-10",
        birthplace_code="20004",  # Ajaccio before Corsica was split in 1976
    )
    assert (found.code, found.ins) == (FOUND, corsican.ins)


def test_no_space_around_a_hyphen_or_an_apostrophe() -> None:
    assert matching_name("d' Arc") == "D'ARC"
    assert matching_name("Jean - Pierre") == "JEAN-PIERRE"


def test_an_incomplete_civil_status_is_found_by_its_partial_date(registry: Engine) -> None:
    unknown_day = RegistryPerson(
        InsMatricule(InsKind.NIA, made_up_nir(sex="3", year="80", month="35", place="99352")),
        StrictTraits("Benali", ("Karim",), "1980", Sex.MALE, "99352"),
    )
    register_person(registry, unknown_day)
    found = lookup_by_traits(registry, birth_name="Benali", given_names="Karim", sex="M", birth_date="1980")
    assert (found.code, found.ins, found.traits) == (FOUND, unknown_day.ins, unknown_day.traits)
    again = lookup_by_traits(
        registry, birth_name="Benali", given_names="Karim", sex="M", birth_date="1980-01-01"
    )
    assert again.code == NOT_FOUND


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"birth_name": "Martin2"}, "nom de naissance invalide : caractère « 2 » non autorisé ('Martin2')"),
        ({"birth_name": "  "}, "nom de naissance absent"),
        ({"sex": "X"}, "sexe invalide : 'X' (M, F ou I attendu)"),
        ({"birth_date": "15/01/1985"}, "date de naissance invalide : '15/01/1985' (AAAA-MM-JJ attendu)"),
        ({"birthplace_code": "7511"}, "code lieu de naissance invalide : '7511' (code INSEE à 5 caractères)"),
    ],
)
def test_a_trait_that_cannot_be_one_is_refused(changes: dict[str, str], message: str) -> None:
    query = {"birth_name": "Martin", "sex": "F", "birth_date": "1985-01-15", **changes}
    # The traits are checked before the registry is reached: no engine is needed.
    with pytest.raises(InvalidTrait) as caught:
        lookup_by_traits(None, given_names="Jeanne", **query)  # type: ignore[arg-type]
    assert caught.value.message == message


# -- Carte Vitale and verification ------------------------------------------------------------------


def test_lookup_by_carte_vitale(registry: Engine) -> None:
    found = lookup_by_carte_vitale(registry, "01 0000 0000 001")
    assert (found.code, found.ins, found.traits) == (FOUND, jeanne_ins(), jeanne())
    nobody = lookup_by_carte_vitale(registry, "0199999999")
    assert nobody.code == NOT_FOUND
    assert (
        nobody.message
        == "aucune identité trouvée pour cette carte Vitale : rechercher par les traits d'identité"
    )


def test_a_family_card_asks_for_the_beneficiary_birth_date(registry: Engine) -> None:
    family = lookup_by_carte_vitale(registry, "0100000000002")
    assert family.code == SEVERAL
    assert family.message == (
        "plusieurs bénéficiaires sur cette carte Vitale : préciser la date de naissance du bénéficiaire"
    )
    child = lookup_by_carte_vitale(registry, "0100000000002", birth_date="2015-06-02")
    assert (child.code, child.ins) == (FOUND, LEO.ins)


def test_a_carte_vitale_number_is_digits() -> None:
    with pytest.raises(InvalidCarteVitale) as caught:
        lookup_by_carte_vitale(None, "12AB")  # type: ignore[arg-type]
    assert caught.value.message == "numéro de carte Vitale invalide : '12AB' (8 à 20 chiffres attendus)"


def test_verification(registry: Engine) -> None:
    ok = verify(registry, jeanne_ins(), jeanne())
    assert (ok.code, ok.ins, ok.traits) == (FOUND, jeanne_ins(), jeanne())
    assert ok.message == "INS vérifié : le matricule et les traits correspondent"
    wrong = verify(registry, jeanne_ins(), jeanne(birth_date="1985-01-16", birth_name="Martin-Durand"))
    assert (wrong.code, wrong.traits) == (NOT_FOUND, None)
    assert wrong.message == (
        f"traits incohérents avec le matricule INS {JEANNE_NIR} : nom de naissance, date de naissance"
    )
    unknown = InsMatricule(InsKind.NIR, made_up_nir(order="500"))
    assert verify(registry, unknown, jeanne()).message == (
        f"matricule INS {unknown.value} inconnu (OID 1.2.250.1.213.1.4.8)"
    )
    old = JEAN_PIERRE.previous_ins[0]
    replaced = verify(registry, old, JEAN_PIERRE.traits)
    assert (replaced.code, replaced.message) == (
        NOT_FOUND,
        f"le matricule INS {old.value} n'est plus en usage (remplacé) : relancer une recherche par carte "
        "Vitale ou par traits pour obtenir l'INS en vigueur",
    )


def test_a_found_identity_carries_its_former_matricules(registry: Engine) -> None:
    found = lookup_by_traits(
        registry, birth_name="Dupont", given_names="Jean-Pierre", sex="M", birth_date="1970-03-04"
    )
    assert found.previous_ins == JEAN_PIERRE.previous_ins
    assert found.to_json()["individu"] == {
        "ins": {"matricule": JEAN_PIERRE.ins.value, "oid": "1.2.250.1.213.1.4.8", "type": "INS-NIR"},
        "historique": [
            {"matricule": JEAN_PIERRE.previous_ins[0].value, "oid": "1.2.250.1.213.1.4.9", "type": "INS-NIA"}
        ],
        "traits": {
            "nom_naissance": "DUPONT",
            "prenoms": "JEAN-PIERRE MARC",
            "premier_prenom": "JEAN-PIERRE",
            "sexe": "M",
            "date_naissance": "1970-03-04",
            "lieu_naissance": "33063",
        },
    }


# -- writing the registry ---------------------------------------------------------------------------


def test_a_registry_person_has_an_ins_consistent_with_the_traits() -> None:
    with pytest.raises(InvalidTrait) as caught:
        RegistryPerson(jeanne_ins(), jeanne(sex=Sex.MALE))
    assert caught.value.message == (
        f"matricule INS {JEANNE_NIR} incohérent avec les traits : "
        "sexe : le NIR indique female, les traits male"
    )


def test_a_person_is_registered_once(registry: Engine) -> None:
    with pytest.raises(RegistryConflict) as caught:
        register_person(registry, JEANNE)
    assert caught.value.status == 409
    assert caught.value.message.startswith(
        "personne déjà présente dans le référentiel (même matricule INS, ancien matricule ou carte Vitale) : "
        "chargement annulé"
    )


def test_bulk_load_streams_by_batches_all_or_nothing(registry: Engine) -> None:
    people = list(synthetic_people(300, seed=7))
    assert load_registry(registry, iter(people), batch_size=64) == 300
    assert registry_size(registry) == 300 + len(PEOPLE)
    sample = people[123]
    by_card = lookup_by_carte_vitale(registry, sample.cartes_vitale[0])
    assert (by_card.code, by_card.ins, by_card.traits) == (FOUND, sample.ins, sample.traits)
    # A second load with one person already there changes nothing.
    with pytest.raises(RegistryConflict):
        load_registry(registry, [*synthetic_people(3, seed=99), people[0]], batch_size=2)
    assert registry_size(registry) == 300 + len(PEOPLE)


def test_synthetic_people_are_deterministic_with_unique_consistent_numbers() -> None:
    people = list(synthetic_people(2000, seed=3))
    assert people[:5] == list(synthetic_people(5, seed=3))
    assert len({p.ins for p in people}) == 2000
    assert all(p.ins.kind is InsKind.NIR_DEMO for p in people)
    assert sum(1 for p in people if p.previous_ins) == 40


# -- qualifying a stored identity -------------------------------------------------------------------


def test_insi_queries_follow_the_retry_order() -> None:
    queries = insi_queries(jeanne())
    assert [(q.given_names, q.birthplace_code) for q in queries] == [
        (("JEANNE",), None),
        (("JEANNE", "LOUISE"), None),
        (("JEANNE", "LOUISE"), "75115"),
    ]


def test_qualify_retries_with_all_first_names_and_records_the_ins(registry: Engine) -> None:
    store = FhirStore(registry)
    with store.session() as session:
        patient_id = do_create_identity(session, OPERATOR, provisional_jeanne()).patient_id
    assert patient_id is not None
    # Inside a writing session: the registry is read beside SQLite's write lock, not behind it.
    with store.session() as session:
        outcome = do_qualify_with_insi(session, OPERATOR, registry, patient_id, on=DAY)
    assert outcome.applied
    assert [q.given_names for q in outcome.queries] == [("JEANNE",), ("JEANNE", "LOUISE")]
    assert (outcome.record.status, outcome.record.ins, outcome.record.insi_date) == (
        Status.RECUP,
        jeanne_ins(),
        DAY,
    )
    assert outcome.record.version == 2


def test_qualify_changes_nothing_when_the_registry_does_not_know_the_person(registry: Engine) -> None:
    store = FhirStore(registry)
    stranger = IdentityRecord(StrictTraits("Inconnue", ("Zoé",), "2001-02-03", Sex.FEMALE, "35238"))
    with store.session() as session:
        created = do_create_identity(session, OPERATOR, stranger)
    assert created.patient_id is not None
    with store.session() as session:
        outcome = do_qualify_with_insi(session, OPERATOR, registry, created.patient_id, on=DAY)
    assert (outcome.response.code, outcome.applied, len(outcome.queries)) == (NOT_FOUND, False, 1)
    assert (outcome.record.status, outcome.record.version) == (Status.PROV, 1)
