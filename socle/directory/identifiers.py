"""National identifiers of the health directory: RPPS, idNatPs, FINESS, idNatSt (pure functions).

- RPPS: 11 digits; the last one is a Luhn key over the whole number.
- idNatPs (`urn:oid:1.2.250.1.71.4.2.1`): "8" + RPPS for a professional identified by the RPPS.
- FINESS: 9 characters, department (2 characters) + order number + a Luhn key. Corsican numbers
  start with "2A" / "2B": the letters are transcoded before the Luhn computation, A -> 1 and B -> 2
  (so "2A" counts as "21", "2B" as "22"), the letter-to-digit rule of French bank keys, and the one
  used by the gip-inclusion "pilotage" FINESS validator (`finess.replace("2A", "21")...` before
  `check_luhn`), the only public implementation found that checks real extraction data. Overseas
  numbers are all digits (97..., 98...) and need nothing special.
- idNatSt (`urn:oid:1.2.250.1.71.4.2.2`): "1" + FINESS for a structure identified by FINESS.

Every check returns the normalised value or raises `InvalidIdentifier` with a French message naming
the expected key. `complete_rpps` / `complete_finess` append the key, for synthetic data.
"""

from __future__ import annotations

from socle.directory.errors import InvalidIdentifier

RPPS_SYSTEM = "https://rpps.esante.gouv.fr"
ID_NAT_PS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
FINESS_SYSTEM = "https://finess.esante.gouv.fr"
ID_NAT_ST_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
# The structure identifier of the RPPS ("Identifiant technique de la structure"), as the ANS names it.
RPPS_RANG_SYSTEM = "https://rppsrang.esante.gouv.fr"
SIRET_SYSTEM = "https://sirene.fr"

ID_NAT_PS_RPPS_PREFIX = "8"
ID_NAT_ST_FINESS_PREFIX = "1"

# Letters of Corsican department codes, as digits for the Luhn computation (see the module docstring).
CORSICA_LUHN_DIGITS = {"2A": "21", "2B": "22"}

RPPS_LENGTH = 11
FINESS_LENGTH = 9


def luhn_key(body: str) -> int:
    """The digit that, appended to `body` (digits only), makes the whole number pass Luhn."""
    total = 0
    # Walking from the right of the body, the first digit is the one doubled once the key is added.
    for position, char in enumerate(reversed(body)):
        digit = ord(char) - 48
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10


def _clean(value: str) -> str:
    return value.replace(" ", "").strip().upper()


# -- RPPS ------------------------------------------------------------------------------------------


def check_rpps(value: str) -> str:
    """The RPPS number, normalised; InvalidIdentifier if it is not 11 digits with a valid key."""
    number = _clean(value)
    if len(number) != RPPS_LENGTH or not number.isascii() or not number.isdigit():
        raise InvalidIdentifier(f"RPPS invalide : 11 chiffres attendus ({value!r})")
    expected = luhn_key(number[:-1])
    if int(number[-1]) != expected:
        raise InvalidIdentifier(f"clé RPPS invalide : attendue {expected}, trouvée {number[-1]} ({number})")
    return number


def complete_rpps(body: str) -> str:
    """A valid RPPS from its first 10 digits (synthetic data)."""
    if len(body) != RPPS_LENGTH - 1 or not body.isascii() or not body.isdigit():
        raise InvalidIdentifier(f"corps de RPPS invalide : 10 chiffres attendus ({body!r})")
    return body + str(luhn_key(body))


def id_nat_ps(rpps: str) -> str:
    """The idNatPs of a professional identified by the RPPS: "8" + RPPS."""
    return ID_NAT_PS_RPPS_PREFIX + check_rpps(rpps)


def rpps_from_id_nat_ps(value: str) -> str:
    """The RPPS inside an idNatPs; InvalidIdentifier if the idNatPs is not an RPPS-based one."""
    number = _clean(value)
    if len(number) != RPPS_LENGTH + 1 or not number.startswith(ID_NAT_PS_RPPS_PREFIX):
        raise InvalidIdentifier(f"idNatPs invalide : « 8 » suivi du RPPS attendu ({value!r})")
    return check_rpps(number[1:])


# -- FINESS ----------------------------------------------------------------------------------------


def _finess_digits(number: str) -> str:
    """The FINESS as digits for the Luhn computation (Corsican letters transcoded)."""
    return CORSICA_LUHN_DIGITS.get(number[:2], number[:2]) + number[2:]


def _check_finess_shape(number: str, length: int, original: str) -> None:
    head, rest = number[:2], number[2:]
    if (
        len(number) != length
        or not number.isascii()
        or not (head.isdigit() or head in CORSICA_LUHN_DIGITS)
        or not rest.isdigit()
    ):
        raise InvalidIdentifier(
            f"FINESS invalide : {length} caractères attendus, chiffres ou 2A/2B en tête ({original!r})"
        )


def check_finess(value: str) -> str:
    """The FINESS number, normalised; InvalidIdentifier if its shape or Luhn key is wrong."""
    number = _clean(value)
    _check_finess_shape(number, FINESS_LENGTH, value)
    expected = luhn_key(_finess_digits(number[:-1]))
    if int(number[-1]) != expected:
        raise InvalidIdentifier(f"clé FINESS invalide : attendue {expected}, trouvée {number[-1]} ({number})")
    return number


def complete_finess(body: str) -> str:
    """A valid FINESS from its first 8 characters (synthetic data; "2A"/"2B" heads allowed)."""
    number = _clean(body)
    _check_finess_shape(number, FINESS_LENGTH - 1, body)
    return number + str(luhn_key(_finess_digits(number)))


def id_nat_st(finess: str) -> str:
    """The idNatSt of a structure identified by FINESS: "1" + FINESS."""
    return ID_NAT_ST_FINESS_PREFIX + check_finess(finess)
