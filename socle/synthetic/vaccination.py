"""Which vaccine doses a synthetic person received, following the calendar table (pure).

`calendar_doses` applies `data/vaccination_calendar.json` to a birth date and sex: every dose due
between the record's start (`record_since`: older doses were written in paper carnets) and `as_of`,
within the period its rule applies to (`since` / `until`, by the date of the dose), for the people a
series reaches (`coverage`, drawn once per series; the vaccines mandatory for children born since
2018 are always given to them). A dose is given on its due date or a few weeks later; within a
spread ("16 to 18 months", "11 to 13 years") at a point drawn in it; a dose that follows another
(HPV, shingles) comes its delay after the previous one.
"""

from __future__ import annotations

import calendar
import random
from dataclasses import dataclass
from datetime import date, timedelta

from socle.synthetic.tables import Calendar, CalendarDose, vaccination_calendar

LATE_DAYS = 21  # a dose due on a day is given within three weeks of it


@dataclass(frozen=True, slots=True)
class Dose:
    vaccine: str  # key of the calendar's vaccines: HEXA, ROR...
    dose: int  # its rank among the doses of this vaccine given (1 for every yearly flu shot)
    given: date


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _applies(rule: CalendarDose, given: date, as_of: date) -> bool:
    return (
        given <= as_of
        and (rule.since is None or given >= rule.since)
        and (rule.until is None or given <= rule.until)
    )


def calendar_doses(
    birth: date,
    female: bool,
    as_of: date,
    rng: random.Random,
    *,
    table: Calendar | None = None,
    since: date | None = None,
) -> list[Dose]:
    """The doses given to a person born on `birth`, in date order."""
    table = table or vaccination_calendar()
    start = since or table.record_since
    mandatory = birth >= table.mandatory_born_since
    sex = "female" if female else "male"
    reached: dict[tuple[str, str | None], bool] = {}
    previous: dict[str, date] = {}
    counted: dict[str, int] = {}  # doses of each vaccine given so far, recorded or not
    doses: list[Dose] = []
    for rule in table.doses:
        if rule.sex is not None and rule.sex != sex:
            continue
        series = (rule.vaccine, rule.sex)
        if rule.coverage is not None:
            always = mandatory and table.vaccines[rule.vaccine].mandatory
            reached[series] = always or rng.random() < rule.coverage
        if not reached.get(series, False):
            continue
        if rule.after_previous_months is not None:
            before = previous.get(rule.vaccine)
            if before is None:
                continue
            given = add_months(before, rule.after_previous_months) + timedelta(days=rng.randrange(LATE_DAYS))
        else:
            due = add_months(birth, rule.age_months)
            if rule.spread_months:
                window = (add_months(due, rule.spread_months) - due).days
                given = due + timedelta(days=rng.randrange(window + 1))
            else:
                given = due + timedelta(days=rng.randrange(LATE_DAYS))
        previous[rule.vaccine] = given
        if _applies(rule, given, as_of):
            counted[rule.vaccine] = counted.get(rule.vaccine, 0) + 1
            if given >= start:
                doses.append(Dose(rule.vaccine, counted[rule.vaccine], given))
    for yearly in table.yearly:
        if rng.random() >= yearly.coverage:
            continue  # this person never takes the yearly vaccine
        first_year = max(birth.year + yearly.from_age_years, start.year, as_of.year - yearly.campaigns)
        for year in range(first_year, as_of.year + 1):
            campaign = date(year, yearly.month, 1)
            given = campaign + timedelta(days=rng.randrange(yearly.spread_days))
            age_ok = (given.year - birth.year - ((given.month, given.day) < (birth.month, birth.day))) >= (
                yearly.from_age_years
            )
            if age_ok and start <= given <= as_of and rng.random() < 0.85:
                doses.append(Dose(yearly.vaccine, 1, given))
    doses.sort(key=lambda d: (d.given, d.vaccine))
    return doses
