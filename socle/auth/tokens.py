"""Access tokens: minting signed JWTs, and `verify_access_token`, which every resource server calls.

An access token is an RFC 9068 JWT (`typ: at+jwt`) signed RS256 by the provider's current key:
`iss`, `aud` (the FHIR base URL), `sub`, `exp` (10-15 min), `iat`, `nbf`, `jti`, `client_id`,
`scope`, and for users `fhirUser`, `patient` (SMART launch context), `sid` (the grant it comes from)
and the identity claims of `claims.py` (Pro Santé Connect-like for professionals).

Verification refuses, each with its own `InvalidToken.reason`: malformed tokens, `alg: none` and
any algorithm but RS256 (so an HS256 token keyed with our public key goes nowhere), a wrong `typ`
(an ID token is not an access token), an unknown or retired kid, a bad signature, a wrong issuer
or audience, an expired or not-yet-valid token, and a revoked one. The cheap checks come first;
the revocation lookup (`socle.auth.revocations`) runs last, and only for tokens that are otherwise
valid, hence not yet expired.

A client presents the same token for each of its requests over the token's 10-15 minutes, so a
token that passed the signature and claims checks is remembered by its SHA-256 digest (never the
token itself) until it expires. Each later presentation still re-checks what can change: the expiry
against the clock, that its signing key is still in the key ring (a removed key stops its tokens at
once), and revocation. Only signature, header and claims parsing, which cannot change, are skipped.

    claims = verify_access_token(bearer, verifier=provider.verifier)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError
from sqlalchemy import Engine

from socle.auth.claims import access_claims
from socle.auth.context import AccessClaims
from socle.auth.db import epoch_now
from socle.auth.errors import InvalidToken
from socle.auth.keys import SIGNING_ALG, KeyRing, SigningKey
from socle.auth.revocations import RevocationLookup

ACCESS_TOKEN_TYPE = "at+jwt"
MAX_VERIFIED = 20_000  # tokens remembered as verified (a few hundred bytes each)
ACCEPTED_TYPES = frozenset({"at+jwt", "application/at+jwt"})
MAX_TOKEN_LENGTH = 16_384
_PRINTABLE_ALG = re.compile(r"^[A-Za-z0-9+-]{1,16}$")


def sign_jwt(signing_key: SigningKey, claims: Mapping[str, Any], *, typ: str = "JWT") -> str:
    header = {"alg": SIGNING_ALG, "kid": signing_key.kid, "typ": typ}
    payload = json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode()
    return jws.serialize_compact(header, payload, signing_key.key, algorithms=[SIGNING_ALG])


@dataclass(frozen=True, slots=True)
class MintedToken:
    token: str
    jti: str
    issued_at: int
    expires_at: int


def _b64_json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


class _Verified:
    """A token that passed every check but revocation: what the next presentation may skip."""

    __slots__ = ("access", "claims", "expires_at", "kid")

    def __init__(self, claims: dict[str, Any], kid: str) -> None:
        self.claims = claims
        self.kid = kid
        self.expires_at: int = claims["exp"]
        self.access: AccessClaims | None = None


class TokenVerifier:
    """Checks access tokens against the key ring and the revocation table (thread-safe)."""

    def __init__(
        self,
        engine: Engine,
        keyring: KeyRing,
        *,
        issuer: str,
        audience: str,
        fhir_base: str,
        leeway: int = 30,
        clock: Callable[[], float] = epoch_now,
        revocation_check_seconds: float = 2.0,
    ) -> None:
        self.engine = engine
        self.keyring = keyring
        self.issuer = issuer
        self.audience = audience
        self.fhir_base = fhir_base
        self.leeway = leeway
        self.clock = clock
        self._revocations = RevocationLookup(engine, fresh_for=revocation_check_seconds, clock=clock)
        self._verified: dict[bytes, _Verified] = {}
        self._verified_lock = threading.Lock()

    def verify(self, token: str | None) -> AccessClaims:
        verified = self._verified_token(token, check_revocation=True)
        if verified.access is None:
            verified.access = access_claims(verified.claims, self.fhir_base)
        return verified.access

    def verified_claims(self, token: str | None, *, check_revocation: bool = True) -> dict[str, Any]:
        """The claims of a valid access token; InvalidToken (401) with the reason otherwise."""
        return dict(self._verified_token(token, check_revocation=check_revocation).claims)

    def is_revoked(self, jti: str, grant_id: str | None) -> bool:
        return self._revocations.any_revoked(jti, grant_id or jti)

    def _verified_token(self, token: str | None, *, check_revocation: bool) -> _Verified:
        if not token:
            raise InvalidToken("missing", "No bearer token")
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise InvalidToken("malformed", "The token is not a compact JWS")
        digest = hashlib.sha256(token.encode()).digest()
        verified = self._verified.get(digest)
        if verified is None:
            claims, kid = self._checked(token)
            verified = _Verified(claims, kid)
            self._remember(digest, verified)
        else:
            # What can change since the first check: the clock, and the key ring.
            if self.clock() > verified.expires_at + self.leeway:
                raise InvalidToken("expired", "The token expired")
            if self.keyring.public_key(verified.kid) is None:
                raise InvalidToken("unknown_kid", "The token is signed with an unknown or retired key")
        claims = verified.claims
        if check_revocation and self.is_revoked(claims["jti"], claims.get("sid")):
            raise InvalidToken("revoked", "The token was revoked")
        return verified

    def _remember(self, digest: bytes, verified: _Verified) -> None:
        with self._verified_lock:
            if len(self._verified) >= MAX_VERIFIED:
                now = self.clock()
                live = {k: v for k, v in self._verified.items() if now <= v.expires_at + self.leeway}
                self._verified = live if len(live) < MAX_VERIFIED else {}
            self._verified[digest] = verified

    def _checked(self, token: str) -> tuple[dict[str, Any], str]:
        """Header, key, signature and claims of a token seen for the first time: (claims, kid)."""
        header_segment = token.split(".", 1)[0]
        try:
            header = _b64_json(header_segment)
        except (ValueError, UnicodeError, binascii.Error):
            raise InvalidToken("malformed", "The token header is not base64url JSON") from None
        if not isinstance(header, dict):
            raise InvalidToken("malformed", "The token header is not a JSON object")
        self._check_header(header)
        key = self.keyring.public_key(header["kid"])
        if key is None:
            raise InvalidToken("unknown_kid", "The token is signed with an unknown or retired key")
        try:
            signed = jws.deserialize_compact(token, key, algorithms=[SIGNING_ALG])
        except BadSignatureError:
            raise InvalidToken("signature", "The token signature does not verify") from None
        except (JoseError, ValueError):
            raise InvalidToken("malformed", "The token does not decode") from None
        try:
            claims = json.loads(signed.payload)
        except ValueError:
            raise InvalidToken("malformed", "The token payload is not JSON") from None
        if not isinstance(claims, dict):
            raise InvalidToken("malformed", "The token payload is not a JSON object")
        self._check_claims(claims)
        return claims, header["kid"]

    # -- checks, cheapest first ------------------------------------------------------------

    @staticmethod
    def _check_header(header: dict[str, Any]) -> None:
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise InvalidToken("algorithm", "Unsigned tokens (alg none) are refused")
        if alg != SIGNING_ALG:
            shown = alg if _PRINTABLE_ALG.match(alg) else "this algorithm"
            raise InvalidToken("algorithm", f"Tokens signed with {shown} are refused: RS256 only")
        if header.get("typ") not in ACCEPTED_TYPES:
            raise InvalidToken("type", "Not an access token (typ at+jwt expected)")
        if not isinstance(header.get("kid"), str):
            raise InvalidToken("unknown_kid", "The token names no key (kid)")
        if "crit" in header or "jku" in header or "jwk" in header or "x5u" in header:
            # Keys come from our key ring only, never from the token itself.
            raise InvalidToken("malformed", "Token header parameters jku, jwk, x5u and crit are refused")

    def _check_claims(self, claims: dict[str, Any]) -> None:
        if claims.get("iss") != self.issuer:
            raise InvalidToken("issuer", "The token comes from another issuer")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.audience not in audiences:
            raise InvalidToken("audience", "The token is meant for another audience")
        now = self.clock()
        exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
        if not isinstance(exp, int) or isinstance(exp, bool):
            raise InvalidToken("malformed", "The token has no expiry (exp)")
        if now > exp + self.leeway:
            raise InvalidToken("expired", "The token expired")
        for moment in (nbf, iat):
            if moment is not None and (not isinstance(moment, int) or isinstance(moment, bool)):
                raise InvalidToken("malformed", "The token times (nbf, iat) are not integers")
            if isinstance(moment, int) and moment > now + self.leeway:
                raise InvalidToken("not_yet_valid", "The token is not valid yet")
        for name in ("jti", "sub", "client_id", "scope"):
            if not isinstance(claims.get(name), str) or (name != "scope" and not claims[name]):
                raise InvalidToken("malformed", f"The token claim {name} is missing or not a string")
        sid = claims.get("sid")
        if sid is not None and not isinstance(sid, str):
            raise InvalidToken("malformed", "The token claim sid is not a string")


def verify_access_token(token: str | None, *, verifier: TokenVerifier) -> AccessClaims:
    """The `AccessClaims` of a valid access token, or `InvalidToken` (401) saying why not."""
    return verifier.verify(token)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (None if absent or another scheme)."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
