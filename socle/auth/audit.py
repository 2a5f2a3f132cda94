"""What the login pages and the OAuth endpoints leave in the audit trail.

The routes (`api.py`) call these after every attempt, successful or not; the events themselves are
shaped by `socle.audit.authentication`. This module decides what each one says:

- a successful step names the account; a refused one names only the identifier typed. An
  identifier is recorded in clear when it has the shape of one (an e-mail address for a citizen,
  an idNatPs for a professional); anything else, which may be a password typed in the wrong field,
  is recorded as the digest the lock-out counts under (`accounts.login_key`), as is the identifier
  behind a second factor (the login session keeps nothing else);
- the OAuth endpoints name the client (the authenticated one, or the one claimed by a refused
  request) and, for a user's grant, the account; never a token, code, verifier or assertion.

Attempts refused by the per-address throttle are not traced: they are refused before any
credential is looked at, and writing one event each would let a flood fill the trail.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from socle.audit.authentication import (
    AttemptedIdentifier,
    AuthenticatedAccount,
    AuthenticationTrace,
    AuthEventKind,
    Outcome,
    outcome_of_status,
    write_authentication,
)
from socle.auth.accounts import ID_NAT_PS, Account, AccountKind, login_key, normalize_login
from socle.canonical import identifier_system

if TYPE_CHECKING:
    from socle.auth.provider import AuthProvider
    from socle.auth.server import SocleOAuth2Request

ID_NAT_PS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
CITIZEN_LOGIN_SYSTEM = identifier_system("citizen-login")
LOGIN_KEY_SYSTEM = identifier_system("login-key")  # sha256 of kind + normalised identifier
_EMAIL_SHAPED = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,63}$")


@dataclass(frozen=True, slots=True)
class Caller:
    """Where an attempt comes from: the request id to quote and the client address."""

    request_id: str
    source_ip: str | None


def typed_identifier(kind: AccountKind, typed: str) -> AttemptedIdentifier:
    """The identifier of a refused first step, in clear only when it is shaped like one."""
    login = normalize_login(kind, typed)
    if kind == "professional" and ID_NAT_PS.match(login):
        return AttemptedIdentifier(ID_NAT_PS_SYSTEM, login)
    if kind == "citizen" and _EMAIL_SHAPED.match(login):
        return AttemptedIdentifier(CITIZEN_LOGIN_SYSTEM, login)
    return AttemptedIdentifier(LOGIN_KEY_SYSTEM, login_key(kind, typed))


def keyed_identifier(key: str) -> AttemptedIdentifier:
    """The identifier behind a second factor: its lock-out digest (see `typed_identifier`)."""
    return AttemptedIdentifier(LOGIN_KEY_SYSTEM, key)


def authenticated(account: Account) -> AuthenticatedAccount:
    return AuthenticatedAccount(account.account_id, account.fhir_reference, account.display)


def trace_login(
    provider: AuthProvider,
    caller: Caller,
    kind: AuthEventKind,
    outcome: Outcome,
    *,
    account: Account | None = None,
    attempted: AttemptedIdentifier | None = None,
    description: str | None = None,
) -> None:
    """One step of the login pages (first factor, second factor, lock-out, logout)."""
    write_authentication(
        provider.store,
        AuthenticationTrace(
            kind=kind,
            outcome=outcome,
            request_id=caller.request_id,
            source_ip=caller.source_ip,
            account=authenticated(account) if account is not None and outcome == "0" else None,
            attempted=attempted if account is None or outcome != "0" else None,
            description=description,
        ),
    )


def trace_oauth(
    provider: AuthProvider,
    caller: Caller,
    kind: AuthEventKind,
    request: SocleOAuth2Request,
    status: int,
    body: Any,
) -> None:
    """One call of the token, introspection or revocation endpoint, with Authlib's answer."""
    answer: dict[str, Any] = body if isinstance(body, dict) else {}
    outcome = outcome_of_status(status)
    client = getattr(request, "client", None)
    client_id = client.client_id if client is not None else _claimed_client(request)
    user = getattr(request, "user", None) if outcome == "0" else None
    grant_type = request.form.get("grant_type") if kind == "token" else None
    scope = answer.get("scope") if outcome == "0" else request.form.get("scope")
    write_authentication(
        provider.store,
        AuthenticationTrace(
            kind=kind,
            outcome=outcome,
            request_id=caller.request_id,
            source_ip=caller.source_ip,
            account=authenticated(user.account) if user is not None and kind == "token" else None,
            client_id=client_id,
            grant_type=grant_type,
            scope=scope if isinstance(scope, str) else None,
            description=_description(kind, status, answer),
        ),
    )


def _description(kind: AuthEventKind, status: int, answer: dict[str, Any]) -> str:
    if status >= 400:
        error = str(answer.get("error", "error"))
        detail = str(answer.get("error_description", ""))
        return f"refusé ({status}) : {error}" + (f" — {detail}" if detail else "")
    if kind == "introspection":
        if not answer.get("active"):
            return "jeton inactif, inconnu ou hors de portée du client"
        return f"jeton actif ({answer.get('token_type', '?')}, client {answer.get('client_id', '?')})"
    if kind == "revocation":
        return "révocation acceptée (RFC 7009 : un jeton inconnu l'est aussi)"
    return "jeton délivré"


def _claimed_client(request: SocleOAuth2Request) -> str | None:
    """The client a refused request claims to be: `client_id`, or the `sub` of its assertion
    (read without verification: it only says who the caller pretended to be)."""
    claimed = request.form.get("client_id")
    if claimed:
        return str(claimed)
    assertion = request.form.get("client_assertion") or ""
    parts = assertion.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) else None
