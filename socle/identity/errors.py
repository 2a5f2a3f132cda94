"""Errors of the identity domain, on top of Socle's one hierarchy (`socle.errors`).

Messages are in French: they reach the admission desk (identitovigilance is a French procedure).

    raise InvalidInsNumber("clé de contrôle invalide : attendue 42")
"""

from __future__ import annotations

from socle.errors import Conflict, Unprocessable


class InvalidInsNumber(Unprocessable):
    """A NIR or NIA with a wrong length, character, month, department or check key (422)."""

    default_code = "value"


class InvalidTrait(Unprocessable):
    """A strict or used identity trait that cannot be recorded as given (422)."""

    default_code = "value"


class UnknownBirthplace(InvalidTrait):
    """A birthplace code absent from the COG table, or not shaped like one (422)."""


class UnknownDocumentType(Unprocessable):
    """An identity document type that is not in the RNIV document table (422)."""

    default_code = "code-invalid"


class ForbiddenTransition(Unprocessable):
    """A change of status or attribute that the RNIV forbids (422).

    >>> raise ForbiddenTransition("transition interdite par le RNIV : une identité douteuse ne peut pas …")
    """


class InsiMismatch(Unprocessable):
    """An INSi answer that cannot be applied: not a single identity, or traits inconsistent (422)."""


class NotAnIdentity(Unprocessable):
    """A stored Patient that lacks what an identity record needs (strict traits) (422)."""

    default_code = "invariant"


class DuplicateIns(Conflict):
    """An INS matricule already carried by another Patient: a potential duplicate (409)."""
