"""`verify_access_token`: every way a bearer token can be bad is refused with its own reason; key
rotation keeps earlier tokens verifying until they expire; a removed key stops them at once; a
token remembered as verified still expires, and a revocation takes effect at once in this process
and within `auth_revocation_check_seconds` when another process made it."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.jwk import RSAKey
from sqlalchemy import Engine

from socle.auth import records
from socle.auth.errors import InvalidToken
from socle.auth.keys import rotate_signing_key
from socle.auth.provider import AuthProvider
from socle.auth.settings import AuthSettings
from socle.auth.tokens import verify_access_token
from socle.errors import Unauthorized
from socle.store.repository import FhirStore
from tests.auth.conftest import FakeClock


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(provider: AuthProvider, **overrides: Any) -> dict[str, Any]:
    now = int(provider.clock())
    claims = {
        "iss": provider.issuer,
        "aud": provider.fhir_base,
        "sub": "socle-operator",
        "client_id": "socle-operator",
        "scope": "system/*.rs",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "jti-1",
    }
    claims.update(overrides)
    return claims


def signed(provider: AuthProvider, claims: dict[str, Any], **header: Any) -> str:
    key = provider.keyring.signing_key()
    return jws.serialize_compact(
        {"alg": "RS256", "kid": key.kid, "typ": "at+jwt", **header}, json.dumps(claims).encode(), key.key
    )


def reason(provider: AuthProvider, token: str | None) -> str:
    with pytest.raises(InvalidToken) as caught:
        verify_access_token(token, verifier=provider.verifier)
    error = caught.value
    assert isinstance(error, Unauthorized) and error.status == 401
    assert error.headers["WWW-Authenticate"].startswith('Bearer realm="socle"')
    if error.reason != "missing":
        assert 'error="invalid_token"' in error.headers["WWW-Authenticate"]
        assert "error_description=" in error.headers["WWW-Authenticate"]
    return error.reason


def test_a_good_token_verifies(provider: AuthProvider) -> None:
    claims = verify_access_token(signed(provider, claims_of(provider)), verifier=provider.verifier)
    assert (claims.actor_type, claims.client_id, claims.scopes) == (
        "system",
        "socle-operator",
        ("system/*.rs",),
    )


def test_expired_and_not_yet_valid(provider: AuthProvider, clock: FakeClock) -> None:
    now = int(clock())
    assert reason(provider, signed(provider, claims_of(provider, exp=now - 31))) == "expired"
    # within the 30 s leeway it still passes
    verify_access_token(signed(provider, claims_of(provider, exp=now - 10)), verifier=provider.verifier)
    assert reason(provider, signed(provider, claims_of(provider, nbf=now + 120))) == "not_yet_valid"
    minted = provider.mint_operator_token("system/*.rs")
    clock.advance(provider.access_token_lifetime + 31)
    assert reason(provider, minted.token) == "expired"


def test_wrong_audience_and_issuer(provider: AuthProvider) -> None:
    assert (
        reason(provider, signed(provider, claims_of(provider, aud="https://other.example/fhir")))
        == "audience"
    )
    assert reason(provider, signed(provider, claims_of(provider, iss="https://idp.example"))) == "issuer"


def test_wrong_signature(provider: AuthProvider) -> None:
    header, _, signature = signed(provider, claims_of(provider)).split(".")
    tampered_payload = b64(json.dumps(claims_of(provider, scope="system/*.cruds")).encode())
    assert reason(provider, f"{header}.{tampered_payload}.{signature}") == "signature"
    # signed by a key of our own making under the provider's kid
    forger = RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    kid = provider.keyring.signing_key().kid
    forged = jws.serialize_compact(
        {"alg": "RS256", "kid": kid, "typ": "at+jwt"}, json.dumps(claims_of(provider)).encode(), forger
    )
    assert reason(provider, forged) == "signature"


def test_unknown_kid(provider: AuthProvider) -> None:
    assert reason(provider, signed(provider, claims_of(provider), kid="made-up")) == "unknown_kid"


def test_alg_none_is_refused(provider: AuthProvider) -> None:
    header = b64(
        json.dumps({"alg": "none", "typ": "at+jwt", "kid": provider.keyring.signing_key().kid}).encode()
    )
    payload = b64(json.dumps(claims_of(provider)).encode())
    assert reason(provider, f"{header}.{payload}.") == "algorithm"
    assert reason(provider, f"{header}.{payload}.c2lnbmF0dXJl") == "algorithm"


def test_hs256_keyed_with_the_public_key_is_refused(provider: AuthProvider) -> None:
    """The classic algorithm confusion: HMAC 'signed' with the RSA public key everyone can fetch."""
    kid = provider.keyring.signing_key().kid
    public_pem = (
        provider.keyring.signing_key()
        .key.get_op_key("verify")
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": kid}).encode())
    payload = b64(json.dumps(claims_of(provider)).encode())
    mac = hmac.HMAC(public_pem, hashes.SHA256())
    mac.update(f"{header}.{payload}".encode())
    assert reason(provider, f"{header}.{payload}.{b64(mac.finalize())}") == "algorithm"


def test_malformed_tokens(provider: AuthProvider) -> None:
    assert reason(provider, None) == "missing"
    assert reason(provider, "") == "missing"
    for bad in ("abc", "a.b", "a.b.c.d", "!!!.e30.sig", b64(b"[1]") + ".e30.sig", "x" * 20_000):
        assert reason(provider, bad) == "malformed", bad
    not_json = signed(provider, claims_of(provider)).split(".")
    key = provider.keyring.signing_key()
    raw = jws.serialize_compact({"alg": "RS256", "kid": key.kid, "typ": "at+jwt"}, b"not json", key.key)
    assert reason(provider, raw) == "malformed"
    assert reason(provider, signed(provider, claims_of(provider, jti=None))) == "malformed"
    assert reason(provider, signed(provider, claims_of(provider, exp="tomorrow"))) == "malformed"
    assert (
        reason(provider, signed(provider, claims_of(provider), jku="https://evil.example/jwks"))
        == "malformed"
    )
    assert not_json


def test_an_id_token_is_not_an_access_token(provider: AuthProvider) -> None:
    assert reason(provider, signed(provider, claims_of(provider), typ="JWT")) == "type"


def test_revoked_token_and_revoked_grant(provider: AuthProvider) -> None:
    minted = provider.mint_operator_token("system/*.rs")
    records.revoke_access_token(provider.engine, minted.jti, minted.expires_at, int(provider.clock()))
    assert reason(provider, minted.token) == "revoked"
    grant = f"grant-{uuid.uuid4().hex}"  # revocations are remembered per database, by the process
    in_grant = signed(provider, claims_of(provider, sid=grant, jti="jti-2"))
    verify_access_token(in_grant, verifier=provider.verifier)
    records.revoke_grant(provider.engine, grant, int(provider.clock()))
    assert reason(provider, in_grant) == "revoked"


def revoke_from_another_process(provider: AuthProvider, revoked_id: str) -> None:
    """The row another worker or the CLI would write: this process hears nothing of it."""
    from sqlalchemy import insert

    from socle.auth import schema

    now = int(provider.clock())
    row = {"revoked_id": revoked_id, "kind": "jti", "revoked_at": now, "expires_at": now + 3600}
    with provider.engine.begin() as connection:
        connection.execute(insert(schema.revocation).values(**row))


def test_a_revocation_by_another_process_takes_effect_within_the_documented_bound(
    provider: AuthProvider, clock: FakeClock
) -> None:
    bound = provider.settings.auth_revocation_check_seconds
    assert 0 < bound <= 10
    minted = provider.mint_operator_token("system/*.rs")
    verify_access_token(minted.token, verifier=provider.verifier)  # found not revoked: trusted `bound` s
    revoke_from_another_process(provider, minted.jti)
    clock.advance(bound)
    assert reason(provider, minted.token) == "revoked"
    assert reason(provider, minted.token) == "revoked"  # a revoked token is never trusted again


def test_with_no_bound_every_request_probes_the_revocations(
    engine: Engine, store: FhirStore, auth_settings: AuthSettings, clock: FakeClock
) -> None:
    settings = auth_settings.model_copy(update={"auth_revocation_check_seconds": 0})
    provider = AuthProvider(engine, settings, store=store, clock=clock)
    minted = provider.mint_operator_token("system/*.rs")
    verify_access_token(minted.token, verifier=provider.verifier)
    revoke_from_another_process(provider, minted.jti)
    assert reason(provider, minted.token) == "revoked"


def test_a_remembered_token_still_expires_and_still_needs_its_key(
    provider: AuthProvider, clock: FakeClock
) -> None:
    minted = provider.mint_operator_token("system/*.rs")
    verify_access_token(minted.token, verifier=provider.verifier)  # now remembered as verified
    clock.advance(provider.access_token_lifetime + provider.settings.auth_leeway_seconds + 1)
    assert reason(provider, minted.token) == "expired"
    clock.advance(-(provider.access_token_lifetime + provider.settings.auth_leeway_seconds + 1))
    old_kid = provider.keyring.signing_key().kid
    provider.keyring.rotate()
    assert provider.keyring.remove(old_kid)
    assert reason(provider, minted.token) == "unknown_kid"


def test_a_tampered_copy_of_a_verified_token_is_checked_afresh(provider: AuthProvider) -> None:
    minted = provider.mint_operator_token("system/*.rs")
    verify_access_token(minted.token, verifier=provider.verifier)
    header, payload, signature = minted.token.split(".")
    wider = json.loads(base64.urlsafe_b64decode(payload + "=="))
    wider["scope"] = "system/*.cruds"
    assert reason(provider, f"{header}.{b64(json.dumps(wider).encode())}.{signature}") == "signature"
    unsigned = b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": "k"}).encode())
    assert reason(provider, f"{unsigned}.{payload}.") == "algorithm"


def test_rotation_keeps_previous_key_until_its_tokens_expire(
    provider: AuthProvider, clock: FakeClock
) -> None:
    before = provider.mint_operator_token("system/*.rs")
    old_kid = provider.keyring.signing_key().kid
    new_kid = provider.keyring.rotate()
    assert new_kid != old_kid
    after = provider.mint_operator_token("system/*.rs")
    assert json.loads(base64.urlsafe_b64decode(after.token.split(".")[0] + "=="))["kid"] == new_kid

    published = {key["kid"] for key in provider.keyring.jwks()["keys"]}
    assert published == {old_kid, new_kid}
    verify_access_token(before.token, verifier=provider.verifier)  # signed by the previous key
    verify_access_token(after.token, verifier=provider.verifier)

    clock.advance(provider.access_token_lifetime + provider.settings.auth_leeway_seconds + 1)
    assert {key["kid"] for key in provider.keyring.jwks()["keys"]} == {new_kid}
    assert reason(provider, signed(provider, claims_of(provider), kid=old_kid)) == "unknown_kid"


def test_a_removed_key_stops_verifying_at_once(provider: AuthProvider) -> None:
    minted = provider.mint_operator_token("system/*.rs")
    old_kid = provider.keyring.signing_key().kid
    provider.keyring.rotate()
    assert provider.keyring.remove(old_kid)
    assert reason(provider, minted.token) == "unknown_kid"
    assert old_kid not in {key["kid"] for key in provider.keyring.jwks()["keys"]}


def test_rotation_by_another_process_is_picked_up(provider: AuthProvider, clock: FakeClock) -> None:
    """`rotate_signing_key(engine)` as the CLI runs it: this process sees the new key after its cache."""
    old_kid = provider.keyring.signing_key().kid
    new_kid = rotate_signing_key(provider.engine, settings=provider.settings, now=int(clock()))
    token_by_other = signed_with_kid(provider, new_kid)
    verify_access_token(token_by_other, verifier=provider.verifier)  # unknown kid -> reload
    clock.advance(provider.settings.auth_key_cache_seconds)
    assert provider.keyring.signing_key().kid == new_kid != old_kid


def signed_with_kid(provider: AuthProvider, kid: str) -> str:
    from sqlalchemy import select

    from socle.auth import schema

    with provider.engine.connect() as connection:
        sealed = connection.execute(
            select(schema.signing_key.c.private_key).where(schema.signing_key.c.kid == kid)
        ).scalar_one()
    der = provider.vault.open(sealed, owner=kid)
    key = RSAKey.import_key(serialization.load_der_private_key(der, password=None))  # type: ignore[arg-type]
    claims = json.dumps(claims_of(provider)).encode()
    return jws.serialize_compact({"alg": "RS256", "kid": kid, "typ": "at+jwt"}, claims, key)


def test_the_private_key_is_sealed_at_rest(provider: AuthProvider) -> None:
    from sqlalchemy import select

    from socle.auth import schema

    with provider.engine.connect() as connection:
        stored = connection.execute(select(schema.signing_key.c.private_key)).scalars().all()
    assert stored and all(b"PRIVATE KEY" not in value and value[:1] == b"\x01" for value in stored)


def test_bearer_errors_over_http(web: TestClient, provider: AuthProvider, clock: FakeClock) -> None:
    expired = signed(provider, claims_of(provider, exp=int(clock()) - 100, scope="openid"))
    response = web.get("/auth/userinfo", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.json()["reason"] == "expired"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    system = provider.mint_operator_token("system/*.rs").token
    assert web.get("/auth/userinfo", headers={"Authorization": f"Bearer {system}"}).status_code == 403


def test_verification_cost(provider: AuthProvider) -> None:
    """Not a benchmark: a guard against an accidental slow path (a JWKS fetch, a key parse per call)."""
    token = provider.mint_operator_token("system/*.rs").token
    provider.verifier.verify(token)
    started = time.perf_counter()
    for _ in range(200):
        provider.verifier.verify(token)
    per_call = (time.perf_counter() - started) / 200
    assert per_call < 0.005
