"""Strict traits as the RNIV writes them, and the COG commune table birthplaces are checked against."""

from __future__ import annotations

import gzip
import json
import re

import pytest

from socle.identity.communes import DATA_FILE, commune, commune_table, current_commune_code, is_known_commune
from socle.identity.errors import InvalidTrait, UnknownBirthplace
from socle.identity.traits import Sex, StrictTraits, check_birth_date, check_birthplace_code, normalize_name
from tests.identity.factories import jeanne

# -- the commune table ----------------------------------------------------------------------------


def test_the_table_knows_current_communes_with_their_department() -> None:
    assert commune("75056") is not None and commune("75056").name == "Paris"  # type: ignore[union-attr]
    ajaccio = commune("2A004")
    assert ajaccio is not None and (ajaccio.name, ajaccio.department) == ("Ajaccio", "2A")
    saint_denis = commune("97411")
    assert saint_denis is not None and (saint_denis.name, saint_denis.department) == ("Saint-Denis", "974")


def test_municipal_arrondissements_are_birthplaces_within_their_commune() -> None:
    assert is_known_commune("75115")
    assert current_commune_code("75115") == "75056"
    assert current_commune_code("13201") == "13055"
    assert current_commune_code("69381") == "69123"


def test_a_former_code_names_todays_commune() -> None:
    # Ajaccio was 20004 before Corsica was split into 2A and 2B in 1976.
    assert is_known_commune("20004")
    assert current_commune_code("20004") == "2A004"
    assert commune("20004") == commune("2A004")


def test_an_unknown_code_is_not_a_commune() -> None:
    assert commune("75999") is None
    assert not is_known_commune("75999")
    assert current_commune_code("75999") == "75999"


def test_the_table_covers_the_cog_and_every_link_points_to_a_listed_commune() -> None:
    table = commune_table()
    assert len(table.communes) > 36_000
    shape = re.compile(r"[0-9]{5}|2[AB][0-9]{3}")
    assert all(shape.fullmatch(code) for code in table.communes)
    assert all(target in table.communes for target in table.within.values())
    assert all(target in table.communes for target in table.former.values())
    assert not set(table.former) & set(table.communes)


def test_the_table_file_stays_compact_and_says_where_it_comes_from() -> None:
    assert DATA_FILE.stat().st_size < 400_000
    with gzip.open(DATA_FILE, "rt", encoding="utf-8") as handle:
        raw = json.load(handle)
    assert "Licence Ouverte" in raw["licence"]
    assert set(raw) == {"source", "licence", "communes", "within", "former"}
    assert (DATA_FILE.parent / "README.md").is_file()


# -- birthplace codes -----------------------------------------------------------------------------


def test_an_unknown_commune_code_is_refused() -> None:
    with pytest.raises(UnknownBirthplace) as caught:
        check_birthplace_code("75999")
    assert caught.value.message == "code commune INSEE 75999 inconnu"


@pytest.mark.parametrize("code", ["75056", "75115", "2A004", "97411", "20004", "99352", "99999"])
def test_known_communes_countries_and_the_unknown_birthplace_are_accepted(code: str) -> None:
    assert check_birthplace_code(code) == code


def test_a_country_code_outside_the_continents_is_refused() -> None:
    with pytest.raises(UnknownBirthplace) as caught:
        check_birthplace_code("99712")
    assert caught.value.message == "code pays INSEE 99712 invalide"


def test_a_birthplace_code_must_have_five_characters() -> None:
    with pytest.raises(UnknownBirthplace) as caught:
        check_birthplace_code("7511")
    assert caught.value.message == "code lieu de naissance invalide : '7511' (code INSEE à 5 caractères)"


# -- names and dates ------------------------------------------------------------------------------


def test_strict_names_are_capitals_without_diacritics() -> None:
    assert normalize_name("  Lefèvre-d’Aubigné ", "nom de naissance") == "LEFEVRE-D'AUBIGNE"
    assert normalize_name("Cœur", "nom de naissance") == "COEUR"


def test_a_name_with_a_digit_is_refused() -> None:
    with pytest.raises(InvalidTrait) as caught:
        normalize_name("Martin2", "nom de naissance")
    assert caught.value.message == "nom de naissance invalide : caractère « 2 » non autorisé ('Martin2')"


def test_birth_first_names_are_one_list_separated_by_spaces() -> None:
    assert jeanne(birth_given_names=("Jeanne Louise",)) == jeanne(birth_given_names=("JEANNE", "LOUISE"))
    assert jeanne(birth_given_names=("Anne-Sophie", "Éloïse")).birth_given_names == ("ANNE-SOPHIE", "ELOISE")
    assert jeanne().first_given_name == "JEANNE"


def test_an_empty_birth_name_is_refused() -> None:
    with pytest.raises(InvalidTrait) as caught:
        jeanne(birth_name="  ")
    assert caught.value.message == "nom de naissance absent"


@pytest.mark.parametrize("value", ["1985-01-15", "1985-01", "1985", "2000-02-29"])
def test_a_birth_date_may_be_partial_for_an_incomplete_civil_status(value: str) -> None:
    assert check_birth_date(value) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1985-13-01", "date de naissance invalide : mois 13 (1985-13-01)"),
        ("1985-02-30", "date de naissance invalide : jour 30 (1985-02-30)"),
        ("15/01/1985", "date de naissance invalide : '15/01/1985' (AAAA-MM-JJ attendu)"),
    ],
)
def test_an_impossible_birth_date_is_refused(value: str, message: str) -> None:
    with pytest.raises(InvalidTrait) as caught:
        check_birth_date(value)
    assert caught.value.message == message


def test_two_spellings_of_the_same_traits_are_equal_and_differences_are_named() -> None:
    typed = StrictTraits("martin", ("jeanne", "louise"), "1985-01-15", Sex.FEMALE, "75115")
    assert typed == jeanne()
    assert jeanne().differences(jeanne(birth_date="1985-01-16", sex=Sex.MALE)) == [
        "date de naissance (1985-01-15 ≠ 1985-01-16)",
        "sexe (female ≠ male)",
    ]
