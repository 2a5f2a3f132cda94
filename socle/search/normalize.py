"""Normalisation shared by indexing and querying, so that both sides compare the same forms.

- `normalize_text`: the string-search form (accent- and case-insensitive, whitespace collapsed);
- `date_range`: a FHIR date/dateTime/instant (possibly partial) → the inclusive range of epoch
  microseconds (UTC) it covers;
- `decimal_range`: a decimal as written → its value and the range its implicit precision covers.

Pure functions over strings: no knowledge of resources or search parameters. Invalid input raises
`ValueError` with a message fit for an OperationOutcome.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Final

from socle.search.rows import DATE_MAX, DATE_MIN

# --- text --------------------------------------------------------------------------------------


def normalize_text(text: str) -> str:
    """Casefold, strip accents (NFKD then drop combining marks), collapse whitespace, trim.

    `"Élodie  D'Arc"` → `"elodie d'arc"`; compatibility forms fold too (`"ﬁ"` → `"fi"`).
    """
    if text.isascii():  # the common case: no decomposition can change ASCII
        return " ".join(text.casefold().split())
    # Casefold first: it may produce decomposable characters ("İ" → "i̇"), which NFKD then splits.
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.split())


# --- dates -------------------------------------------------------------------------------------

_DATE: Final = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
_EPOCH_DAY: Final = date(1970, 1, 1).toordinal()
_DAY: Final = 86_400_000_000
_MINUTE: Final = 60_000_000
_SECOND: Final = 1_000_000


def _days(year: int, month: int, day: int) -> int:
    return date(year, month, day).toordinal() - _EPOCH_DAY


def date_range(text: str) -> tuple[int, int]:
    """The inclusive [low, high] epoch-microsecond range (UTC) a FHIR date/dateTime/instant covers.

    Partial values cover their whole precision: "2020" is 2020-01-01T00:00:00 to
    2020-12-31T23:59:59.999999, "2020-05-17T10:00Z" the whole minute, "…:00.5Z" a tenth of a second.
    A time without zone (allowed only in search values) is taken as UTC, and so are plain dates.
    Results are clamped to [DATE_MIN, DATE_MAX].
    """
    match = _DATE.fullmatch(text)
    if match is None:
        raise ValueError(
            f"Invalid date {text!r}: expected YYYY, YYYY-MM, YYYY-MM-DD or "
            "YYYY-MM-DDThh:mm[:ss[.ffffff]][Z|+hh:mm|-hh:mm]"
        )
    year = int(match["year"])
    if year == 0:
        raise ValueError(f"Invalid date {text!r}: year 0000 does not exist")
    if match["month"] is None:
        low = _days(year, 1, 1) * _DAY
        high = (_days(year, 12, 31) + 1) * _DAY - 1
        return _clamp(low, high)
    month = int(match["month"])
    if not 1 <= month <= 12:
        raise ValueError(f"Invalid date {text!r}: month {match['month']} is not in 01..12")
    last_day = calendar.monthrange(year, month)[1]
    if match["day"] is None:
        low = _days(year, month, 1) * _DAY
        high = (_days(year, month, last_day) + 1) * _DAY - 1
        return _clamp(low, high)
    day = int(match["day"])
    if not 1 <= day <= last_day:
        raise ValueError(
            f"Invalid date {text!r}: day {match['day']} does not exist in {year:04d}-{month:02d}"
        )
    low = _days(year, month, day) * _DAY
    if match["hour"] is None:
        return _clamp(low, low + _DAY - 1)
    hour, minute = int(match["hour"]), int(match["minute"])
    if hour > 23 or minute > 59:
        raise ValueError(f"Invalid date {text!r}: time {match['hour']}:{match['minute']} is not a valid time")
    low += (hour * 60 + minute) * _MINUTE
    if match["second"] is None:
        span = _MINUTE
    else:
        second = int(match["second"])
        if second > 60:  # 60 is a leap second: it lands on the next minute's first second
            raise ValueError(f"Invalid date {text!r}: second {match['second']} is not in 00..60")
        low += second * _SECOND
        span = _SECOND
        fraction = match["fraction"]
        if fraction is not None:
            digits = fraction[:6]  # below the microsecond there is nothing to cover
            low += int(digits.ljust(6, "0"))
            span = 10 ** (6 - len(digits))
    zone = match["zone"]
    if zone is not None and zone != "Z":
        zone_hours, zone_minutes = int(zone[1:3]), int(zone[4:6])
        if zone_hours > 14 or zone_minutes > 59 or (zone_hours == 14 and zone_minutes):
            raise ValueError(f"Invalid date {text!r}: time zone {zone} is not in -14:00..+14:00")
        offset = (zone_hours * 60 + zone_minutes) * _MINUTE
        low += -offset if zone[0] == "+" else offset
    return _clamp(low, low + span - 1)


def _clamp(low: int, high: int) -> tuple[int, int]:
    return max(low, DATE_MIN), min(high, DATE_MAX)


# --- decimals ----------------------------------------------------------------------------------

_DECIMAL: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def decimal_range(text: str) -> tuple[float, float, float]:
    """(value, low, high) of a decimal as written: ± half a unit of its last significant digit.

    "100" → 99.5..100.5, "1.50" → 1.495..1.505, "1e2" (one significant figure) → 50..150, "1.0e2"
    → 95..105. The R4 search page prints [95..105) for "1e2" while calling it one significant
    figure; the significant-figure rule is the one applied here, consistently for every form.
    """
    stripped = text.strip()
    if _DECIMAL.fullmatch(stripped) is None:
        raise ValueError(f"Invalid number {text!r}: expected a decimal such as 100, 1.50, -3 or 1e2")
    try:
        number = Decimal(stripped)
    except InvalidOperation as error:  # pragma: no cover - the pattern already excludes it
        raise ValueError(f"Invalid number {text!r}") from error
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite by the pattern
    half = Decimal(5).scaleb(exponent - 1)
    return float(number), float(number - half), float(number + half)
