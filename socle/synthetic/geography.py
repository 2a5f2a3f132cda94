"""Where synthetic people live and work: communes drawn by population, postal addresses, positions.

Positions are approximate (see `data/geography.json`): a commune with a position of its own (the
prefectures, large towns, Paris / Lyon / Marseille arrondissements) spreads its addresses a few km
around it; any other commune sits at a fixed pseudo-random point of the disk around its department's
anchor (derived from its code, so the same commune is always at the same place), and its addresses
spread about a kilometre around that point.
"""

from __future__ import annotations

import hashlib
import math
import random
from bisect import bisect
from dataclasses import dataclass
from functools import cache
from itertools import accumulate

from socle.synthetic.tables import Anchor, Place, geography, streets

EARTH_RADIUS_KM = 6371.0088
SMALL_COMMUNE_SPREAD_KM = 1.0


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address with its position (WGS84 decimal degrees)."""

    number: int
    street_type: str  # rue, avenue...
    street_name: str  # de la République
    postcode: str
    city: str
    commune_code: str  # COG code of the commune (the arrondissement in Paris, Lyon, Marseille)
    latitude: float
    longitude: float

    @property
    def line(self) -> str:
        return f"{self.number} {self.street_type} {self.street_name}"

    @property
    def department(self) -> str:
        return geography().by_code[self.commune_code].department

    def fhir(self, use: str = "home") -> dict[str, object]:
        """The FHIR Address, with the FR Core INSEE commune code extension."""
        return {
            "extension": [
                {
                    "url": "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code",
                    "valueCoding": {
                        "system": "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM",
                        "code": self.commune_code,
                    },
                }
            ],
            "use": use,
            "type": "both",
            "line": [self.line],
            "city": self.city,
            "postalCode": self.postcode,
            "country": "FRA",
        }


@dataclass(frozen=True, slots=True)
class _Sampler:
    places: tuple[Place, ...]
    cumulative: tuple[int, ...]

    def draw(self, rng: random.Random) -> Place:
        return self.places[bisect(self.cumulative, rng.random() * self.cumulative[-1])]


def _sampler(places: list[Place]) -> _Sampler:
    inhabited = [p for p in places if p.population > 0]
    return _Sampler(tuple(inhabited), tuple(accumulate(p.population for p in inhabited)))


@cache
def _national() -> _Sampler:
    return _sampler(list(geography().places))


@cache
def _by_department() -> dict[str, _Sampler]:
    grouped: dict[str, list[Place]] = {}
    for place in geography().places:
        grouped.setdefault(place.department, []).append(place)
    return {dept: _sampler(places) for dept, places in grouped.items()}


def draw_place(rng: random.Random, department: str | None = None) -> Place:
    """A commune drawn in proportion to its population (in `department` when given)."""
    if department is None:
        return _national().draw(rng)
    return _by_department()[department].draw(rng)


def place(code: str) -> Place:
    return geography().by_code[code]


def _offset(latitude: float, longitude: float, distance_km: float, bearing: float) -> tuple[float, float]:
    """The point `distance_km` away from (latitude, longitude) in direction `bearing` (radians)."""
    dlat = distance_km / EARTH_RADIUS_KM * math.cos(bearing)
    dlon = distance_km / EARTH_RADIUS_KM * math.sin(bearing) / max(math.cos(math.radians(latitude)), 1e-6)
    return latitude + math.degrees(dlat), longitude + math.degrees(dlon)


@cache
def commune_anchor(code: str) -> Anchor:
    """The commune's position and address spread: its own, or a fixed point of its department's disk."""
    geo = geography()
    own = geo.positions.get(code)
    if own is not None:
        return own
    department = geo.departments[geo.by_code[code].department]
    # A fixed point per commune: a hash of its code, not the run's random generator.
    digest = hashlib.blake2b(code.encode("ascii"), digest_size=8).digest()
    u, v = int.from_bytes(digest[:4], "big") / 2**32, int.from_bytes(digest[4:], "big") / 2**32
    latitude, longitude = _offset(
        department.latitude, department.longitude, department.spread_km * math.sqrt(u), 2 * math.pi * v
    )
    return Anchor(latitude, longitude, SMALL_COMMUNE_SPREAD_KM)


def draw_address(rng: random.Random, where: Place) -> Address:
    """A made-up street address in `where`, with a position near the commune's."""
    anchor = commune_anchor(where.code)
    latitude, longitude = _offset(
        anchor.latitude,
        anchor.longitude,
        anchor.spread_km * math.sqrt(rng.random()),
        rng.random() * 2 * math.pi,
    )
    street_type, street_name = rng.choice(streets())
    return Address(
        number=rng.randint(1, 120),
        street_type=street_type,
        street_name=street_name,
        postcode=where.postcode,
        city=where.name,
        commune_code=where.code,
        latitude=round(latitude, 6),
        longitude=round(longitude, 6),
    )
