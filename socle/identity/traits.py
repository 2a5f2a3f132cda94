"""The five strict traits of an identity and how they are written (pure).

Strict traits (RNIV volet 1; the INS traits returned by INSi): birth name, list of birth first names
(the first one is the "premier prénom"), birth date, sex, and the INSEE (COG) code of the birthplace
(99xxx for a birth abroad, 99999 when the birthplace is unknown).

How they are written, so that a local identity compares with what INSi returns:
- names in capitals without diacritics (the RNIV asks for it; INSi returns them so): "Éloïse" ->
  "ELOISE", ligatures spelled out ("Œ" -> "OE"); letters, spaces, hyphens and apostrophes only;
- the first names are one list, separated by spaces, as the INS specification and FR Core's
  `birth-list-given-name` extension carry it: ("Jean Pierre",) and ("JEAN", "PIERRE") are the same
  list. A compound first name keeps its hyphen ("ANNE-SOPHIE");
- the birth date is a FHIR date, complete or partial ("1970", "1970-05") for an incomplete civil status;
- the birthplace code is a current or former COG commune code, or a country code 99xxx (checked for
  shape only: the INSEE country list is not available offline).

This module knows nothing about statuses or the store.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from socle.identity.communes import is_known_commune
from socle.identity.errors import InvalidTrait, UnknownBirthplace


class Sex(StrEnum):
    """The sex trait, spelled as FHIR `Patient.gender` (FR Core allows male | female | unknown).

    UNKNOWN stands for the RNIV's "I" (indéterminé).
    """

    MALE = "male"
    FEMALE = "female"
    UNKNOWN = "unknown"


UNKNOWN_BIRTHPLACE = "99999"
ABROAD_PREFIX = "99"

_LIGATURES = str.maketrans({"Œ": "OE", "œ": "OE", "Æ": "AE", "æ": "AE", "ß": "SS"})
_APOSTROPHES = str.maketrans({"’": "'", "ʼ": "'", "‘": "'", "`": "'"})
_NAME_CHARS = re.compile(r"[A-Z' -]*")
_FHIR_DATE = re.compile(r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?")
_BIRTHPLACE_SHAPE = re.compile(r"[0-9]{5}|2[AB][0-9]{3}")


def normalize_name(raw: str, what: str) -> str:
    """A name in the RNIV's spelling: capitals, no diacritics, single spaces; `what` names the trait."""
    text = unicodedata.normalize("NFKD", raw.translate(_LIGATURES).translate(_APOSTROPHES))
    text = "".join(c for c in text if not unicodedata.combining(c)).upper()
    text = " ".join(text.split())
    if not text:
        raise InvalidTrait(f"{what} absent")
    for char in text:
        if not _NAME_CHARS.fullmatch(char):
            raise InvalidTrait(f"{what} invalide : caractère « {char} » non autorisé ({raw!r})")
    return text


def normalize_given_names(names: tuple[str, ...] | list[str] | str) -> tuple[str, ...]:
    """The list of birth first names: each name normalized, the list split on spaces (INS spelling)."""
    joined = names if isinstance(names, str) else " ".join(names)
    return tuple(normalize_name(joined, "liste des prénoms de naissance").split(" "))


def check_birth_date(value: str) -> str:
    """A FHIR date (YYYY, YYYY-MM or YYYY-MM-DD) that exists in the calendar."""
    match = _FHIR_DATE.fullmatch(value)
    if match is None:
        raise InvalidTrait(f"date de naissance invalide : {value!r} (AAAA-MM-JJ attendu)")
    year, month, day = match.groups()
    if int(year) < 1800:
        raise InvalidTrait(f"date de naissance invalide : année {year}")
    if month is not None and not 1 <= int(month) <= 12:
        raise InvalidTrait(f"date de naissance invalide : mois {month} ({value})")
    if day is not None and month is not None:
        last = calendar.monthrange(int(year), int(month))[1]
        if not 1 <= int(day) <= last:
            raise InvalidTrait(f"date de naissance invalide : jour {day} ({value})")
    return value


def check_birthplace_code(code: str) -> str:
    """A COG commune code known to the table, a country code 99xxx, or 99999 (unknown birthplace)."""
    if not _BIRTHPLACE_SHAPE.fullmatch(code):
        raise UnknownBirthplace(f"code lieu de naissance invalide : {code!r} (code INSEE à 5 caractères)")
    if code == UNKNOWN_BIRTHPLACE:
        return code
    if code.startswith(ABROAD_PREFIX):
        # INSEE country codes group countries by continent in their third digit: 1 Europe, 2 Asia,
        # 3 Africa, 4 Americas, 5 Oceania. Without the country list, that is all we can check.
        if code[2] not in "12345":
            raise UnknownBirthplace(f"code pays INSEE {code} invalide")
        return code
    if not is_known_commune(code):
        raise UnknownBirthplace(f"code commune INSEE {code} inconnu")
    return code


def born_abroad(birthplace_code: str) -> bool:
    return birthplace_code.startswith(ABROAD_PREFIX) and birthplace_code != UNKNOWN_BIRTHPLACE


@dataclass(frozen=True, slots=True)
class StrictTraits:
    """The five strict traits, normalized on construction (so two spellings of one name compare equal).

    >>> StrictTraits("Dupont", ("Jean Pierre",), "1980-01-15", Sex.MALE, "75115").birth_given_names
    ('JEAN', 'PIERRE')
    """

    birth_name: str
    birth_given_names: tuple[str, ...]
    birth_date: str
    sex: Sex
    birthplace_code: str

    def __post_init__(self) -> None:
        # Frozen: normalizing in place is the one place where fields are set after construction.
        object.__setattr__(self, "birth_name", normalize_name(self.birth_name, "nom de naissance"))
        object.__setattr__(self, "birth_given_names", normalize_given_names(self.birth_given_names))
        object.__setattr__(self, "birth_date", check_birth_date(self.birth_date))
        object.__setattr__(self, "sex", Sex(self.sex))
        object.__setattr__(self, "birthplace_code", check_birthplace_code(self.birthplace_code))

    @property
    def first_given_name(self) -> str:
        """The "premier prénom": the first of the birth first names."""
        return self.birth_given_names[0]

    def differences(self, other: StrictTraits) -> list[str]:
        """Which traits differ, in French, e.g. ["date de naissance (1980-01-15 ≠ 1980-01-16)"]."""
        found = []
        for label, mine, theirs in (
            ("nom de naissance", self.birth_name, other.birth_name),
            ("prénoms de naissance", " ".join(self.birth_given_names), " ".join(other.birth_given_names)),
            ("date de naissance", self.birth_date, other.birth_date),
            ("sexe", self.sex.value, other.sex.value),
            ("lieu de naissance", self.birthplace_code, other.birthplace_code),
        ):
            if mine != theirs:
                found.append(f"{label} ({mine} ≠ {theirs})")
        return found


STRICT_TRAIT_NAMES = ("birth_name", "birth_given_names", "birth_date", "sex", "birthplace_code")
