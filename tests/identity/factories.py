"""Made-up identities for the identity tests: no real person's traits or number.

NIRs are built from the traits they describe with a made-up order number, and get their key computed.
"""

from __future__ import annotations

from socle.auth.context import RequestContext
from socle.identity.nir import with_key
from socle.identity.record import IdentityRecord, InsiResult, InsKind, InsMatricule
from socle.identity.traits import Sex, StrictTraits


def made_up_nir(
    *, sex: str = "2", year: str = "85", month: str = "01", place: str = "75115", order: str = "042"
) -> str:
    """A valid 15-character NIR: `place` is a metropolitan commune code (5 characters) or an
    overseas one (97xxx: 3-digit department + 2-digit commune), or 99 + a country code."""
    return with_key(f"{sex}{year}{month}{place}{order}")


def jeanne(**changes: object) -> StrictTraits:
    """Jeanne Louise MARTIN, born 15 January 1985 in Paris 15e (made up)."""
    values: dict[str, object] = {
        "birth_name": "Martin",
        "birth_given_names": ("Jeanne", "Louise"),
        "birth_date": "1985-01-15",
        "sex": Sex.FEMALE,
        "birthplace_code": "75115",
    }
    values.update(changes)
    return StrictTraits(**values)  # type: ignore[arg-type]


JEANNE_NIR = made_up_nir()


def jeanne_ins(kind: InsKind = InsKind.NIR, value: str = JEANNE_NIR) -> InsMatricule:
    return InsMatricule(kind, value)


def insi_found(traits: StrictTraits | None = None, ins: InsMatricule | None = None) -> InsiResult:
    """An INSi "00" answer for Jeanne (or the given traits / matricule)."""
    return InsiResult("00", ins or jeanne_ins(), traits or jeanne())


def provisional_jeanne(**changes: object) -> IdentityRecord:
    """Jeanne as typed at the admission desk, before any check (mixed case, accents)."""
    traits = jeanne(birth_name="Martin", birth_given_names=("Jeanne Louise",))
    return IdentityRecord(traits, used_name="Dupont", **changes)  # type: ignore[arg-type]


# The actor of the domain actions in these tests: an operator's system client (system/*.*).
OPERATOR = RequestContext.operator("identity-tests")
