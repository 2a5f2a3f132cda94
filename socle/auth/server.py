"""Authlib's OAuth 2.0 / OpenID Connect server core, adapted to Socle.

Authlib does the protocol (parameter checks, redirect-URI rules, error responses, PKCE, client
assertions, OIDC nonce and ID token hooks); Socle supplies storage and policy through these
subclasses. Its core is synchronous: the routes (`api.py`) read the body, build a
`SocleOAuth2Request` and run the server in a worker thread. Stricter than Authlib's defaults:

- PKCE is S256 only and required of every client that registered with `pkce_required` (all of
  them); a public client cannot even start an authorization without a `code_challenge`;
- `client_credentials` only grants scopes the client registered, and `system/` ones only;
- codes and refresh tokens are consumed atomically (see `records.py`), and replay revokes the grant;
- client assertions must be asymmetric, short-lived (`auth_assertion_max_seconds`) and never replayed.

Authlib ships no type information: its imports carry a narrow `type: ignore`.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from authlib.oauth2 import AuthorizationServer  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749 import (  # type: ignore[import-untyped]
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Payload,
    OAuth2Request,
    grants,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint  # type: ignore[import-untyped]
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import CodeChallenge  # type: ignore[import-untyped]
from authlib.oauth2.rfc7662 import IntrospectionEndpoint  # type: ignore[import-untyped]
from authlib.oidc.core.grants import OpenIDCode  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import JoseError

from socle.auth import records
from socle.auth.accounts import get_account
from socle.auth.claims import identity_claims
from socle.auth.clients import Client, get_client
from socle.auth.errors import InvalidToken
from socle.auth.scopes import is_known_scope, scopes_for_actor, split_scopes
from socle.errors import SocleError

if TYPE_CHECKING:
    from socle.auth.provider import AuthorizedUser, AuthProvider

Pairs = Sequence[tuple[str, str]]
OAuthResult = tuple[int, Any, list[tuple[str, str]]]


# -- the request adapter -----------------------------------------------------------------------------


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, items: Pairs) -> None:
        self._data: dict[str, str] = {}
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in items:
            self._datalist[key].append(value)
            self._data.setdefault(key, value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class SocleOAuth2Request(OAuth2Request):  # type: ignore[misc]
    """An already-read HTTP request: method, headers, query and form pairs.

    `uri` only feeds Authlib's https check, which Socle enforces itself through its settings
    (https issuer outside local/dev; TLS usually ends at a proxy), so it is passed as https.
    """

    def __init__(self, method: str, uri: str, headers: Any, query: Pairs, form: Pairs) -> None:
        secure_uri = "https://" + uri.split("://", 1)[-1]
        super().__init__(method, secure_uri, headers=headers)
        self._args = dict(reversed(list(query)))  # first value wins, as in the payload
        self._form = dict(reversed(list(form)))
        self.payload = _Payload(query if method == "GET" else form)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


# -- grants -------------------------------------------------------------------------------------------


def _provider(grant_or_endpoint: Any) -> AuthProvider:
    provider: AuthProvider = grant_or_endpoint.server.provider
    return provider


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["none", "private_key_jwt"]

    def save_authorization_code(self, code: str, request: SocleOAuth2Request) -> None:
        provider = _provider(self)
        user: AuthorizedUser = request.user
        scope = " ".join(scopes_for_actor(split_scopes(request.scope or ""), user.account.actor_type))
        data = request.payload.data
        records.save_code(
            provider.engine,
            code,
            client_id=request.client.client_id,
            account_id=user.account.account_id,
            grant_id=uuid.uuid4().hex,
            redirect_uri=request.payload.redirect_uri,
            scope=scope,
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            launch_patient=user.launch_patient,
            auth_time=user.auth_time,
            amr=user.amr,
            now=int(provider.clock()),
            lifetime=provider.settings.auth_code_seconds,
        )

    def query_authorization_code(self, code: str, client: Client) -> records.CodeRecord | None:
        provider = _provider(self)
        return records.consume_code(provider.engine, code, client.client_id, int(provider.clock()))

    def delete_authorization_code(self, authorization_code: records.CodeRecord) -> None:
        pass  # consumed atomically by query_authorization_code

    def authenticate_user(self, authorization_code: records.CodeRecord) -> AuthorizedUser | None:
        from socle.auth.provider import AuthorizedUser

        account = get_account(_provider(self).engine, authorization_code.account_id)
        if account is None or account.disabled:
            return None
        return AuthorizedUser(
            account=account,
            launch_patient=authorization_code.launch_patient,
            auth_time=authorization_code.auth_time,
            amr=authorization_code.amr,
            grant_id=authorization_code.grant_id,
            grant_scope=authorization_code.scope,
        )


class RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["none", "private_key_jwt"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> records.RefreshRecord | None:
        provider = _provider(self)
        record = records.find_refresh_token(provider.engine, refresh_token)
        if record is None:
            return None
        now = int(provider.clock())
        if record.rotated_at is not None:
            # Reuse of a rotated token: someone holds a copy. Kill the whole grant.
            records.revoke_grant(provider.engine, record.grant_id, now)
            return None
        if record.revoked_at is not None or record.is_expired_at(now):
            return None
        return record

    def authenticate_user(self, refresh_token: records.RefreshRecord) -> AuthorizedUser | None:
        from socle.auth.provider import AuthorizedUser

        account = get_account(_provider(self).engine, refresh_token.account_id)
        if account is None or account.disabled:
            return None
        return AuthorizedUser(
            account=account,
            launch_patient=refresh_token.launch_patient,
            auth_time=refresh_token.auth_time,
            amr=refresh_token.amr,
            grant_id=refresh_token.grant_id,
            grant_scope=refresh_token.scope,
        )

    def revoke_old_credential(self, refresh_token: records.RefreshRecord) -> None:
        pass  # rotated before the new tokens are issued, in create_token_response

    def create_token_response(self) -> OAuthResult:
        # Authlib issues first and revokes the old token after; rotating first (atomically)
        # means two concurrent uses of one refresh token cannot both get tokens.
        provider = _provider(self)
        record: records.RefreshRecord = self.request.refresh_token
        user = self.authenticate_user(record)
        if user is None:
            raise InvalidGrantError("The account behind this refresh token is closed.")
        if not records.rotate_refresh_token(provider.engine, record, int(provider.clock())):
            raise InvalidGrantError("Refresh token already used: the grant is revoked.")
        token = self.issue_token(user, record)
        self.request.user = user
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["private_key_jwt"]

    def validate_token_request(self) -> None:
        super().validate_token_request()
        scope = self.request.client.get_allowed_scope(self.request.payload.scope)
        if scope is None:
            raise InvalidScopeError("The client is not registered for this scope.")
        self.request.scope = " ".join(scopes_for_actor(split_scopes(scope), "system"))

    def create_token_response(self) -> OAuthResult:
        token = self.generate_token(scope=self.request.scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


def _s256_matches(code_verifier: str, code_challenge: str) -> bool:
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    expected: str = create_s256_code_challenge(code_verifier)
    return hmac.compare_digest(expected.encode(), code_challenge.encode())


class S256CodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE, S256 only (RFC 9700 §2.1.1), required up front for clients that must use it."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]
    CODE_CHALLENGE_METHODS: ClassVar[dict[str, Any]] = {"S256": _s256_matches}

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        client: Client = grant.request.client
        if client.pkce_required and not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge and code_challenge_method=S256.")
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256.")
        super().validate_code_challenge(grant, redirect_uri)


class SocleOpenIDCode(OpenIDCode):  # type: ignore[misc]
    def __init__(self, provider: AuthProvider) -> None:
        super().__init__(require_nonce=False)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: SocleOAuth2Request) -> bool:
        return records.nonce_seen(self.provider.engine, request.payload.client_id, nonce)

    def generate_user_info(self, user: AuthorizedUser, scope: str) -> dict[str, Any]:
        return identity_claims(user.account, self.provider.fhir_base)

    def encode_id_token(self, token: dict[str, Any], request: SocleOAuth2Request) -> str:
        code: records.CodeRecord | None = request.authorization_code
        return self.provider.id_token(
            user=request.user,
            client_id=request.client.client_id,
            nonce=code.nonce if code else None,
            access_token=token.get("access_token"),
        )


# -- client authentication ------------------------------------------------------------------------------


class PrivateKeyJWT(JWTBearerClientAssertion):  # type: ignore[misc]
    """`private_key_jwt` (RFC 7523 §2.2, OIDC Core §9): an assertion signed with the client's key."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, provider: AuthProvider) -> None:
        super().__init__(validate_jti=True, leeway=provider.settings.auth_leeway_seconds)
        self.provider = provider

    def get_audiences(self) -> list[str]:
        p = self.provider
        return [p.endpoint("token"), p.issuer, p.endpoint("introspect"), p.endpoint("revoke")]

    def resolve_client_public_key(self, client: Client) -> Any:
        return client.key_set()

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        from socle.auth.provider import ASSERTION_ALGORITHMS

        try:
            token = jwt.decode(assertion, resolve_key, algorithms=list(ASSERTION_ALGORITHMS))
        except (JoseError, ValueError) as error:
            raise InvalidClientError(description="The client assertion does not verify.") from error
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims: Any) -> None:
        # RFC 7523 §3, checked against the provider's clock (Authlib's check reads the wall clock).
        now = int(self.provider.clock())
        leeway = self.leeway
        for name in ("iss", "sub", "aud", "exp", "jti"):
            if name not in claims:
                raise InvalidClientError(description=f"The client assertion has no {name} claim.")
        if claims["iss"] != claims["sub"]:
            raise InvalidClientError(description="Issuer and Subject MUST match.")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if not set(audiences) & set(self.get_audiences()):
            raise InvalidClientError(description="The client assertion is meant for another audience.")
        exp, nbf, iat = claims["exp"], claims.get("nbf"), claims.get("iat")
        if not isinstance(exp, int) or isinstance(exp, bool) or now > exp + leeway:
            raise InvalidClientError(description="The client assertion expired.")
        if exp > now + self.provider.settings.auth_assertion_max_seconds + leeway:
            raise InvalidClientError(description="The client assertion lives too long (5 minutes at most).")
        for moment in (nbf, iat):
            if moment is not None and (not isinstance(moment, int) or moment > now + leeway):
                raise InvalidClientError(description="The client assertion is not valid yet.")
        if not self.validate_jti(claims, claims["jti"]):
            raise InvalidClientError(description="The client assertion was already used (jti).")

    def validate_jti(self, claims: Any, jti: Any) -> bool:
        if not isinstance(jti, str) or not jti or len(jti) > 255:
            return False
        return records.remember_assertion(self.provider.engine, claims["sub"], jti, int(claims["exp"]))


# -- introspection and revocation ---------------------------------------------------------------------


class TokenView:
    """An access or refresh token as the introspection and revocation endpoints see it."""

    def __init__(
        self,
        provider: AuthProvider,
        *,
        access_claims: dict[str, Any] | None = None,
        refresh: records.RefreshRecord | None = None,
    ) -> None:
        self.provider = provider
        self.access_claims = access_claims
        self.refresh = refresh

    @property
    def client_id(self) -> str:
        if self.access_claims is not None:
            return str(self.access_claims["client_id"])
        assert self.refresh is not None
        return self.refresh.client_id

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        if self.access_claims is not None:
            return str(self.access_claims["scope"])
        assert self.refresh is not None
        return self.refresh.scope

    def is_expired(self) -> bool:
        if self.refresh is not None:
            return self.refresh.is_expired_at(int(self.provider.clock()))
        return False  # the verifier already refused expired access tokens

    def is_revoked(self) -> bool:
        if self.refresh is not None:
            return self.refresh.is_revoked()
        assert self.access_claims is not None
        return self.provider.verifier.is_revoked(self.access_claims["jti"], self.access_claims.get("sid"))


def _find_token(provider: AuthProvider, token: str, hint: str | None) -> TokenView | None:
    looks_like_jwt = token.count(".") == 2
    if hint != "refresh_token" and looks_like_jwt:
        try:
            claims = provider.verifier.verified_claims(token, check_revocation=False)
        except InvalidToken:
            return None
        return TokenView(provider, access_claims=claims)
    record = records.find_refresh_token(provider.engine, token)
    return TokenView(provider, refresh=record) if record else None


class SocleIntrospectionEndpoint(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS: ClassVar[list[str]] = ["none", "private_key_jwt"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenView | None:
        return _find_token(_provider(self), token_string, token_type_hint)

    def check_permission(self, token: TokenView, client: Client, request: SocleOAuth2Request) -> bool:
        # Resource servers and backends (authenticated by key) may introspect any token; a public
        # client, whose identity is only claimed, only its own.
        return client.auth_method == "private_key_jwt" or token.check_client(client)

    def introspect_token(self, token: TokenView) -> dict[str, Any]:
        if token.access_claims is not None:
            return {**token.access_claims, "active": True, "token_type": "Bearer"}
        record = token.refresh
        assert record is not None
        payload: dict[str, Any] = {
            "active": True,
            "token_type": "refresh_token",
            "client_id": record.client_id,
            "sub": record.account_id,
            "scope": record.scope,
            "iat": record.created_at,
            "exp": record.expires_at,
            "iss": _provider(self).issuer,
        }
        if record.launch_patient:
            payload["patient"] = record.launch_patient
        return payload


class SocleRevocationEndpoint(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS: ClassVar[list[str]] = ["none", "private_key_jwt"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenView | None:
        return _find_token(_provider(self), token_string, token_type_hint)

    def revoke_token(self, token: TokenView, request: SocleOAuth2Request) -> None:
        provider = _provider(self)
        now = int(provider.clock())
        if token.refresh is not None:
            # RFC 7009 §2.1: revoking a refresh token also ends the access tokens of its grant.
            records.revoke_grant(provider.engine, token.refresh.grant_id, now)
        elif token.access_claims is not None:
            records.revoke_access_token(
                provider.engine, token.access_claims["jti"], token.access_claims["exp"], now
            )


# -- the server -------------------------------------------------------------------------------------------


class SocleAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, provider: AuthProvider) -> None:
        super().__init__(scopes_supported=None)
        self.provider = provider

    def query_client(self, client_id: str) -> Client | None:
        if not isinstance(client_id, str) or not client_id or len(client_id) > 100:
            return None
        client = get_client(self.provider.engine, client_id)
        return client if client is not None and not client.disabled else None

    def save_token(self, token: dict[str, Any], request: SocleOAuth2Request) -> None:
        self.provider.save_issued_token(token, request.client, request.user)

    def validate_requested_scope(self, scope: str | None) -> None:
        for item in split_scopes(scope or ""):
            if not is_known_scope(item):
                raise InvalidScopeError(f"Unknown scope {_ascii(item)}.")

    def create_oauth2_request(self, request: SocleOAuth2Request) -> SocleOAuth2Request:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> OAuthResult:
        return status, body, list(headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass  # no signal bus: the audit trail is written by the routes


def _ascii(text: str) -> str:
    """Authlib refuses error descriptions outside RFC 6749's character set: keep what is allowed."""
    kept = "".join(c for c in text if 0x20 <= ord(c) <= 0x7E and c not in '"\\')
    return kept[:80] or hashlib.sha256(text.encode()).hexdigest()[:12]


def build_authorization_server(provider: AuthProvider) -> SocleAuthorizationServer:
    server = SocleAuthorizationServer(provider)
    server.register_token_generator("default", _token_generator(provider))
    server.register_client_auth_method("private_key_jwt", PrivateKeyJWT(provider))
    server.register_grant(
        AuthorizationCodeGrant, [S256CodeChallenge(required=True), SocleOpenIDCode(provider)]
    )
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_endpoint(SocleIntrospectionEndpoint)
    server.register_endpoint(SocleRevocationEndpoint)
    return server


def _token_generator(provider: AuthProvider) -> Any:
    def generate(
        grant_type: str,
        client: Client,
        user: AuthorizedUser | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        return provider.token_response(
            client=client, user=user, scope=scope or "", include_refresh_token=include_refresh_token
        )

    return generate


def oauth_error_message(error: Exception) -> str:
    """A one-line description of an Authlib or Socle error, for the French error page."""
    if isinstance(error, SocleError):
        return error.message
    description = getattr(error, "description", "") or ""
    return f"{getattr(error, 'error', 'error')}: {description}".strip(": ")
