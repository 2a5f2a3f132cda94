"""client_credentials with private_key_jwt: hospital software signs an assertion with its own key."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey, RSAKey

from socle.auth.clients import register_client, set_client_disabled
from socle.auth.provider import AuthProvider
from socle.errors import InvalidRequest
from tests.auth.conftest import FakeClock
from tests.auth.helpers import assertion_form, system_client


def token_request(
    web: TestClient, form: dict[str, str], scope: str | None = "system/*.rs"
) -> dict[str, object]:
    data = {"grant_type": "client_credentials", **form}
    if scope is not None:
        data["scope"] = scope
    response = web.post("/auth/token", data=data)
    body: dict[str, object] = response.json()
    body["_status"] = response.status_code
    return body


def test_system_token_with_a_signed_assertion(
    web: TestClient, provider: AuthProvider, rsa_key_pool: list[rsa.RSAPrivateKey]
) -> None:
    hospital = system_client(provider, rsa_key_pool[0])
    body = token_request(web, assertion_form(provider, "hopital", hospital.key))
    assert body["_status"] == 200, body
    assert body["scope"] == "system/*.rs" and "refresh_token" not in body
    claims = provider.verifier.verify(str(body["access_token"]))
    assert (claims.actor_type, claims.client_id, claims.subject) == ("system", "hopital", "hopital")
    assert claims.fhir_user is None and claims.scopes == ("system/*.rs",)


def test_default_scope_is_what_the_client_registered(
    web: TestClient, provider: AuthProvider, rsa_key_pool: list[rsa.RSAPrivateKey]
) -> None:
    hospital = system_client(provider, rsa_key_pool[0])
    body = token_request(web, assertion_form(provider, "hopital", hospital.key), scope=None)
    assert body["scope"] == "system/*.rs system/Observation.cu"


def test_an_assertion_signed_with_another_key_is_refused(
    web: TestClient, provider: AuthProvider, rsa_key_pool: list[rsa.RSAPrivateKey]
) -> None:
    system_client(provider, rsa_key_pool[0])
    impostor = RSAKey.import_key(rsa_key_pool[1])
    registered_kid = RSAKey.import_key(rsa_key_pool[0]).thumbprint()
    for key in (impostor, RSAKey.import_key(rsa_key_pool[1], parameters={"kid": registered_kid})):
        body = token_request(web, assertion_form(provider, "hopital", key))
        assert body["_status"] in (400, 401) and body["error"] == "invalid_client", body


def test_replayed_expired_or_misaddressed_assertions_are_refused(
    web: TestClient, provider: AuthProvider, rsa_key_pool: list[rsa.RSAPrivateKey], clock: FakeClock
) -> None:
    hospital = system_client(provider, rsa_key_pool[0])
    form = assertion_form(provider, "hopital", hospital.key)
    assert token_request(web, form)["_status"] == 200
    assert token_request(web, form)["error"] == "invalid_client"  # same jti again
    stale = assertion_form(provider, "hopital", hospital.key, now=int(clock()) - 600)
    assert token_request(web, stale)["error"] == "invalid_client"
    elsewhere = assertion_form(provider, "hopital", hospital.key, audience="https://other.example/token")
    assert token_request(web, elsewhere)["error"] == "invalid_client"
    too_long = assertion_form(provider, "hopital", hospital.key, lifetime=3600, jti=uuid.uuid4().hex)
    assert token_request(web, too_long)["error"] == "invalid_client"
    symmetric = {**form, "client_assertion": hs256_with_public_key(provider, hospital.key)}
    assert token_request(web, symmetric)["error"] == "invalid_client"


def hs256_with_public_key(provider: AuthProvider, key: RSAKey) -> str:
    """An assertion 'signed' HS256 with the client's public key as the HMAC secret."""
    public_pem = key.as_pem(private=False)
    header = {"alg": "HS256", "typ": "JWT", "kid": key.thumbprint()}
    now = int(provider.clock())
    claims = {
        "iss": "hopital",
        "sub": "hopital",
        "aud": provider.endpoint("token"),
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    mac = hmac.HMAC(public_pem, hashes.SHA256())
    mac.update(signing_input.encode())
    return f"{signing_input}.{b64(mac.finalize())}"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_scopes_beyond_the_registration_are_refused(
    web: TestClient, provider: AuthProvider, rsa_key_pool: list[rsa.RSAPrivateKey]
) -> None:
    hospital = system_client(provider, rsa_key_pool[0])
    for scope in ("system/*.cruds", "system/Patient.d", "user/*.rs", "patient/*.rs", "bogus"):
        body = token_request(web, assertion_form(provider, "hopital", hospital.key), scope=scope)
        assert body["error"] == "invalid_scope", (scope, body)
    narrower = token_request(
        web, assertion_form(provider, "hopital", hospital.key), scope="system/Observation.rs"
    )
    assert narrower["scope"] == "system/Observation.rs"


def test_es384_keys_work_too(web: TestClient, provider: AuthProvider) -> None:
    key = ECKey.import_key(ec.generate_private_key(ec.SECP384R1()))
    register_client(
        provider.engine,
        client_id="labo",
        client_type="system",
        name="Laboratoire",
        allowed_scopes=["system/Observation.cru"],
        jwks={"keys": [{**key.as_dict(private=False), "kid": key.thumbprint()}]},
    )
    body = token_request(web, assertion_form(provider, "labo", key), scope="system/Observation.cru")
    assert body["_status"] == 200, body


def test_disabled_clients_and_public_clients_get_nothing(
    web: TestClient, provider: AuthProvider, rsa_key_pool: list[rsa.RSAPrivateKey]
) -> None:
    hospital = system_client(provider, rsa_key_pool[0])
    set_client_disabled(provider.engine, "hopital")
    assert token_request(web, assertion_form(provider, "hopital", hospital.key))["error"] == "invalid_client"
    # The operator client has no keys: no HTTP grant at all (its tokens come from `socle token`).
    operator = token_request(web, {"client_id": "socle-operator"})
    assert operator["_status"] in (400, 401)


def test_registration_refuses_private_or_symmetric_keys(provider: AuthProvider) -> None:
    private = RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(InvalidRequest, match="PUBLIC"):
        register_client(
            provider.engine,
            client_id="x",
            client_type="system",
            name="x",
            jwks={"keys": [private.as_dict(private=True)]},
        )
    with pytest.raises(InvalidRequest, match="no shared secrets"):
        register_client(
            provider.engine,
            client_id="y",
            client_type="system",
            name="y",
            jwks={"keys": [{"kty": "oct", "k": "c2VjcmV0"}]},
        )
    with pytest.raises(InvalidRequest, match="system/ scopes only"):
        register_client(
            provider.engine, client_id="z", client_type="system", name="z", allowed_scopes=["user/*.rs"]
        )
    with pytest.raises(InvalidRequest, match="redirect URI"):
        register_client(provider.engine, client_id="w", client_type="public", name="w")
