"""The synthetic generator's data tables (`data/*.json[.gz]`), loaded once, as typed values.

Each file says where its rows come from and under which licence (see `data/README.md`); this module
only reads them. Nothing here draws random numbers.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"


def _json(name: str) -> Any:
    path = DATA / name
    if name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return json.load(handle)
    return json.loads(path.read_text(encoding="utf-8"))


# -- places ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Place:
    """A commune (or a Paris / Lyon / Marseille arrondissement) people live or are born in."""

    code: str  # COG code: "75115", "2A004", "97411"
    name: str  # as an address writes it: "Paris" for 75115
    department: str  # "75", "2A", "974"
    postcode: str
    population: int


@dataclass(frozen=True, slots=True)
class Anchor:
    """A known position and how far addresses around it spread (km)."""

    latitude: float
    longitude: float
    spread_km: float


@dataclass(frozen=True, slots=True)
class Geography:
    places: tuple[Place, ...]
    by_code: dict[str, Place]
    departments: dict[str, Anchor]  # the department's anchor (its prefecture) and spread radius
    department_anchor_names: dict[str, str]
    positions: dict[str, Anchor]  # commune / arrondissement code -> its own position


@cache
def geography() -> Geography:
    raw_places = _json("places.json.gz")["places"]
    places = tuple(
        Place(code, name, dept, postcode, int(pop)) for code, name, dept, postcode, pop in raw_places
    )
    by_code = {p.code: p for p in places}
    by_name = {(p.department, p.name): p.code for p in places}
    raw = _json("geography.json")
    departments: dict[str, Anchor] = {}
    names: dict[str, str] = {}
    positions: dict[str, Anchor] = {}
    city_spread = float(raw["city_spread_km"])
    for dept, (name, lat, lon, radius) in raw["departments"].items():
        departments[dept] = Anchor(lat, lon, float(radius))
        names[dept] = name
        code = by_name.get((dept, name))
        if code is not None:  # Paris, Lyon, Marseille are split: their arrondissements have positions
            positions[code] = Anchor(lat, lon, city_spread)
    for dept, name, lat, lon, spread in raw["cities"]:
        positions[by_name[(dept, name)]] = Anchor(lat, lon, float(spread))
    for code, (lat, lon, spread) in raw["arrondissements"].items():
        positions[code] = Anchor(lat, lon, float(spread))
    return Geography(places, by_code, departments, names, positions)


@cache
def streets() -> tuple[tuple[str, str], ...]:
    return tuple((kind, name) for kind, name in _json("streets.json")["streets"])


# -- names ----------------------------------------------------------------------------------------


@cache
def first_names() -> dict[int, dict[str, tuple[tuple[str, ...], tuple[int, ...]]]]:
    """Decade -> sex ("male" / "female") -> (names, births), most frequent first."""
    decades = _json("first_names.json.gz")["decades"]
    out: dict[int, dict[str, tuple[tuple[str, ...], tuple[int, ...]]]] = {}
    for decade, by_sex in decades.items():
        out[int(decade)] = {
            sex: (tuple(n for n, _ in rows), tuple(int(c) for _, c in rows)) for sex, rows in by_sex.items()
        }
    return out


@cache
def family_names() -> tuple[str, ...]:
    return tuple(_json("family_names.json")["names"])


@dataclass(frozen=True, slots=True)
class Country:
    code: str  # INSEE country code, 99xxx
    name: str
    weight: float
    independence: int | None  # year before which the NIR names a former French department
    former_departments: tuple[str, ...]


@cache
def countries() -> tuple[Country, ...]:
    return tuple(
        Country(code, name, float(weight), independence, tuple(departments))
        for code, name, weight, independence, departments in _json("countries.json")["countries"]
    )


# -- vaccination calendar ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Vaccine:
    key: str
    label: str
    atc: str
    product: str
    series: str
    mandatory: bool


@dataclass(frozen=True, slots=True)
class CalendarDose:
    """One dose of the calendar: due at `age_months` (+ up to `spread_months`), or a fixed delay after
    the vaccine's previous dose; applies to doses given between `since` and `until`."""

    vaccine: str
    dose: int
    age_months: int
    spread_months: int = 0
    after_previous_months: int | None = None
    sex: str | None = None  # "male" / "female": only for that sex
    since: date | None = None
    until: date | None = None
    coverage: float | None = None  # set on a series' first dose: share of people who get the series


@dataclass(frozen=True, slots=True)
class YearlyDose:
    vaccine: str
    from_age_years: int
    month: int
    spread_days: int
    coverage: float
    campaigns: int  # how many of the last campaigns are recorded


@dataclass(frozen=True, slots=True)
class Calendar:
    version: str
    record_since: date
    mandatory_born_since: date
    vaccines: dict[str, Vaccine]
    doses: tuple[CalendarDose, ...]
    yearly: tuple[YearlyDose, ...]


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


@cache
def vaccination_calendar() -> Calendar:
    raw = _json("vaccination_calendar.json")
    vaccines = {
        key: Vaccine(key, v["label"], v["atc"], v["product"], v["series"], bool(v["mandatory"]))
        for key, v in raw["vaccines"].items()
    }
    doses = tuple(
        CalendarDose(
            vaccine=d["vaccine"],
            dose=int(d["dose"]),
            age_months=int(d.get("age_months", 0)) + 12 * int(d.get("age_years", 0)),
            spread_months=int(d.get("spread_months", 0)),
            after_previous_months=d.get("after_previous_months"),
            sex=d.get("sex"),
            since=_date(d.get("since")),
            until=_date(d.get("until")),
            coverage=d.get("coverage"),
        )
        for d in raw["doses"]
    )
    yearly = tuple(
        YearlyDose(
            y["vaccine"],
            int(y["from_age_years"]),
            int(y["month"]),
            int(y["spread_days"]),
            y["coverage"],
            int(y["campaigns"]),
        )
        for y in raw["yearly"]
    )
    record_since = _date(raw["record_since"])
    mandatory = _date(raw["mandatory_born_since"])
    assert record_since is not None and mandatory is not None
    return Calendar(raw["version"], record_since, mandatory, vaccines, doses, yearly)


# -- clinical -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Medication:
    atc: str
    label: str
    dosage: str


@dataclass(frozen=True, slots=True)
class ConditionKind:
    key: str
    snomed: str
    cim10: str
    label: str
    prevalence: tuple[tuple[int, int, float, float], ...]  # (from age, to age, women, men)
    onset_min_age: int
    specialty: str | None
    medication: Medication | None
    follow_up: tuple[str, ...]  # LOINC codes measured at visits

    def probability(self, age: int, female: bool) -> float:
        for low, high, women, men in self.prevalence:
            if low <= age <= high:
                return women if female else men
        return 0.0


@dataclass(frozen=True, slots=True)
class ObservationKind:
    loinc: str
    label: str
    unit: str
    category: str
    value_range: tuple[float, float] | None
    components: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Clinical:
    conditions: tuple[ConditionKind, ...]
    observations: dict[str, ObservationKind]
    visits_per_year: tuple[tuple[int, int, float], ...]
    history_years: int

    def visits(self, age: int) -> float:
        return next((rate for low, high, rate in self.visits_per_year if low <= age <= high), 1.0)


@cache
def clinical() -> Clinical:
    raw = _json("clinical.json")
    conditions = tuple(
        ConditionKind(
            key=c["key"],
            snomed=c["snomed"],
            cim10=c["cim10"],
            label=c["label"],
            prevalence=tuple((int(a), int(b), float(w), float(m)) for a, b, w, m in c["prevalence"]),
            onset_min_age=int(c["onset_min_age"]),
            specialty=c["specialty"],
            medication=Medication(**c["medication"]) if c["medication"] else None,
            follow_up=tuple(c["follow_up"]),
        )
        for c in raw["conditions"]
    )
    observations = {
        code: ObservationKind(
            code,
            o["label"],
            o["unit"],
            o["category"],
            (float(o["range"][0]), float(o["range"][1])) if "range" in o else None,
            tuple(o.get("components", {}).items()),
        )
        for code, o in raw["observations"].items()
    }
    visits = tuple((int(a), int(b), float(rate)) for a, b, rate in raw["visits_per_year"])
    return Clinical(conditions, observations, visits, int(raw["history_years"]))


# -- directory ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProfessionKind:
    code: str  # TRE_G15
    key: str
    share: float
    title: str | None  # TRE_R11 civilité d'exercice
    specialties: tuple[tuple[str, float], ...]  # TRE_R38 code, share (the rest have none)
    site: str  # cabinet | pharmacy
    mssante_domain: str
    mssante_share: float
    accepting: float | None  # share accepting new patients (None: not said)
    teleconsultation: float
    per_site: tuple[int, int]


@dataclass(frozen=True, slots=True)
class DirectoryShape:
    professions: tuple[ProfessionKind, ...]
    hospital_share: float


@cache
def directory_shape() -> DirectoryShape:
    raw = _json("directory.json")
    professions = tuple(
        ProfessionKind(
            code=p["code"],
            key=p["key"],
            share=float(p["share"]),
            title=p["title"],
            specialties=tuple((code, float(share)) for code, share in p["specialties"]),
            site=p["site"],
            mssante_domain=p["mssante"][0],
            mssante_share=float(p["mssante"][1]),
            accepting=p["accepting"],
            teleconsultation=float(p["teleconsultation"]),
            per_site=(int(p["per_site"][0]), int(p["per_site"][1])),
        )
        for p in raw["professions"]
    )
    return DirectoryShape(professions, float(raw["hospital_share"]))
