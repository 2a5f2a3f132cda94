"""Authorization code + PKCE with a real login (password or e-CPS stand-in, then TOTP), ID token,
userinfo, SMART launch context, and refresh-token rotation."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from socle.auth.clients import register_client
from socle.auth.provider import AuthProvider
from tests.auth.conftest import FakeClock
from tests.auth.helpers import (
    APP_REDIRECT,
    assertion_form,
    authorize_url,
    citizen,
    citizen_code_flow,
    code_from,
    consent,
    exchange,
    login_professional,
    pkce_pair,
    professional,
    public_app,
)
from tests.factories import patient


def test_citizen_code_flow_gives_tokens_with_launch_patient_and_identity(
    web: TestClient, provider: AuthProvider
) -> None:
    public_app(provider)
    enrolled = citizen(provider)
    code, verifier = citizen_code_flow(web, provider, enrolled, patient="pat-lucas")

    response = exchange(web, code, verifier)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["patient"] == "pat-lucas"  # the minor the parent chose
    assert 600 <= body["expires_in"] <= 900
    assert body["refresh_token"]
    assert set(body["scope"].split()) == {
        "openid",
        "fhirUser",
        "launch/patient",
        "offline_access",
        "patient/*.rs",
    }
    claims = provider.verifier.verify(body["access_token"])
    assert claims.actor_type == "patient"
    assert claims.fhir_user == "Patient/pat-jeanne"
    assert claims.patient == "pat-lucas"
    assert claims.represented_patients == ("pat-lucas",)
    assert claims.national_id == "280017505601234"
    assert claims.client_id == "app"
    assert response.headers["cache-control"] == "no-store"

    id_token = jwt.decode(body["id_token"], KeySet.import_key_set(web.get("/auth/jwks").json()))
    assert id_token.claims["aud"] == "app"
    assert id_token.claims["nonce"] == "nonce-1"
    assert id_token.claims["fhirUser"] == "http://testserver/fhir/Patient/pat-jeanne"
    assert id_token.claims["amr"] == ["pwd", "otp", "mfa"]
    assert id_token.claims["at_hash"]

    userinfo = web.get("/auth/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert userinfo.status_code == 200
    assert userinfo.json()["sub"] == enrolled.account.account_id
    assert userinfo.json()["represented_patients"] == ["pat-lucas"]


def test_a_parent_cannot_launch_on_a_patient_they_do_not_represent(
    web: TestClient, provider: AuthProvider
) -> None:
    public_app(provider)
    enrolled = citizen(provider)
    _, challenge = pkce_pair()
    url = authorize_url("app", challenge, "launch/patient patient/*.rs")
    web.get(url)
    from tests.auth.helpers import login_citizen

    login_citizen(web, provider, enrolled, next_url=url)
    refused = consent(web, web.get(url), patient="pat-someone-else")
    assert refused.status_code == 400
    assert "Choisissez un dossier patient valide" in refused.text


def test_professional_login_is_psc_like_and_selects_an_existing_patient(
    web: TestClient, provider: AuthProvider
) -> None:
    public_app(provider)
    enrolled = professional(provider)
    with provider.store.session() as session:
        session.update({**patient("Durand", "Paul"), "id": "pat-paul"}, "pat-paul")
    verifier, challenge = pkce_pair()
    url = authorize_url("app", challenge, "openid fhirUser launch/patient patient/*.read user/*.rs")
    login_professional(web, provider, enrolled, next_url=url)
    consent_page = web.get(url)
    assert "Identifiant du patient" in consent_page.text
    assert consent(web, consent_page, patient="pat-unknown").status_code == 400

    code = code_from(consent(web, web.get(url), patient="Patient/pat-paul"))
    body = exchange(web, code, verifier).json()

    claims = provider.verifier.verify(body["access_token"])
    assert claims.actor_type == "practitioner"
    assert claims.national_id == "810001234565"
    assert (claims.profession, claims.specialty) == ("10", "SM54")
    assert (claims.structure, claims.structure_sector) == ("1750001232", "SA07")
    assert claims.patient == body["patient"] == "pat-paul"
    raw = provider.verifier.verified_claims(body["access_token"])
    assert raw["SubjectNameID"] == "810001234565"
    assert raw["SubjectRole"] == ["10^1.2.250.1.213.1.1.5.5"]
    assert raw["SubjectRefPro"]["exercices"][0]["codeSavoirFaire"] == "SM54"
    assert raw["Secteur_Activite"] == "SA07^1.2.250.1.71.4.2.4"
    assert raw["aud"] == "http://testserver/fhir" and raw["iss"] == "http://testserver"
    id_claims = jwt.decode(body["id_token"], KeySet.import_key_set(web.get("/auth/jwks").json())).claims
    assert id_claims["SubjectOrganizationID"] == "1750001232"
    assert id_claims["given_name"] == "Sophie"


def test_citizens_never_get_user_scopes(web: TestClient, provider: AuthProvider) -> None:
    public_app(provider)
    enrolled = citizen(provider)
    code, verifier = citizen_code_flow(
        web, provider, enrolled, scope="openid user/*.rs patient/*.rs launch/patient"
    )
    body = exchange(web, code, verifier).json()
    assert "user/*.rs" not in body["scope"].split()
    assert "patient/*.rs" in body["scope"].split()


def test_pkce_is_mandatory_and_s256_only(web: TestClient, provider: AuthProvider) -> None:
    public_app(provider)
    base = {
        "response_type": "code",
        "client_id": "app",
        "redirect_uri": APP_REDIRECT,
        "state": "s",
        "scope": "openid",
    }
    without = web.get("/auth/authorize", params=base)
    assert without.status_code == 303
    error = parse_qs(urlsplit(without.headers["location"]).query)
    assert error["error"] == ["invalid_request"] and "PKCE" in error["error_description"][0]
    plain = web.get(
        "/auth/authorize", params={**base, "code_challenge": "a" * 43, "code_challenge_method": "plain"}
    )
    assert parse_qs(urlsplit(plain.headers["location"]).query)["error"] == ["invalid_request"]


def test_wrong_verifier_and_replayed_code_are_refused(web: TestClient, provider: AuthProvider) -> None:
    public_app(provider)
    enrolled = citizen(provider)
    code, verifier = citizen_code_flow(web, provider, enrolled)
    wrong = exchange(web, code, pkce_pair()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    # The code was spent by the failed attempt: a code is good for one try only.
    assert exchange(web, code, verifier).json()["error"] == "invalid_grant"


def test_a_replayed_code_revokes_the_tokens_it_gave(
    web: TestClient, provider: AuthProvider, clock: FakeClock
) -> None:
    public_app(provider)
    enrolled = citizen(provider)
    code, verifier = citizen_code_flow(web, provider, enrolled)
    tokens = exchange(web, code, verifier).json()
    assert exchange(web, code, verifier).json()["error"] == "invalid_grant"
    refused = web.get("/auth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert refused.status_code == 401 and refused.json()["reason"] == "revoked"


def test_unknown_client_or_redirect_uri_is_never_redirected_to(
    web: TestClient, provider: AuthProvider
) -> None:
    public_app(provider)
    _, challenge = pkce_pair()
    unknown = web.get(authorize_url("nobody", challenge, "openid"))
    assert unknown.status_code == 400 and "location" not in unknown.headers
    evil = web.get(authorize_url("app", challenge, "openid").replace("app.example", "evil.example"))
    assert evil.status_code == 400 and "location" not in evil.headers


def test_consent_refused_sends_access_denied(web: TestClient, provider: AuthProvider) -> None:
    public_app(provider)
    enrolled = citizen(provider)
    _, challenge = pkce_pair()
    url = authorize_url("app", challenge, "openid")
    from tests.auth.helpers import login_citizen

    login_citizen(web, provider, enrolled, next_url=url)
    denied = consent(web, web.get(url), decision="refuser")
    assert parse_qs(urlsplit(denied.headers["location"]).query)["error"] == ["access_denied"]


def test_refresh_rotation_refuses_the_old_token_and_kills_the_grant_on_reuse(
    web: TestClient, provider: AuthProvider, clock: FakeClock
) -> None:
    public_app(provider)
    enrolled = citizen(provider)
    code, verifier = citizen_code_flow(web, provider, enrolled)
    first = exchange(web, code, verifier).json()

    refreshed = web.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": "app"},
    )
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["patient"] == first["patient"]
    assert provider.verifier.verify(second["access_token"]).patient == first["patient"]

    narrower = web.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": second["refresh_token"],
            "client_id": "app",
            "scope": "patient/*.rs",
        },
    ).json()
    assert narrower["scope"] == "patient/*.rs"

    reused = web.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": "app"},
    )
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    # Reuse means a copy is loose: the whole grant is revoked, the newest tokens included.
    for token in (second["access_token"], narrower["access_token"]):
        status = web.get("/auth/userinfo", headers={"Authorization": f"Bearer {token}"})
        assert status.status_code == 401
    again = web.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": narrower["refresh_token"], "client_id": "app"},
    )
    assert again.json()["error"] == "invalid_grant"


def test_refresh_cannot_widen_scope_nor_be_used_by_another_client(
    web: TestClient, provider: AuthProvider
) -> None:
    public_app(provider)
    public_app(provider, client_id="other")
    enrolled = citizen(provider)
    code, verifier = citizen_code_flow(
        web, provider, enrolled, scope="openid offline_access launch/patient patient/*.rs"
    )
    tokens = exchange(web, code, verifier).json()
    wider = web.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "app",
            "scope": "patient/*.cruds",
        },
    )
    assert wider.json()["error"] == "invalid_scope"
    stolen = web.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": "other"},
    )
    assert stolen.json()["error"] == "invalid_grant"


def test_no_refresh_token_without_offline_access(web: TestClient, provider: AuthProvider) -> None:
    public_app(provider)
    enrolled = citizen(provider)
    code, verifier = citizen_code_flow(web, provider, enrolled, scope="openid launch/patient patient/*.rs")
    assert "refresh_token" not in exchange(web, code, verifier).json()


def test_prompt_none_without_session_answers_login_required(web: TestClient, provider: AuthProvider) -> None:
    public_app(provider)
    _, challenge = pkce_pair()
    response = web.get(authorize_url("app", challenge, "openid", prompt="none"))
    assert parse_qs(urlsplit(response.headers["location"]).query)["error"] == ["login_required"]


def test_confidential_client_authenticates_with_private_key_jwt_at_the_token_endpoint(
    web: TestClient, provider: AuthProvider, rsa_key_pool: list[rsa.RSAPrivateKey]
) -> None:
    key = RSAKey.import_key(rsa_key_pool[2])
    register_client(
        provider.engine,
        client_id="portail",
        client_type="confidential",
        name="Portail web",
        redirect_uris=[APP_REDIRECT],
        allowed_scopes=["openid", "user/*.rs"],
        jwks={"keys": [{**key.as_dict(private=False), "kid": key.thumbprint()}]},
    )
    enrolled = professional(provider)
    verifier, challenge = pkce_pair()
    url = authorize_url("portail", challenge, "openid user/*.rs")
    login_professional(web, provider, enrolled, next_url=url)
    code = code_from(consent(web, web.get(url)))
    token_form = {"grant_type": "authorization_code", "code": code, "redirect_uri": APP_REDIRECT}
    without_assertion = web.post(
        "/auth/token", data={**token_form, "client_id": "portail", "code_verifier": verifier}
    )
    assert without_assertion.json()["error"] == "invalid_client"
    # (the failed attempt above never reached the code: client authentication comes first)
    response = web.post(
        "/auth/token",
        data={**token_form, "code_verifier": verifier, **assertion_form(provider, "portail", key)},
    )
    assert response.status_code == 200, response.text
    claims = provider.verifier.verify(response.json()["access_token"])
    assert (claims.client_id, claims.actor_type, claims.patient) == ("portail", "practitioner", None)
