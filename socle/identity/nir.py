"""NIR and NIA: parsing, check key, and agreement with the strict traits (pure).

A NIR (numéro d'inscription au répertoire, INSEE) is 13 characters and a 2-digit key:

    S YY MM DD CCC OOO KK      sex, birth year, birth month, department, commune, order, key

- S: 1 male, 2 female. A NIA (numéro identifiant d'attente, given by the CNAV's SANDIA to a person
  born abroad while their civil status is being checked) is "constitué comme un NIR"; besides 1/2 it
  may start with 3/4 (a foreigner being registered) or 7/8 (temporary numbers), odd = male. This
  module accepts 1/2 for a NIR (and the INS test/demo NIRs), 1/2/3/4/7/8 for a NIA.
- MM: 01–12, or a pseudo-month when the civil status is unknown or incomplete: 20, 30–42, 50–99
  (parsed as month None). 00 and 13–19, 21–29, 43–49 are refused.
- DD + CCC: the birthplace.
  * metropolitan department 01–95 (2A/2B for Corsica since 1976, 20 before) + 3-digit commune;
  * overseas (97x, 98x): a 3-digit department + 2-digit commune (974 + 11 = Saint-Denis de La Réunion, 97411);
  * 99 + 3-digit INSEE country code for a birth abroad (99 + 352 = Algeria, 99352);
  * born in Algeria, Morocco or Tunisia before independence: 91–94 (the Algerian departments), 95
    (Morocco), 96 (Tunisia). 91–95 were reused in 1968 for the Île-de-France departments.
- OOO: order of the birth in the commune's register that month, 001–999.
- KK: 97 − (NIR13 mod 97), where 2A counts as 19 and 2B as 18 in the department position only.

The commune part is checked for shape, not against the COG table: a NIR keeps the birthplace code of
its time (communes merged since, pre-1976 Corsica, pre-1968 Seine-et-Oise...). `nir_disagreements`
compares a NIR with traits, mapping former codes to today's commune where the table knows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from socle.identity.communes import current_commune_code
from socle.identity.errors import InvalidInsNumber
from socle.identity.traits import ABROAD_PREFIX, Sex

NumberKind = Literal["NIR", "NIA"]

NIR_LENGTH = 15
NIR_BODY_LENGTH = 13

NIR_SEX_DIGITS = {"1": Sex.MALE, "2": Sex.FEMALE}
NIA_SEX_DIGITS = {
    "1": Sex.MALE,
    "2": Sex.FEMALE,
    "3": Sex.MALE,
    "4": Sex.FEMALE,
    "7": Sex.MALE,
    "8": Sex.FEMALE,
}

PSEUDO_MONTHS = frozenset({20, *range(30, 43), *range(50, 100)})

# Department letters as the key computation counts them (in the department position only).
CORSICA_KEY_DIGITS = {"2A": "19", "2B": "18"}
# 97x: Guadeloupe .. Saint-Martin; 98x: TAAF (984), Mayotte before 2011 (985), Wallis-et-Futuna,
# French Polynesia, New Caledonia, Clipperton.
OVERSEAS_DEPARTMENTS = frozenset({*(f"97{d}" for d in "12345678"), *(f"98{d}" for d in "456789")})
TUNISIA_BEFORE_INDEPENDENCE = "96"
ALGERIA_BEFORE_INDEPENDENCE = frozenset({"91", "92", "93", "94"})
MOROCCO_BEFORE_INDEPENDENCE = "95"
# 91–95 name Algeria and Morocco for births before the Île-de-France departments were created.
ILE_DE_FRANCE_DEPARTMENTS_CREATED = 1968
# INSEE country codes the former North-African departments correspond to today.
COUNTRY_OF_FORMER_DEPARTMENT = {
    **dict.fromkeys(ALGERIA_BEFORE_INDEPENDENCE, "99352"),
    MOROCCO_BEFORE_INDEPENDENCE: "99350",
    TUNISIA_BEFORE_INDEPENDENCE: "99351",
}


@dataclass(frozen=True, slots=True)
class ParsedNir:
    """A valid NIR or NIA, split into its parts."""

    kind: NumberKind
    value: str  # the 15 characters
    sex: Sex
    sex_digit: str
    birth_year: str  # two digits: the century is not in the number
    month_code: str  # as written: "05", or a pseudo-month "20", "35"...
    birth_month: int | None  # None for a pseudo-month (unknown or incomplete civil status)
    department: str  # "75", "2A", "974", "99" (abroad)
    commune: str  # the commune part: 3 digits, 2 overseas, the country part when born abroad
    order: str
    key: int

    @property
    def born_abroad(self) -> bool:
        return self.department == ABROAD_PREFIX

    @property
    def country_code(self) -> str | None:
        """The INSEE country code (99xxx) of a birth abroad."""
        return ABROAD_PREFIX + self.commune if self.born_abroad else None

    @property
    def commune_code(self) -> str | None:
        """The COG commune code as the NIR writes it: "75115", "2A004", "97411"; None when abroad."""
        return None if self.born_abroad else self.department + self.commune

    @property
    def birthplace_code(self) -> str:
        """The birthplace as the NIR writes it: a commune code, or the country code when abroad."""
        return self.country_code or self.department + self.commune


def nir_key(nir13: str) -> int:
    """The check key of a 13-character NIR/NIA body: 97 − (number mod 97), 2A -> 19, 2B -> 18.

    >>> nir_key("1850175115042")  # made up: a man born in January 1985 in Paris 15e, order 042
    81
    """
    if len(nir13) != NIR_BODY_LENGTH:
        raise InvalidInsNumber(f"longueur invalide : {NIR_BODY_LENGTH} caractères attendus sans la clé")
    department = nir13[5:7]
    digits = nir13[:5] + CORSICA_KEY_DIGITS.get(department, department) + nir13[7:]
    _check_digits(digits, nir13)
    return 97 - int(digits) % 97


def with_key(nir13: str) -> str:
    """The 15-character number: the body followed by its two-digit key (for test and demo data)."""
    return f"{nir13}{nir_key(nir13):02d}"


def parse_nir(value: str) -> ParsedNir:
    """A NIR (also the INS test and demo NIRs), or InvalidInsNumber with a French message."""
    return _parse(value, "NIR", NIR_SEX_DIGITS)


def parse_nia(value: str) -> ParsedNir:
    """A NIA (numéro identifiant d'attente), or InvalidInsNumber with a French message."""
    return _parse(value, "NIA", NIA_SEX_DIGITS)


def _parse(raw: str, kind: NumberKind, sex_digits: dict[str, Sex]) -> ParsedNir:
    value = raw.upper()
    if len(value) != NIR_LENGTH:
        raise InvalidInsNumber(
            f"longueur invalide : {NIR_LENGTH} caractères attendus, {len(value)} reçus ({kind} {raw!r})"
        )
    sex_digit = value[0]
    if sex_digit not in sex_digits:
        if kind == "NIR" and sex_digit in NIA_SEX_DIGITS:
            raise InvalidInsNumber(
                f"premier chiffre invalide : {sex_digit} ; un NIR commence par 1 ou 2, "
                "3, 4, 7 et 8 désignent un numéro d'attente (NIA)"
            )
        allowed = ", ".join(sex_digits)
        raise InvalidInsNumber(f"premier chiffre invalide : {sex_digit!r} ({allowed} attendu pour un {kind})")
    _check_digits(value[:5], value)
    month_code = value[3:5]
    month = int(month_code)
    if not (1 <= month <= 12 or month in PSEUDO_MONTHS):
        raise InvalidInsNumber(f"mois de naissance invalide : {month_code}")
    department, commune = _birthplace_parts(value)
    order = value[10:13]
    _check_digits(value[7:], value)
    if order == "000":
        raise InvalidInsNumber("numéro d'ordre invalide : 000")
    expected = nir_key(value[:NIR_BODY_LENGTH])
    if int(value[13:]) != expected:
        raise InvalidInsNumber(f"clé de contrôle invalide : attendue {expected:02d}")
    return ParsedNir(
        kind=kind,
        value=value,
        sex=sex_digits[sex_digit],
        sex_digit=sex_digit,
        birth_year=value[1:3],
        month_code=month_code,
        birth_month=month if 1 <= month <= 12 else None,
        department=department,
        commune=commune,
        order=order,
        key=expected,
    )


def _birthplace_parts(value: str) -> tuple[str, str]:
    """(department, commune) from positions 6–10; the overseas department takes one more digit."""
    department = value[5:7]
    if department in CORSICA_KEY_DIGITS:
        return department, value[7:10]
    if not department.isdigit() or department == "00":
        raise InvalidInsNumber(f"département {department} inconnu")
    if department in ("97", "98"):
        overseas = value[5:8]
        if overseas not in OVERSEAS_DEPARTMENTS:
            raise InvalidInsNumber(f"département {overseas} inconnu")
        return overseas, value[8:10]
    return department, value[7:10]


def _check_digits(digits: str, whole: str) -> None:
    for char in digits:
        if not "0" <= char <= "9":
            raise InvalidInsNumber(f"caractère invalide : « {char} » dans {whole!r} (chiffres attendus)")


def nir_disagreements(
    parsed: ParsedNir, *, sex: Sex, birth_date: str, birthplace_code: str | None = None
) -> list[str]:
    """What a NIR/NIA says that the traits contradict, in French; empty when they agree.

    - sex: compared unless the trait is unknown;
    - birth year (two digits) and month (unless the NIR has a pseudo-month or the date has no month);
    - birthplace (when given): the NIR's commune or country code against the trait, both mapped to
      today's commune (Paris 15e -> Paris, 20004 -> 2A004); 91–95 before 1968 and 96 stand for
      Algeria (99352), Morocco (99350), Tunisia (99351). A birthplace can still disagree for a
      commune the table does not know (merged before its history): callers treat it as a warning.
    """
    found: list[str] = []
    if sex is not Sex.UNKNOWN and sex is not parsed.sex:
        found.append(f"sexe : le {parsed.kind} indique {parsed.sex.value}, les traits {sex.value}")
    year = birth_date[:4]
    if year[2:] != parsed.birth_year:
        found.append(f"année de naissance : le {parsed.kind} indique {parsed.birth_year}, les traits {year}")
    if parsed.birth_month is not None and len(birth_date) >= 7 and int(birth_date[5:7]) != parsed.birth_month:
        found.append(
            f"mois de naissance : le {parsed.kind} indique {parsed.month_code}, les traits {birth_date[5:7]}"
        )
    if birthplace_code is not None:
        expected = _expected_birthplace(parsed, int(year))
        if current_commune_code(expected) != current_commune_code(birthplace_code):
            found.append(
                f"lieu de naissance : le {parsed.kind} indique {expected}, les traits {birthplace_code}"
            )
    return found


def _expected_birthplace(parsed: ParsedNir, birth_year: int) -> str:
    department = parsed.department
    if department == TUNISIA_BEFORE_INDEPENDENCE:
        return COUNTRY_OF_FORMER_DEPARTMENT[department]
    if department in COUNTRY_OF_FORMER_DEPARTMENT and birth_year < ILE_DE_FRANCE_DEPARTMENTS_CREATED:
        return COUNTRY_OF_FORMER_DEPARTMENT[department]
    return parsed.birthplace_code
