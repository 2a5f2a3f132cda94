"""French names for synthetic people: first names by sex and decade of birth (INSEE frequencies),
family names by rank, and the spellings names take in records (display case, compound forms)."""

from __future__ import annotations

import random
import re
from bisect import bisect
from functools import cache
from itertools import accumulate

from socle.synthetic.tables import family_names, first_names

# Family names are weighed by rank, 1 / (rank + offset): the offset flattens the head of the list
# (MARTIN is about 1 % of people in France, not 10 %).
FAMILY_RANK_OFFSET = 12

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def display_case(name: str) -> str:
    """ "ANNE-SOPHIE" -> "Anne-Sophie", "N'DIAYE" -> "N'Diaye", "DE LA FONTAINE" -> "De La Fontaine"."""
    return _WORD.sub(lambda m: m.group(0)[0].upper() + m.group(0)[1:].lower(), name)


@cache
def _family_cumulative() -> tuple[float, ...]:
    names = family_names()
    return tuple(accumulate(1.0 / (rank + FAMILY_RANK_OFFSET) for rank in range(len(names))))


def draw_family_name(rng: random.Random) -> str:
    """A family name as the civil status writes it (capitals, accents kept: "LEFÈVRE")."""
    cumulative = _family_cumulative()
    return family_names()[bisect(cumulative, rng.random() * cumulative[-1])]


@cache
def _first_cumulative(decade: int, sex: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    names, births = first_names()[decade][sex]
    return names, tuple(accumulate(births))


def decade_of(year: int) -> int:
    decades = first_names()
    decade = year - year % 10
    return min(max(decade, min(decades)), max(decades))


def draw_first_name(rng: random.Random, year: int, female: bool) -> str:
    """A first name given in `year`, weighted by how often it was given then ("JEAN-PIERRE")."""
    names, cumulative = _first_cumulative(decade_of(year), "female" if female else "male")
    return names[bisect(cumulative, rng.random() * cumulative[-1])]


def draw_first_names(rng: random.Random, year: int, female: bool) -> tuple[str, ...]:
    """The list of birth first names: one to three, more of them for older generations."""
    roll = rng.random()
    many = 0.45 if year < 1960 else 0.2
    count = 3 if roll < many else 2 if roll < many + 0.45 else 1
    chosen: list[str] = []
    while len(chosen) < count:
        name = draw_first_name(rng, year - rng.randint(0, 30) if chosen else year, female)
        if name not in chosen:
            chosen.append(name)
    return tuple(chosen)
