"""The vaccination calendar table and the doses the generator draws from it."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from socle.synthetic.people import generate_population
from socle.synthetic.tables import vaccination_calendar
from socle.synthetic.vaccination import LATE_DAYS, Dose, add_months, calendar_doses

AS_OF = date(2026, 1, 1)


def months_old(birth: date, day: date) -> float:
    return (day - birth).days / 30.4375


def test_the_calendar_table_is_consistent() -> None:
    table = vaccination_calendar()
    assert table.record_since == date(2010, 1, 1)
    for rule in table.doses:
        assert rule.vaccine in table.vaccines
    for vaccine in table.vaccines.values():
        assert vaccine.atc.startswith("J07") and len(vaccine.atc) == 7
    # Each series (vaccine and sex) decides its coverage on its first dose.
    seen: set[tuple[str, str | None]] = set()
    for rule in table.doses:
        series = (rule.vaccine, rule.sex)
        if series not in seen:
            assert rule.coverage is not None, rule
            seen.add(series)
    assert {y.vaccine for y in table.yearly} == {"FLU"}


def doses_of(doses: list[Dose], vaccine: str) -> list[Dose]:
    return [d for d in doses if d.vaccine == vaccine]


@pytest.mark.parametrize("seed", range(8))
def test_a_child_born_in_2019_has_the_mandatory_infant_series_at_the_right_ages(seed: int) -> None:
    birth = date(2019, 3, 10)
    doses = calendar_doses(birth, seed % 2 == 0, AS_OF, random.Random(seed))
    # Born after 2018: the eleven mandatory vaccines are always given.
    for vaccine, months in (("HEXA", (2, 4, 11)), ("PNEUMO", (2, 4, 11)), ("MENC", (5, 12))):
        series = doses_of(doses, vaccine)
        assert [d.dose for d in series] == list(range(1, len(months) + 1))
        for dose, due in zip(series, months, strict=True):
            assert add_months(birth, due) <= dose.given <= add_months(birth, due) + timedelta(days=LATE_DAYS)
    ror = doses_of(doses, "ROR")
    assert len(ror) == 2
    assert add_months(birth, 12) <= ror[0].given <= add_months(birth, 12) + timedelta(days=LATE_DAYS)
    assert add_months(birth, 16) <= ror[1].given <= add_months(birth, 18)  # 16 to 18 months
    for dose in doses_of(doses, "DTCAP"):
        assert add_months(birth, 72) <= dose.given <= add_months(birth, 72) + timedelta(days=LATE_DAYS)
    # Nothing for adults, no MenB (recommended for doses since April 2022), no HPV yet at 6.
    assert not {d.vaccine for d in doses} & {"MENB", "HPV", "DTP", "FLU", "ZONA", "DTCAP_ADULT"}


def test_menb_and_the_2025_menacwy_switch_for_recent_births() -> None:
    birth = date(2024, 3, 1)
    doses = calendar_doses(birth, True, AS_OF, random.Random(3))
    assert [(d.dose, d.given >= add_months(birth, 12)) for d in doses_of(doses, "MENC")] == [(1, False)]
    acwy = doses_of(doses, "MENACWY")
    assert len(acwy) == 1 and acwy[0].given >= date(2025, 1, 1)  # the 12-month dose, under the 2025 calendar


def test_hpv_for_boys_only_since_2021_and_for_girls_at_11_to_14() -> None:
    for seed in range(40):
        rng = random.Random(seed)
        for birth, female in ((date(2006, 6, 1), False), (date(2010, 6, 1), False), (date(2010, 6, 1), True)):
            for dose in doses_of(calendar_doses(birth, female, AS_OF, rng), "HPV"):
                assert 11 * 12 <= months_old(birth, dose.given) <= 15 * 12
                if not female:
                    assert dose.given >= date(2021, 1, 1)


def test_every_recorded_dose_follows_the_calendar_for_the_age_it_was_given_at() -> None:
    table = vaccination_calendar()
    population = generate_population(1500, seed=2, as_of=AS_OF)
    checked = 0
    for person in population.people:
        doses = calendar_doses(person.birth, person.female, AS_OF, random.Random(person.index))
        for dose in doses:
            assert table.record_since <= dose.given <= AS_OF
            age = months_old(person.birth, dose.given)
            if dose.vaccine == "FLU":
                assert age >= 65 * 12 and dose.given.month in (10, 11, 12)
                continue
            rules = [
                rule
                for rule in table.doses
                if rule.vaccine == dose.vaccine and (rule.sex is None or rule.sex == person.sex.value)
            ]
            # A dose due at an age (+ its spread), or a fixed delay after the series' previous dose.
            spread = max(r.spread_months for r in rules) + max(r.after_previous_months or 0 for r in rules)
            windows = [
                (
                    add_months(person.birth, rule.age_months),
                    add_months(person.birth, rule.age_months + (spread if rule.after_previous_months else 0))
                    + timedelta(days=2 * LATE_DAYS)
                    + (timedelta(days=31 * rule.spread_months)),
                )
                for rule in rules
            ]
            assert any(low <= dose.given <= high for low, high in windows), (dose, age)
            checked += 1
    assert checked > 1000


def test_adults_get_their_boosters_at_25_45_and_65_and_the_flu_from_65() -> None:
    seen: set[str] = set()
    for seed in range(60):
        rng = random.Random(seed)
        for birth in (date(1990, 5, 5), date(1975, 5, 5), date(1955, 5, 5)):
            for dose in calendar_doses(birth, seed % 2 == 0, AS_OF, rng):
                age = months_old(birth, dose.given) / 12
                seen.add(dose.vaccine)
                expected = {"DTCAP_ADULT": 25, "DTP": None, "FLU": None, "ZONA": 65}.get(dose.vaccine, -1)
                assert expected != -1, dose  # no childhood vaccine for these adults
                if dose.vaccine == "DTP":
                    assert any(target <= age < target + 1.1 for target in (45, 65, 75, 85))
                elif dose.vaccine == "FLU":
                    assert age >= 65
                elif expected is not None:
                    assert expected <= age < expected + 9.1
    assert {"DTCAP_ADULT", "DTP", "FLU"} <= seen
