"""Rules of the normalisation shared by indexing and querying (socle.search.normalize)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from socle.search.normalize import date_range, decimal_range, normalize_text
from socle.search.rows import DATE_MAX, DATE_MIN


def us(
    year: int, month: int = 1, day: int = 1, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> int:
    """Epoch microseconds of a UTC wall-clock time."""
    moment = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Élodie  D'Arc", "elodie d'arc"),
        ("  MÜLLER\tStraße\n", "muller strasse"),  # ß casefolds to ss
        ("Ｊｏｓé", "jose"),  # fullwidth letters fold under NFKD
        ("ﬁlle", "fille"),  # ligature
        ("İlker", "ilker"),  # casefold then decomposition: no stray dot
        ("", ""),
    ],
)
def test_text_is_casefolded_accent_free_and_whitespace_collapsed(text: str, expected: str) -> None:
    assert normalize_text(text) == expected


def test_a_year_covers_the_whole_year() -> None:
    assert date_range("2020") == (us(2020, 1, 1), us(2021, 1, 1) - 1)


def test_a_month_covers_the_whole_month_leap_years_included() -> None:
    assert date_range("2020-02") == (us(2020, 2, 1), us(2020, 3, 1) - 1)
    assert date_range("2020-12") == (us(2020, 12, 1), us(2021, 1, 1) - 1)


def test_a_date_covers_the_whole_day_taken_as_utc() -> None:
    assert date_range("2020-05-17") == (us(2020, 5, 17), us(2020, 5, 18) - 1)


def test_a_time_with_offset_is_converted_to_utc_and_covers_its_second() -> None:
    assert date_range("2020-05-17T10:00:00+02:00") == (us(2020, 5, 17, 8), us(2020, 5, 17, 8, 0, 1) - 1)
    assert date_range("2020-05-17T10:00:00-05:30") == (
        us(2020, 5, 17, 15, 30),
        us(2020, 5, 17, 15, 30, 1) - 1,
    )


def test_minutes_precision_covers_the_minute() -> None:
    assert date_range("2020-05-17T10:00Z") == (us(2020, 5, 17, 10), us(2020, 5, 17, 10, 1) - 1)


def test_fractional_seconds_cover_their_own_precision() -> None:
    assert date_range("2020-05-17T10:00:00.5Z") == (
        us(2020, 5, 17, 10, 0, 0, 500000),
        us(2020, 5, 17, 10, 0, 0, 599999),
    )
    assert date_range("2020-05-17T10:00:00.123456Z") == (us(2020, 5, 17, 10, 0, 0, 123456),) * 2
    # Below the microsecond there is nothing left to cover.
    assert date_range("2020-05-17T10:00:00.1234567Z") == (us(2020, 5, 17, 10, 0, 0, 123456),) * 2


def test_a_time_without_zone_is_taken_as_utc() -> None:
    assert date_range("2020-05-17T10:00:00") == date_range("2020-05-17T10:00:00Z")


def test_ranges_stay_within_date_min_and_date_max() -> None:
    assert date_range("0001") == (DATE_MIN, us(2, 1, 1) - 1)
    assert date_range("9999")[1] == DATE_MAX
    assert date_range("0001-01-01T00:00:00+01:00")[0] == DATE_MIN
    assert date_range("9999-12-31T23:59:59-01:00")[1] == DATE_MAX


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2020-13", "month 13 is not in 01..12"),
        ("2021-02-30", "day 30 does not exist in 2021-02"),
        ("2020-00", "month 00 is not in 01..12"),
        ("0000", "year 0000 does not exist"),
        ("2020-05-17T25:00Z", "time 25:00 is not a valid time"),
        ("2020-05-17T10:00+15:00", "time zone +15:00"),
        ("2020-5-17", "expected YYYY"),
        ("17/05/2020", "expected YYYY"),
        ("2020-05-17T10", "expected YYYY"),
        ("2020-05-17Z", "expected YYYY"),
        ("", "expected YYYY"),
    ],
)
def test_invalid_dates_are_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="Invalid date") as error:
        date_range(text)
    assert message in str(error.value)
    assert repr(text) in str(error.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100", (100.0, 99.5, 100.5)),
        ("1.50", (1.5, 1.495, 1.505)),
        ("100.00", (100.0, 99.995, 100.005)),
        ("-3", (-3.0, -3.5, -2.5)),
        ("0.000368", (0.000368, 0.0003675, 0.0003685)),
        ("1e2", (100.0, 50.0, 150.0)),  # one significant figure
        ("1.0e2", (100.0, 95.0, 105.0)),  # two significant figures
        ("2.5E-3", (0.0025, 0.00245, 0.00255)),
    ],
)
def test_numbers_cover_half_a_unit_of_their_last_significant_digit(
    text: str, expected: tuple[float, float, float]
) -> None:
    assert decimal_range(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["abc", "", "1.2.3", "NaN", "Infinity", "1e", "0x10", "1,5"])
def test_invalid_numbers_are_refused_with_a_clear_message(text: str) -> None:
    with pytest.raises(ValueError, match=r"Invalid number .*: expected a decimal"):
        decimal_range(text)
