"""The clock's formats: the FHIR instant equals the datetime it stands for, to the microsecond."""

from __future__ import annotations

from datetime import UTC, datetime

from socle.clock import fhir_instant, from_micros, to_micros


def _reference_instant(micros: int) -> str:
    """The format spelled out from the datetime with strftime, as `fhir_instant` once did."""
    moment = from_micros(micros)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}Z"


def test_fhir_instant_matches_the_datetime_it_stands_for() -> None:
    moments = [
        datetime(2024, 5, 17, 10, 0, 0, 123456, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2000, 2, 29, 23, 59, 59, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ]
    values = [to_micros(moment) for moment in moments]
    # Neighbours within the same second and across into the next one.
    values += [values[0] + step for step in (1, 876_543, 876_544, 1_000_000, -123_457)]
    for micros in values:
        assert fhir_instant(micros) == _reference_instant(micros)
    assert fhir_instant(values[0]) == "2024-05-17T10:00:00.123456Z"
