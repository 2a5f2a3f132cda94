"""The client registry: who may ask for tokens, how it authenticates, and for which scopes.

- `public`: a browser or mobile app (SMART app). No credential; authorization code with PKCE S256,
  always.
- `confidential`: a server-side web app. Authorization code (PKCE required too: it costs nothing)
  and authenticates at the token endpoint with `private_key_jwt` against the JWKS it registered.
- `system`: a backend (hospital software, the operator CLI). `client_credentials` only, with
  `private_key_jwt`; only `system/` scopes.

No client secrets: confidential and system clients prove themselves with a signed assertion, so
nothing shared can leak from our tables. The built-in `socle-operator` system client has no keys at
all: its tokens are minted locally by `socle token` on a machine holding the database and the
key-encryption key.

Clients are read from the table on each use (a primary-key lookup): a registration or a change of
keys applies at once, in every process.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Literal

from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import Engine, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from socle.auth import schema
from socle.auth.db import epoch_now, reading, writing
from socle.auth.scopes import is_known_scope, parse_scope, scope_covered, split_scopes
from socle.errors import Conflict, InvalidRequest

ClientType = Literal["public", "confidential", "system"]
OPERATOR_CLIENT_ID = "socle-operator"
OPERATOR_SCOPES = ("system/*.*", "system/*.cruds")


@dataclass(frozen=True, slots=True)
class Client:
    """A registered client, in the shape Authlib's grants expect (its `ClientMixin` methods)."""

    client_id: str
    client_type: ClientType
    name: str
    redirect_uris: tuple[str, ...] = ()
    allowed_scopes: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ()
    auth_method: str = "none"  # none | private_key_jwt
    jwks: dict[str, Any] | None = field(default=None, compare=False)
    pkce_required: bool = True
    disabled: bool = False

    # -- Authlib's ClientMixin -------------------------------------------------------------

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Only an unambiguous registration may omit redirect_uri in the request.
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The requested scope if the client is registered for all of it; None (invalid_scope) if not.

        Asking for nothing means asking for everything the client is registered for.
        """
        if not scope:
            return " ".join(self.allowed_scopes)
        requested = split_scopes(scope)
        if all(scope_covered(self.allowed_scopes, s) for s in requested):
            return " ".join(dict.fromkeys(requested))
        return None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact match, no prefix or pattern

    def check_client_secret(self, client_secret: str) -> bool:
        return False  # no shared secrets (module docstring)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return not self.disabled and method == self.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return not self.disabled and grant_type in self.grant_types

    # -- Socle -----------------------------------------------------------------------------

    def key_set(self) -> KeySet:
        if not self.jwks:
            raise InvalidRequest(f"Client {self.client_id} has no registered keys")
        return KeySet.import_key_set(self.jwks)  # type: ignore[arg-type]


def _client(row: Row[Any]) -> Client:
    return Client(
        client_id=row.client_id,
        client_type=row.client_type,
        name=row.name,
        redirect_uris=tuple(json.loads(row.redirect_uris)),
        allowed_scopes=tuple(json.loads(row.allowed_scopes)),
        grant_types=tuple(json.loads(row.grant_types)),
        auth_method=row.auth_method,
        jwks=json.loads(row.jwks) if row.jwks else None,
        pkce_required=bool(row.pkce_required),
        disabled=bool(row.disabled),
    )


def get_client(engine: Engine, client_id: str) -> Client | None:
    with reading(engine) as connection:
        row = connection.execute(select(schema.client).where(schema.client.c.client_id == client_id)).first()
    return _client(row) if row else None


PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def _check_jwks(jwks: dict[str, Any]) -> None:
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys or not all(isinstance(key, dict) for key in keys):
        raise InvalidRequest('The client JWKS must be {"keys": [...]} with at least one key')
    for key in keys:
        # Checked before parsing: a symmetric key has no business here, whatever its size.
        if key.get("kty") not in ("RSA", "EC"):
            raise InvalidRequest("Client keys must be RSA or EC public keys (no shared secrets)")
        if PRIVATE_JWK_MEMBERS & key.keys():
            raise InvalidRequest("Register the client's PUBLIC keys only, never its private key")
    try:
        KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise InvalidRequest(f"Invalid client JWKS: {error}") from None


def _check_scopes(client_type: ClientType, scopes: Iterable[str]) -> None:
    for scope in scopes:
        if not is_known_scope(scope):
            raise InvalidRequest(f"Unknown scope {scope!r}")
        parsed = parse_scope(scope)
        if parsed is None:
            continue
        if client_type == "system" and parsed.context != "system":
            raise InvalidRequest(f"A system client holds system/ scopes only (got {scope!r})")
        if client_type != "system" and parsed.context == "system":
            raise InvalidRequest(f"Only system clients may hold system/ scopes (got {scope!r})")


def register_client(
    engine: Engine,
    *,
    client_id: str,
    client_type: ClientType,
    name: str,
    redirect_uris: Iterable[str] = (),
    allowed_scopes: Iterable[str] = (),
    jwks: dict[str, Any] | None = None,
    refresh_tokens: bool = True,
    replace: bool = False,
) -> Client:
    """Register (or with `replace`, update) a client; the grant types follow from its type.

    Public clients always require PKCE S256; confidential and system clients must register the
    public keys they sign their `private_key_jwt` assertions with.
    """
    redirect_uris = tuple(redirect_uris)
    allowed_scopes = tuple(allowed_scopes)
    if client_type not in ("public", "confidential", "system"):
        raise InvalidRequest(f"Unknown client type {client_type!r}")
    if not client_id or len(client_id) > 100:
        raise InvalidRequest("client_id must be 1 to 100 characters")
    _check_scopes(client_type, allowed_scopes)
    grant_types: tuple[str, ...]
    if client_type == "system":
        if redirect_uris:
            raise InvalidRequest("A system client has no redirect URIs")
        grant_types = ("client_credentials",) if jwks else ()
        auth_method = "private_key_jwt"
    else:
        if not redirect_uris:
            raise InvalidRequest("A browser-facing client needs at least one redirect URI")
        for uri in redirect_uris:
            if "#" in uri or not (uri.startswith("https://") or uri.startswith("http://")):
                raise InvalidRequest(f"Invalid redirect URI {uri!r}: absolute http(s), no fragment")
        grant_types = ("authorization_code", "refresh_token") if refresh_tokens else ("authorization_code",)
        auth_method = "none" if client_type == "public" else "private_key_jwt"
    if auth_method == "private_key_jwt" and client_id != OPERATOR_CLIENT_ID and jwks is None:
        raise InvalidRequest(f"A {client_type} client authenticates with private_key_jwt: give its JWKS")
    if jwks is not None:
        _check_jwks(jwks)
    client = Client(
        client_id=client_id,
        client_type=client_type,
        name=name,
        redirect_uris=redirect_uris,
        allowed_scopes=allowed_scopes,
        grant_types=grant_types,
        auth_method=auth_method,
        jwks=jwks,
        pkce_required=True,
    )
    values = {
        "client_type": client_type,
        "name": name,
        "redirect_uris": json.dumps(list(redirect_uris)),
        "allowed_scopes": json.dumps(list(allowed_scopes)),
        "grant_types": json.dumps(list(grant_types)),
        "auth_method": auth_method,
        "jwks": json.dumps(jwks) if jwks is not None else None,
        "pkce_required": True,
        "disabled": False,
    }
    t = schema.client
    with writing(engine) as connection:
        exists = connection.execute(select(t.c.client_id).where(t.c.client_id == client_id)).first()
        if exists and not replace:
            raise Conflict(f"Client {client_id} is already registered")
        if exists:
            connection.execute(update(t).where(t.c.client_id == client_id).values(**values))
        else:
            try:
                connection.execute(insert(t).values(client_id=client_id, created_at=epoch_now(), **values))
            except IntegrityError:
                raise Conflict(f"Client {client_id} is already registered") from None
    return client


def set_client_disabled(engine: Engine, client_id: str, disabled: bool = True) -> None:
    with writing(engine) as connection:
        connection.execute(
            update(schema.client).where(schema.client.c.client_id == client_id).values(disabled=disabled)
        )


def ensure_builtin_clients(engine: Engine) -> None:
    """The operator's system client, whose tokens only `socle token` mints (no keys, no grant)."""
    if get_client(engine, OPERATOR_CLIENT_ID) is None:
        with suppress(Conflict):  # registered by a concurrent first start
            register_client(
                engine,
                client_id=OPERATOR_CLIENT_ID,
                client_type="system",
                name="Opérateur Socle (ligne de commande)",
                allowed_scopes=OPERATOR_SCOPES,
            )
