"""Discovery documents and the JWKS, as clients and resource servers fetch them."""

from __future__ import annotations

from fastapi.testclient import TestClient

from socle.auth.provider import AuthProvider


def test_openid_configuration(web: TestClient, provider: AuthProvider) -> None:
    response = web.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    config = response.json()
    assert config["issuer"] == "http://testserver"
    for name, path in [
        ("authorization_endpoint", "/auth/authorize"),
        ("token_endpoint", "/auth/token"),
        ("userinfo_endpoint", "/auth/userinfo"),
        ("jwks_uri", "/auth/jwks"),
        ("introspection_endpoint", "/auth/introspect"),
        ("revocation_endpoint", "/auth/revoke"),
    ]:
        assert config[name] == "http://testserver" + path
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]
    assert "SubjectNameID" in config["claims_supported"]
    assert response.headers["access-control-allow-origin"] == "*"


def test_smart_configuration_is_served_before_the_fhir_catch_all(
    web: TestClient, provider: AuthProvider
) -> None:
    response = web.get("/fhir/.well-known/smart-configuration")
    assert response.status_code == 200
    smart = response.json()
    assert smart["token_endpoint"] == "http://testserver/auth/token"
    assert smart["code_challenge_methods_supported"] == ["S256"]
    assert {
        "client-public",
        "client-confidential-asymmetric",
        "permission-v2",
        "context-standalone-patient",
    } <= set(smart["capabilities"])
    assert {"patient/*.rs", "user/*.rs", "system/*.*"} <= set(smart["scopes_supported"])
    assert {"authorization_code", "client_credentials"} <= set(smart["grant_types_supported"])


def test_jwks_publishes_public_keys_only(web: TestClient, provider: AuthProvider) -> None:
    keys = web.get("/auth/jwks").json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kid"] == provider.keyring.signing_key().kid
    assert keys[0]["alg"] == "RS256" and keys[0]["use"] == "sig"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & keys[0].keys()
