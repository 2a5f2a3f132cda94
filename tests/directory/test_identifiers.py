"""RPPS, idNatPs, FINESS and idNatSt: shapes, Luhn keys, Corsican FINESS numbers."""

from __future__ import annotations

import pytest

from socle.directory.errors import InvalidIdentifier
from socle.directory.identifiers import (
    check_finess,
    check_rpps,
    complete_finess,
    complete_rpps,
    id_nat_ps,
    id_nat_st,
    luhn_key,
    rpps_from_id_nat_ps,
)

# RPPS and FINESS numbers published in the open extractions (public directory data).
REAL_RPPS = ["10001045367", "10100271385", "10000013994", "10006122583"]
REAL_FINESS = ["010000024", "010780054", "970100400", "970302287", "540002698", "580008803"]


@pytest.mark.parametrize("rpps", REAL_RPPS)
def test_a_published_rpps_has_a_valid_luhn_key(rpps: str) -> None:
    assert check_rpps(rpps) == rpps


def test_an_rpps_with_a_wrong_luhn_key_is_refused_with_the_expected_key() -> None:
    with pytest.raises(InvalidIdentifier, match="clé RPPS invalide : attendue 7, trouvée 0"):
        check_rpps("10001045360")


@pytest.mark.parametrize("value", ["1000104536", "100010453677", "1000104536A", ""])
def test_an_rpps_that_is_not_eleven_digits_is_refused(value: str) -> None:
    with pytest.raises(InvalidIdentifier, match="11 chiffres attendus"):
        check_rpps(value)


def test_spaces_inside_an_rpps_are_ignored() -> None:
    assert check_rpps(" 100 0104 5367 ") == "10001045367"


def test_the_id_nat_ps_of_an_rpps_professional_is_8_followed_by_the_rpps() -> None:
    assert id_nat_ps("10001045367") == "810001045367"
    assert rpps_from_id_nat_ps("810001045367") == "10001045367"
    with pytest.raises(InvalidIdentifier, match="idNatPs invalide"):
        rpps_from_id_nat_ps("010001045367")


def test_completing_an_rpps_body_gives_a_number_that_passes_the_check() -> None:
    for body in ("1000099900", "1234567890", "0000000000"):
        assert check_rpps(complete_rpps(body)) == complete_rpps(body)
    with pytest.raises(InvalidIdentifier):
        complete_rpps("123")


@pytest.mark.parametrize("finess", REAL_FINESS)
def test_a_published_finess_has_a_valid_luhn_key(finess: str) -> None:
    assert check_finess(finess) == finess


def test_a_finess_with_a_wrong_key_is_refused_with_the_expected_key() -> None:
    with pytest.raises(InvalidIdentifier, match="clé FINESS invalide : attendue 4, trouvée 5"):
        check_finess("010000025")


def test_corsican_finess_numbers_count_2a_as_21_and_2b_as_22_in_the_luhn_key() -> None:
    assert luhn_key("21000999") == int(complete_finess("2A000999")[-1])
    assert luhn_key("22000999") == int(complete_finess("2B000999")[-1])
    assert check_finess("2a0009999") == "2A0009999"
    with pytest.raises(InvalidIdentifier, match="clé FINESS invalide"):
        check_finess("2A0009998")


@pytest.mark.parametrize("value", ["01000002", "0100000245", "2C0009999", "AB0000001", "01000002X"])
def test_a_finess_of_the_wrong_shape_is_refused(value: str) -> None:
    with pytest.raises(InvalidIdentifier, match="FINESS invalide"):
        check_finess(value)


def test_the_id_nat_st_of_a_finess_structure_is_1_followed_by_the_finess() -> None:
    assert id_nat_st("010000024") == "1010000024"


def test_an_invalid_identifier_is_a_422_with_a_value_issue() -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        check_rpps("10001045360")
    assert caught.value.status == 422
    assert caught.value.issues[0].code == "value"
