"""NIR and NIA: structure, key, pseudo-months, Corsica, overseas, births abroad, agreement with traits."""

from __future__ import annotations

import pytest

from socle.identity.errors import InvalidInsNumber
from socle.identity.nir import nir_disagreements, nir_key, parse_nia, parse_nir, with_key
from socle.identity.traits import Sex
from tests.identity.factories import made_up_nir


def test_the_key_is_97_minus_the_13_digits_modulo_97() -> None:
    assert nir_key("2850175115042") == 97 - 2850175115042 % 97
    assert with_key("2850175115042") == f"2850175115042{97 - 2850175115042 % 97:02d}"


def test_a_nir_is_split_into_sex_birth_year_month_department_commune_order_and_key() -> None:
    parsed = parse_nir(made_up_nir(sex="1", year="72", month="11", place="69383", order="117"))
    assert parsed.kind == "NIR"
    assert parsed.sex is Sex.MALE
    assert (parsed.birth_year, parsed.month_code, parsed.birth_month) == ("72", "11", 11)
    assert (parsed.department, parsed.commune, parsed.commune_code) == ("69", "383", "69383")
    assert parsed.order == "117"
    assert parsed.key == nir_key(parsed.value[:13])
    assert not parsed.born_abroad
    assert parsed.country_code is None


def test_a_corsican_nir_uses_19_for_2a_only_in_the_department_position() -> None:
    assert nir_key("285012A004042") == 97 - 2850119004042 % 97
    # Department 20 (Corsica before 1976) is a number like any other.
    assert nir_key("2850120004042") == 97 - 2850120004042 % 97
    parsed = parse_nir(with_key("28501" + "2A" + "004042"))
    assert (parsed.department, parsed.commune_code) == ("2A", "2A004")


def test_a_corsican_nir_uses_18_for_2b() -> None:
    assert nir_key("28501" + "2B" + "033042") == 97 - 2850118033042 % 97
    assert parse_nir(with_key("285012B033042")).commune_code == "2B033"


def test_a_letter_outside_the_department_position_is_refused() -> None:
    with pytest.raises(InvalidInsNumber) as caught:
        nir_key("2850175A15042")
    assert caught.value.message == "caractère invalide : « A » dans '2850175A15042' (chiffres attendus)"


def test_a_nir_written_with_a_lower_case_corsican_department_is_read_in_capitals() -> None:
    value = with_key("285012A004042").lower()
    assert parse_nir(value).department == "2A"


def test_corsica_before_1976_is_department_20() -> None:
    parsed = parse_nir(made_up_nir(year="60", place="20004"))
    assert parsed.commune_code == "20004"


def test_an_overseas_nir_has_a_three_digit_department_and_a_two_digit_commune() -> None:
    parsed = parse_nir(made_up_nir(place="97411"))
    assert (parsed.department, parsed.commune, parsed.commune_code) == ("974", "11", "97411")
    assert parse_nir(made_up_nir(place="98735")).department == "987"


def test_a_birth_abroad_is_department_99_and_the_insee_country_code() -> None:
    parsed = parse_nir(made_up_nir(place="99352"))
    assert parsed.born_abroad
    assert parsed.country_code == "99352"
    assert parsed.commune_code is None
    assert parsed.birthplace_code == "99352"


@pytest.mark.parametrize("month", ["20", "30", "35", "42", "50", "77", "99"])
def test_a_pseudo_month_stands_for_an_unknown_or_incomplete_civil_status(month: str) -> None:
    parsed = parse_nir(made_up_nir(month=month))
    assert parsed.birth_month is None
    assert parsed.month_code == month


@pytest.mark.parametrize("month", ["00", "13", "19", "21", "29", "43", "49"])
def test_an_impossible_month_is_refused(month: str) -> None:
    with pytest.raises(InvalidInsNumber) as caught:
        parse_nir(made_up_nir(month=month))
    assert caught.value.message == f"mois de naissance invalide : {month}"


def test_a_wrong_key_names_the_expected_one() -> None:
    good = made_up_nir()
    expected = good[13:]
    wrong = f"{(int(expected) % 97) + 1:02d}"
    with pytest.raises(InvalidInsNumber) as caught:
        parse_nir(good[:13] + wrong)
    assert caught.value.message == f"clé de contrôle invalide : attendue {expected}"


def test_a_key_with_a_single_digit_is_written_on_two() -> None:
    # Search made-up order numbers for a key below 10: it must be compared as "0k", not "k".
    body = next(b for b in (f"28501751150{n:02d}" for n in range(1, 100)) if nir_key(b) < 10)
    with pytest.raises(InvalidInsNumber) as caught:
        parse_nir(body + "00")
    assert caught.value.message == f"clé de contrôle invalide : attendue {nir_key(body):02d}"


def test_a_number_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(InvalidInsNumber) as caught:
        parse_nir(made_up_nir()[:14])
    assert caught.value.message.startswith("longueur invalide : 15 caractères attendus, 14 reçus")


@pytest.mark.parametrize("department", ["2C", "00", "A1"])
def test_an_unknown_department_is_refused(department: str) -> None:
    with pytest.raises(InvalidInsNumber) as caught:
        parse_nir(f"28501{department}00404200")
    assert caught.value.message == f"département {department} inconnu"


def test_an_unknown_overseas_department_is_refused() -> None:
    with pytest.raises(InvalidInsNumber) as caught:
        parse_nir(made_up_nir(place="97911"))
    assert caught.value.message == "département 979 inconnu"


def test_order_number_000_does_not_exist() -> None:
    with pytest.raises(InvalidInsNumber) as caught:
        parse_nir(made_up_nir(order="000"))
    assert caught.value.message == "numéro d'ordre invalide : 000"


def test_a_nir_starts_with_1_or_2_and_3_4_7_8_belong_to_waiting_numbers() -> None:
    with pytest.raises(InvalidInsNumber) as caught:
        parse_nir(made_up_nir(sex="7", place="99352"))
    assert caught.value.message == (
        "premier chiffre invalide : 7 ; un NIR commence par 1 ou 2, "
        "3, 4, 7 et 8 désignent un numéro d'attente (NIA)"
    )
    with pytest.raises(InvalidInsNumber) as caught:
        parse_nir(made_up_nir(sex="5"))
    assert caught.value.message == "premier chiffre invalide : '5' (1, 2 attendu pour un NIR)"


@pytest.mark.parametrize(
    ("digit", "sex"),
    [
        ("1", Sex.MALE),
        ("2", Sex.FEMALE),
        ("3", Sex.MALE),
        ("4", Sex.FEMALE),
        ("7", Sex.MALE),
        ("8", Sex.FEMALE),
    ],
)
def test_a_nia_is_built_like_a_nir_and_may_start_with_a_waiting_digit(digit: str, sex: Sex) -> None:
    parsed = parse_nia(made_up_nir(sex=digit, place="99352"))
    assert parsed.kind == "NIA"
    assert parsed.sex is sex
    assert parsed.country_code == "99352"


def test_a_nia_checks_its_key_like_a_nir() -> None:
    good = made_up_nir(sex="7", place="99352")
    with pytest.raises(InvalidInsNumber) as caught:
        parse_nia(good[:13] + "00")
    assert caught.value.message == f"clé de contrôle invalide : attendue {good[13:]}"


# -- agreement with traits ------------------------------------------------------------------------


def test_a_nir_agrees_with_the_traits_it_was_built_from() -> None:
    parsed = parse_nir(made_up_nir())
    assert nir_disagreements(parsed, sex=Sex.FEMALE, birth_date="1985-01-15", birthplace_code="75115") == []


def test_each_disagreement_is_named() -> None:
    parsed = parse_nir(made_up_nir())
    assert nir_disagreements(parsed, sex=Sex.MALE, birth_date="1986-02-15", birthplace_code="13055") == [
        "sexe : le NIR indique female, les traits male",
        "année de naissance : le NIR indique 85, les traits 1986",
        "mois de naissance : le NIR indique 01, les traits 02",
        "lieu de naissance : le NIR indique 75115, les traits 13055",
    ]


def test_a_pseudo_month_or_an_unknown_sex_agrees_with_any_month_or_sex() -> None:
    parsed = parse_nir(made_up_nir(month="35"))
    assert nir_disagreements(parsed, sex=Sex.UNKNOWN, birth_date="1985-07-01") == []


def test_a_paris_arrondissement_agrees_with_paris() -> None:
    parsed = parse_nir(made_up_nir(place="75115"))
    assert nir_disagreements(parsed, sex=Sex.FEMALE, birth_date="1985-01", birthplace_code="75056") == []


def test_pre_1976_corsica_agrees_with_todays_commune_code() -> None:
    parsed = parse_nir(made_up_nir(year="60", place="20004"))
    assert nir_disagreements(parsed, sex=Sex.FEMALE, birth_date="1960-01-02", birthplace_code="2A004") == []


def test_departments_91_to_95_before_1968_are_algeria_and_morocco() -> None:
    algeria = parse_nir(made_up_nir(year="55", place="91352"))
    assert nir_disagreements(algeria, sex=Sex.FEMALE, birth_date="1955-01-02", birthplace_code="99352") == []
    morocco = parse_nir(made_up_nir(year="50", place="95120"))
    assert nir_disagreements(morocco, sex=Sex.FEMALE, birth_date="1950-01-02", birthplace_code="99350") == []


def test_departments_91_to_95_after_1968_are_ile_de_france() -> None:
    parsed = parse_nir(made_up_nir(year="85", place="91228"))
    assert nir_disagreements(parsed, sex=Sex.FEMALE, birth_date="1985-01-02", birthplace_code="91228") == []
    assert nir_disagreements(parsed, sex=Sex.FEMALE, birth_date="1985-01-02", birthplace_code="99352") == [
        "lieu de naissance : le NIR indique 91228, les traits 99352"
    ]


def test_department_96_is_tunisia_before_independence() -> None:
    parsed = parse_nir(made_up_nir(year="50", place="96101"))
    assert nir_disagreements(parsed, sex=Sex.FEMALE, birth_date="1950-01-02", birthplace_code="99351") == []
