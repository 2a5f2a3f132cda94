"""Errors of the directory domain, on top of Socle's one hierarchy (`socle.errors`)."""

from __future__ import annotations

from socle.errors import InvalidRequest, Unprocessable


class InvalidIdentifier(Unprocessable):
    """A national identifier (RPPS, FINESS...) with a wrong shape or a wrong check key (422).

    >>> raise InvalidIdentifier("clé RPPS invalide : attendue 7, trouvée 3 (10000000013)")
    """

    default_code = "value"


class ExtractionFileError(InvalidRequest):
    """An extraction file that cannot be read at all: missing, empty, or with an unexpected header."""
