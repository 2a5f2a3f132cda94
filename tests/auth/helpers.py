"""Test helpers: accounts, clients, PKCE, and driving the login and consent pages like a browser."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from httpx import Response
from joserfc.jwk import ECKey, RSAKey

from socle.auth.accounts import EnrolledAccount, create_citizen_account, create_professional_account, totp_now
from socle.auth.assertions import CLIENT_ASSERTION_TYPE, client_assertion
from socle.auth.clients import Client, register_client
from socle.auth.provider import AuthProvider

APP_REDIRECT = "https://app.example/callback"
PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(response: Response) -> str:
    match = CSRF.search(response.text)
    assert match, response.text
    return match.group(1)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def citizen(provider: AuthProvider, login: str = "jeanne@example.fr", **kwargs: Any) -> EnrolledAccount:
    defaults: dict[str, Any] = {
        "password": PASSWORD,
        "patient_id": "pat-jeanne",
        "given_name": "Jeanne",
        "family_name": "Martin",
        "ins": "280017505601234",
        "represented_patients": ("pat-lucas",),
    }
    defaults.update(kwargs)
    return create_citizen_account(provider.engine, provider.vault, provider.hasher, login=login, **defaults)


def professional(provider: AuthProvider, id_nat_ps: str = "810001234565", **kwargs: Any) -> EnrolledAccount:
    defaults: dict[str, Any] = {
        "practitioner_id": "pra-bernard",
        "given_name": "Sophie",
        "family_name": "Bernard",
        "profession": "10",
        "specialty": "SM54",
        "structure_id": "1750001232",
        "structure_name": "Cabinet Bernard",
        "structure_sector": "SA07",
    }
    defaults.update(kwargs)
    return create_professional_account(provider.engine, provider.vault, id_nat_ps=id_nat_ps, **defaults)


def public_app(provider: AuthProvider, client_id: str = "app", **kwargs: Any) -> Client:
    defaults: dict[str, Any] = {
        "client_type": "public",
        "name": "Appli SMART",
        "redirect_uris": [APP_REDIRECT],
        "allowed_scopes": [
            "openid",
            "fhirUser",
            "profile",
            "launch/patient",
            "offline_access",
            "patient/*.rs",
            "patient/*.read",
            "user/*.rs",
        ],
    }
    defaults.update(kwargs)
    return register_client(provider.engine, client_id=client_id, **defaults)


@dataclass
class SystemClient:
    client: Client
    key: RSAKey


def system_client(
    provider: AuthProvider,
    private_key: rsa.RSAPrivateKey,
    client_id: str = "hopital",
    scopes: tuple[str, ...] = ("system/*.rs", "system/Observation.cu"),
) -> SystemClient:
    key = RSAKey.import_key(private_key)
    jwk = {**key.as_dict(private=False), "kid": key.thumbprint()}
    client = register_client(
        provider.engine,
        client_id=client_id,
        client_type="system",
        name="Logiciel hospitalier",
        allowed_scopes=scopes,
        jwks={"keys": [jwk]},
    )
    return SystemClient(client, key)


def assertion_form(
    provider: AuthProvider, client_id: str, key: RSAKey | ECKey, **kwargs: Any
) -> dict[str, str]:
    audience = kwargs.pop("audience", provider.endpoint("token"))
    now = kwargs.pop("now", int(provider.clock()))
    return {
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": client_assertion(client_id, key, audience, now=now, **kwargs),
    }


# -- browser flows ------------------------------------------------------------------------------------


def login_citizen(
    web: TestClient,
    provider: AuthProvider,
    enrolled: EnrolledAccount,
    *,
    next_url: str = "",
    password: str = PASSWORD,
) -> Response:
    query = f"?{urlencode({'next': next_url})}" if next_url else ""
    form = web.get(f"/auth/login/citoyen{query}")
    response = web.post(
        "/auth/login/citoyen",
        data={
            "csrf_token": csrf_of(form),
            "next": next_url,
            "login": enrolled.account.login,
            "password": password,
        },
    )
    assert response.status_code == 303, response.text
    return second_factor(web, provider, enrolled.totp_secret, response.headers["location"])


def login_professional(
    web: TestClient, provider: AuthProvider, enrolled: EnrolledAccount, *, next_url: str = ""
) -> Response:
    query = f"?{urlencode({'next': next_url})}" if next_url else ""
    form = web.get(f"/auth/login/pro{query}")
    response = web.post(
        "/auth/login/pro",
        data={"csrf_token": csrf_of(form), "next": next_url, "id_nat_ps": enrolled.account.login},
    )
    assert response.status_code == 303, response.text
    return second_factor(web, provider, enrolled.totp_secret, response.headers["location"])


def second_factor(web: TestClient, provider: AuthProvider, secret: str, totp_url: str) -> Response:
    page = web.get(totp_url)
    assert page.status_code == 200, page.text
    next_url = parse_qs(urlsplit(totp_url).query).get("next", [""])[0]
    response: Response = web.post(
        "/auth/login/totp",
        data={"csrf_token": csrf_of(page), "next": next_url, "code": totp_now(secret, provider.clock())},
    )
    return response


def authorize_url(client_id: str, challenge: str, scope: str, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": APP_REDIRECT,
        "scope": scope,
        "state": "etat-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return "/auth/authorize?" + urlencode(params)


def consent(
    web: TestClient, consent_page: Response, *, decision: str = "autoriser", patient: str = ""
) -> Response:
    assert consent_page.status_code == 200, consent_page.text
    request_query = re.search(r'name="request" value="([^"]*)"', consent_page.text)
    assert request_query
    data = {
        "csrf_token": csrf_of(consent_page),
        "request": html.unescape(request_query.group(1)),
        "decision": decision,
    }
    if patient:
        data["patient"] = patient
    response: Response = web.post("/auth/authorize", data=data)
    return response


def code_from(response: Response) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(APP_REDIRECT), location
    params = parse_qs(urlsplit(location).query)
    assert params["state"] == ["etat-123"]
    return params["code"][0]


def exchange(web: TestClient, code: str, verifier: str, client_id: str = "app") -> Response:
    response: Response = web.post(
        "/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": APP_REDIRECT,
            "client_id": client_id,
            "code_verifier": verifier,
        },
    )
    return response


def citizen_code_flow(
    web: TestClient,
    provider: AuthProvider,
    enrolled: EnrolledAccount,
    scope: str = "openid fhirUser launch/patient offline_access patient/*.rs",
    patient: str = "",
) -> tuple[str, str]:
    """Log in (password + TOTP), consent, and return (code, code_verifier)."""
    verifier, challenge = pkce_pair()
    url = authorize_url("app", challenge, scope, nonce="nonce-1")
    first = web.get(url)
    assert first.status_code == 303 and first.headers["location"].startswith("/auth/login"), first.text
    logged_in = login_citizen(web, provider, enrolled, next_url=url)
    assert logged_in.status_code == 303 and logged_in.headers["location"] == url
    consent_page = web.get(url)
    return code_from(consent(web, consent_page, patient=patient or enrolled.account.fhir_id)), verifier
