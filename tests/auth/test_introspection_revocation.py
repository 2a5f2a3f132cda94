"""RFC 7662 introspection and RFC 7009 revocation, for access and refresh tokens."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from socle.auth.provider import AuthProvider
from tests.auth.conftest import FakeClock
from tests.auth.helpers import (
    SystemClient,
    assertion_form,
    citizen,
    citizen_code_flow,
    exchange,
    public_app,
    system_client,
)


def system_token(web: TestClient, provider: AuthProvider, key_owner: SystemClient) -> str:
    response = web.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "scope": "system/*.rs",
            **assertion_form(provider, "hopital", key_owner.key),
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_introspection_by_a_resource_server(
    web: TestClient, provider: AuthProvider, rsa_key_pool: list[rsa.RSAPrivateKey], clock: FakeClock
) -> None:
    hospital = system_client(provider, rsa_key_pool[0])
    public_app(provider)
    code, verifier = citizen_code_flow(web, provider, citizen(provider))
    user_tokens = exchange(web, code, verifier).json()

    def introspect(token: str, hint: str | None = None) -> dict[str, object]:
        form = {
            "token": token,
            **assertion_form(provider, "hopital", hospital.key, audience=provider.endpoint("introspect")),
        }
        if hint:
            form["token_type_hint"] = hint
        response = web.post("/auth/introspect", data=form)
        assert response.status_code == 200, response.text
        return dict(response.json())

    active = introspect(user_tokens["access_token"])
    assert active["active"] is True
    assert active["client_id"] == "app" and active["patient"] == user_tokens["patient"]
    assert active["scope"] == user_tokens["scope"] and active["token_type"] == "Bearer"
    refresh = introspect(user_tokens["refresh_token"], "refresh_token")
    assert refresh["active"] is True and refresh["client_id"] == "app"
    assert introspect("not-a-token") == {"active": False}
    clock.advance(provider.access_token_lifetime + 60)
    assert introspect(user_tokens["access_token"]) == {"active": False}


def test_a_public_client_introspects_only_its_own_tokens(
    web: TestClient, provider: AuthProvider, rsa_key_pool: list[rsa.RSAPrivateKey]
) -> None:
    hospital = system_client(provider, rsa_key_pool[0])
    public_app(provider)
    someone_elses = system_token(web, provider, hospital)
    response = web.post("/auth/introspect", data={"token": someone_elses, "client_id": "app"})
    assert response.json() == {"active": False}
    anonymous = web.post("/auth/introspect", data={"token": someone_elses})
    assert anonymous.status_code in (400, 401)


def test_revoking_an_access_token(
    web: TestClient, provider: AuthProvider, rsa_key_pool: list[rsa.RSAPrivateKey]
) -> None:
    hospital = system_client(provider, rsa_key_pool[0])
    token = system_token(web, provider, hospital)
    provider.verifier.verify(token)
    form = {
        "token": token,
        **assertion_form(provider, "hopital", hospital.key, audience=provider.endpoint("revoke")),
    }
    assert web.post("/auth/revoke", data=form).status_code == 200
    refused = web.get("/auth/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401 and refused.json()["reason"] == "revoked"
    # RFC 7009 §2.2: an unknown token is not an error
    form = {
        "token": "whatever",
        **assertion_form(provider, "hopital", hospital.key, audience=provider.endpoint("revoke")),
    }
    assert web.post("/auth/revoke", data=form).status_code == 200


def test_revoking_a_refresh_token_ends_its_grant(web: TestClient, provider: AuthProvider) -> None:
    public_app(provider)
    public_app(provider, client_id="other")
    code, verifier = citizen_code_flow(web, provider, citizen(provider))
    tokens = exchange(web, code, verifier).json()
    by_other = web.post("/auth/revoke", data={"token": tokens["refresh_token"], "client_id": "other"})
    assert by_other.status_code == 400  # not its token: nothing revoked
    assert provider.verifier.verify(tokens["access_token"])

    revoked = web.post(
        "/auth/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token", "client_id": "app"},
    )
    assert revoked.status_code == 200
    refresh = web.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": "app"},
    )
    assert refresh.json()["error"] == "invalid_grant"
    assert (
        web.get("/auth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).status_code
        == 401
    )
