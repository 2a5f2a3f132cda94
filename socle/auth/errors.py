"""Auth failures, as members of Socle's one error hierarchy (`socle.errors`).

`InvalidToken` is the 401 a resource server returns for a bad bearer token: it carries a
machine-readable `reason` and the RFC 6750 `WWW-Authenticate` header, so the FHIR API (which
renders any `SocleError` with its `.headers`) needs nothing auth-specific.

    raise InvalidToken("expired", "The access token expired")
"""

from __future__ import annotations

from typing import Literal

from socle.errors import SocleError, Unauthorized

TokenFailure = Literal[
    "missing",
    "malformed",
    "algorithm",
    "unknown_kid",
    "signature",
    "type",
    "issuer",
    "audience",
    "expired",
    "not_yet_valid",
    "revoked",
]


class InvalidToken(Unauthorized):
    """A bearer token that is missing or does not verify (401, `WWW-Authenticate: Bearer ...`)."""

    def __init__(self, reason: TokenFailure, description: str) -> None:
        super().__init__(description)
        self.reason: TokenFailure = reason
        # RFC 6750 §3: no error code when no token was sent at all. The description is ours and
        # plain ASCII without quotes or backslashes, so it needs no escaping inside the header.
        if reason == "missing":
            self.headers = {"WWW-Authenticate": 'Bearer realm="socle"'}
        else:
            self.headers = {
                "WWW-Authenticate": (
                    f'Bearer realm="socle", error="invalid_token", error_description="{description}"'
                )
            }


class LoginRefused(Unauthorized):
    """Wrong identifier, password or code: one message whatever was wrong (no user enumeration)."""


class TooManyAttempts(SocleError):
    """Login locked for a while (per identifier) or attempts throttled (per address): 429."""

    status = 429
    default_code = "throttled"

    def __init__(self, message: str, *, retry_after: int, locks_now: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        # True for the failure that sets the lock (the audit trail records a lock-out), False for
        # an attempt refused because the lock is already on.
        self.locks_now = locks_now
        self.headers = {"Retry-After": str(max(retry_after, 1))}
