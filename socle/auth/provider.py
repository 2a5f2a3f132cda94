"""The OpenID provider of one process: settings, keys, verifier, login checks, and token minting.

`AuthProvider` is built once per process (per app) and shared by the HTTP routes, the CLI and the
demo seeding; it owns no request state. The Authlib authorization server (`server.py`) calls back
into it to mint tokens and store OAuth state.

    provider = AuthProvider.for_app(store, settings)      # what the app does at start-up
    claims = provider.verifier.verify(bearer_token)       # what a resource server does
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from socle.auth import records
from socle.auth.accounts import Account, password_hasher
from socle.auth.claims import identity_claims
from socle.auth.clients import OPERATOR_CLIENT_ID, Client, ensure_builtin_clients, get_client
from socle.auth.db import epoch_now
from socle.auth.keys import SIGNING_ALG, KeyFactory, KeyRing
from socle.auth.logins import LoginService
from socle.auth.scopes import scope_covered, split_scopes
from socle.auth.sessions import AttemptLimiter, SessionStore
from socle.auth.settings import AuthSettings
from socle.auth.tokens import ACCESS_TOKEN_TYPE, MintedToken, TokenVerifier, sign_jwt
from socle.auth.vault import Vault
from socle.errors import Forbidden

if TYPE_CHECKING:
    from socle.auth.server import SocleAuthorizationServer
    from socle.config import Settings
    from socle.store.repository import FhirStore

ASSERTION_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
SUPPORTED_SCOPES = (
    "openid",
    "profile",
    "fhirUser",
    "launch",
    "launch/patient",
    "offline_access",
    "online_access",
    "patient/*.read",
    "patient/*.rs",
    "patient/*.cruds",
    "user/*.read",
    "user/*.write",
    "user/*.rs",
    "user/*.cruds",
    "system/*.read",
    "system/*.rs",
    "system/*.*",
    "system/*.cruds",
)


@dataclass(frozen=True, slots=True)
class AuthorizedUser:
    """The resource owner behind an authorization: who, for which patient, since when, how."""

    account: Account
    launch_patient: str | None
    auth_time: int
    amr: tuple[str, ...]
    grant_id: str | None = None
    grant_scope: str = ""  # the scope of the grant (a refresh may ask for less, never more)


class AuthProvider:
    def __init__(
        self,
        engine: Engine,
        settings: AuthSettings,
        *,
        store: FhirStore | None = None,
        key_factory: KeyFactory | None = None,
        clock: Callable[[], float] = epoch_now,
    ) -> None:
        from socle.auth.server import build_authorization_server
        from socle.store.repository import FhirStore

        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.issuer = settings.issuer
        self.fhir_base = settings.fhir_base
        self.store = store or FhirStore(engine)
        self.vault = Vault.from_settings(settings)
        self.keyring = KeyRing(engine, self.vault, settings, key_factory=key_factory, clock=clock)
        self.verifier = TokenVerifier(
            engine,
            self.keyring,
            issuer=self.issuer,
            audience=self.fhir_base,
            fhir_base=self.fhir_base,
            leeway=settings.auth_leeway_seconds,
            clock=clock,
            revocation_check_seconds=settings.auth_revocation_check_seconds,
        )
        self.hasher = password_hasher(settings)
        self.logins = LoginService(engine, self.vault, self.hasher, settings, clock=clock)
        self.sessions = SessionStore(
            engine,
            lifetime=settings.auth_session_hours * 3600,
            step_lifetime=settings.auth_login_step_minutes * 60,
            clock=clock,
        )
        self.attempts = AttemptLimiter(settings.auth_login_attempts_per_minute, 60.0, clock=clock)
        ensure_builtin_clients(engine)
        self.keyring.reload()  # creates the first signing key on a fresh database
        records.purge_expired(engine, int(clock()))
        self.server: SocleAuthorizationServer = build_authorization_server(self)

    @classmethod
    def for_app(cls, store: FhirStore, settings: Settings, **overrides: Any) -> AuthProvider:
        """The provider for an app: its public URL and environment come from the app's settings."""
        auth_settings = AuthSettings(base_url=settings.base_url, environment=settings.environment)
        return cls(store.engine, auth_settings, store=store, **overrides)

    # -- where things are -----------------------------------------------------------------

    @property
    def https(self) -> bool:
        return self.issuer.startswith("https://")

    def endpoint(self, name: str) -> str:
        return f"{self.issuer}/auth/{name}"

    @property
    def access_token_lifetime(self) -> int:
        return self.settings.auth_access_token_minutes * 60

    # -- minting --------------------------------------------------------------------------

    def mint_access_token(
        self,
        *,
        client_id: str,
        scope: str,
        account: Account | None = None,
        launch_patient: str | None = None,
        grant_id: str | None = None,
        now: int | None = None,
        lifetime: int | None = None,
    ) -> MintedToken:
        """A signed access token (RFC 9068). `now`/`lifetime` exist for tests and tools only."""
        issued_at = int(self.clock()) if now is None else now
        expires_at = issued_at + (self.access_token_lifetime if lifetime is None else lifetime)
        jti = uuid.uuid4().hex
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.fhir_base,
            "sub": account.account_id if account else client_id,
            "client_id": client_id,
            "scope": scope,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": expires_at,
            "jti": jti,
        }
        if grant_id:
            claims["sid"] = grant_id
        if account is not None:
            claims.update(identity_claims(account, self.fhir_base))
        if launch_patient:
            claims["patient"] = launch_patient
        token = sign_jwt(self.keyring.signing_key(), claims, typ=ACCESS_TOKEN_TYPE)
        return MintedToken(token, jti, issued_at, expires_at)

    def mint_operator_token(self, scope: str = "system/*.*") -> MintedToken:
        """A token for the built-in operator client, as `socle token` prints it."""
        ensure_builtin_clients(self.engine)
        client = get_client(self.engine, OPERATOR_CLIENT_ID)
        assert client is not None
        requested = split_scopes(scope)
        if not requested or not all(scope_covered(client.allowed_scopes, s) for s in requested):
            raise Forbidden(
                f"The operator client may not hold {scope!r} (allowed: {', '.join(client.allowed_scopes)})"
            )
        return self.mint_access_token(client_id=client.client_id, scope=" ".join(requested))

    def token_response(
        self, *, client: Client, user: AuthorizedUser | None, scope: str, include_refresh_token: bool
    ) -> dict[str, Any]:
        """The token endpoint's answer (RFC 6749 §5.1, plus SMART's `patient`)."""
        minted = self.mint_access_token(
            client_id=client.client_id,
            scope=scope,
            account=user.account if user else None,
            launch_patient=user.launch_patient if user else None,
            grant_id=user.grant_id if user else None,
        )
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": minted.token,
            "expires_in": minted.expires_at - minted.issued_at,
            "scope": scope,
        }
        if user is not None and user.launch_patient:
            token["patient"] = user.launch_patient
        # SMART: a refresh token only for apps that asked for offline or online access.
        wants_refresh = {"offline_access", "online_access"} & set(
            split_scopes(user.grant_scope if user else "")
        )
        if include_refresh_token and user is not None and wants_refresh:
            token["refresh_token"] = secrets.token_urlsafe(32)
        return token

    def save_issued_token(self, token: dict[str, Any], client: Client, user: AuthorizedUser | None) -> None:
        if "refresh_token" not in token or user is None or user.grant_id is None:
            return
        records.save_refresh_token(
            self.engine,
            token["refresh_token"],
            grant_id=user.grant_id,
            client_id=client.client_id,
            account_id=user.account.account_id,
            scope=user.grant_scope,
            launch_patient=user.launch_patient,
            auth_time=user.auth_time,
            amr=user.amr,
            now=int(self.clock()),
            lifetime=self.settings.auth_refresh_token_hours * 3600,
        )

    def id_token(
        self, *, user: AuthorizedUser, client_id: str, nonce: str | None, access_token: str | None
    ) -> str:
        from authlib.oidc.core.util import create_half_hash  # type: ignore[import-untyped]

        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": user.account.account_id,
            "aud": client_id,
            "azp": client_id,
            "iat": now,
            "exp": now + self.settings.auth_id_token_minutes * 60,
            "auth_time": user.auth_time,
            "amr": list(user.amr),
        }
        if nonce:
            claims["nonce"] = nonce
        if access_token:
            claims["at_hash"] = create_half_hash(access_token, SIGNING_ALG).decode()
        if user.grant_id:
            claims["sid"] = user.grant_id
        claims.update(identity_claims(user.account, self.fhir_base))
        claims["preferred_username"] = user.account.login
        return sign_jwt(self.keyring.signing_key(), claims, typ="JWT")

    # -- discovery ------------------------------------------------------------------------

    def openid_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoint("authorize"),
            "token_endpoint": self.endpoint("token"),
            "userinfo_endpoint": self.endpoint("userinfo"),
            "jwks_uri": self.endpoint("jwks"),
            "introspection_endpoint": self.endpoint("introspect"),
            "revocation_endpoint": self.endpoint("revoke"),
            "scopes_supported": list(SUPPORTED_SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [SIGNING_ALG],
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
            "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
            "introspection_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
            "revocation_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "amr",
                "given_name",
                "family_name",
                "preferred_username",
                "fhirUser",
                "SubjectNameID",
                "SubjectRole",
                "SubjectRefPro",
                "SubjectOrganization",
                "SubjectOrganizationID",
                "Secteur_Activite",
                "otherIds",
                "ins",
                "represented_patients",
            ],
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "ui_locales_supported": ["fr-FR"],
        }

    def smart_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.endpoint("jwks"),
            "authorization_endpoint": self.endpoint("authorize"),
            "token_endpoint": self.endpoint("token"),
            "introspection_endpoint": self.endpoint("introspect"),
            "revocation_endpoint": self.endpoint("revoke"),
            "userinfo_endpoint": self.endpoint("userinfo"),
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
            "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
            "scopes_supported": list(SUPPORTED_SCOPES),
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "capabilities": [
                "launch-standalone",
                "client-public",
                "client-confidential-asymmetric",
                "context-standalone-patient",
                "sso-openid-connect",
                "permission-offline",
                "permission-online",
                "permission-patient",
                "permission-user",
                "permission-v1",
                "permission-v2",
            ],
        }
