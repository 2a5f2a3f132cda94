"""Authentication leaves its AuditEvents: each login step, lock-out, logout, token grant, introspection
and revocation once, with its outcome, in the same hash chain, findable by the ordinary AuditEvent
search, and with no secret in what is stored."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import select

from socle.app import create_app
from socle.audit.authentication import AUTHENTICATION_EVENT_SYSTEM
from socle.audit.trail import verify_chain
from socle.auth.accounts import totp_now
from socle.auth.audit import LOGIN_KEY_SYSTEM
from socle.auth.provider import AuthProvider
from socle.config import Settings
from socle.store import schema
from socle.store.repository import FhirStore
from tests.auth.conftest import BASE_URL, FakeClock
from tests.auth.helpers import (
    PASSWORD,
    assertion_form,
    citizen,
    citizen_code_flow,
    csrf_of,
    exchange,
    login_citizen,
    login_professional,
    professional,
    public_app,
    system_client,
)


@pytest.fixture
def web(provider: AuthProvider, store: FhirStore) -> Iterator[TestClient]:
    """The real application (login pages, OAuth endpoints, FHIR API behind bearer tokens)."""
    app = create_app(Settings(base_url=BASE_URL), store)
    app.state.auth = provider
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as client:
        yield client


def auth_events(web: TestClient, provider: AuthProvider, **params: str) -> list[dict[str, Any]]:
    """The authentication events, through the FHIR AuditEvent search an operator uses."""
    operator = provider.mint_operator_token("system/*.rs").token
    response = web.get(
        "/fhir/AuditEvent",
        params={"type": "110114", "_count": "200", "_sort": "date", **params},
        headers={"Authorization": f"Bearer {operator}"},
    )
    assert response.status_code == 200, response.text
    return [entry["resource"] for entry in response.json().get("entry", [])]


def kind(event: dict[str, Any]) -> str:
    return next(str(c["code"]) for c in event["subtype"] if c["system"] == AUTHENTICATION_EVENT_SYSTEM)


def kinds(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(kind(e), e["outcome"]) for e in events]


def stored_audit_json(provider: AuthProvider) -> str:
    v = schema.resource_version
    with provider.engine.connect() as connection:
        rows = connection.execute(select(v.c.data).where(v.c.res_type == "AuditEvent")).scalars()
        return "\n".join(row.decode() for row in rows if row)


def post_citizen(web: TestClient, login: str, password: str) -> int:
    form = web.get("/auth/login/citoyen")
    data = {"csrf_token": csrf_of(form), "login": login, "password": password}
    return web.post("/auth/login/citoyen", data=data).status_code


def test_a_citizen_login_leaves_one_event_per_factor_naming_the_account(
    web: TestClient, provider: AuthProvider
) -> None:
    enrolled = citizen(provider)
    assert login_citizen(web, provider, enrolled).status_code == 200
    events = auth_events(web, provider)
    assert kinds(events) == [("login-first-factor", "0"), ("login-second-factor", "0")]
    for event in events:
        assert event["type"]["code"] == "110114" and event["action"] == "E"
        assert {
            "system": "http://dicom.nema.org/resources/ontology/DCM",
            "code": "110122",
            "display": "Login",
        } in (event["subtype"])
        person = event["agent"][0]
        assert person["who"]["reference"] == "Patient/pat-jeanne" and person["requestor"] is True
        assert person["network"]["address"] == "testclient"
        assert person["policy"][0].startswith("urn:socle:request:")


def test_the_request_id_given_by_the_caller_is_kept(web: TestClient, provider: AuthProvider) -> None:
    form = web.get("/auth/login/citoyen")
    web.post(
        "/auth/login/citoyen",
        data={"csrf_token": csrf_of(form), "login": "a@example.fr", "password": "x"},
        headers={"X-Request-Id": "req-42"},
    )
    (event,) = auth_events(web, provider)
    assert event["agent"][0]["policy"] == ["urn:socle:request:req-42"]


def test_a_professional_first_factor_names_the_idnatps_only_and_the_code_names_the_account(
    web: TestClient, provider: AuthProvider
) -> None:
    enrolled = professional(provider)
    assert login_professional(web, provider, enrolled).status_code == 200
    first, second = auth_events(web, provider)
    assert kinds([first, second]) == [("login-first-factor", "0"), ("login-second-factor", "0")]
    assert first["agent"][0]["who"] == {
        "identifier": {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "810001234565"}
    }
    assert second["agent"][0]["who"]["reference"] == "Practitioner/pra-bernard"


def test_a_refused_password_reads_the_same_whether_the_account_exists_or_not(
    web: TestClient, provider: AuthProvider
) -> None:
    enrolled = citizen(provider)
    assert post_citizen(web, enrolled.account.login, "wrong-password-123") == 401
    assert post_citizen(web, "nobody@example.fr", "wrong-password-123") == 401
    known, unknown = auth_events(web, provider)
    assert kinds([known, unknown]) == [("login-first-factor", "4")] * 2
    assert known["agent"][0]["altId"] == enrolled.account.login
    assert unknown["agent"][0]["altId"] == "nobody@example.fr"

    def shape(event: dict[str, Any]) -> dict[str, Any]:
        agent = {k: v for k, v in event["agent"][0].items() if k not in ("altId", "who", "policy")}
        rest = {k: v for k, v in event.items() if k not in ("id", "meta", "recorded", "agent")}
        return {**rest, "agent": agent, "who": sorted(event["agent"][0]["who"]["identifier"])}

    assert shape(known) == shape(unknown)
    assert "reference" not in str(known["agent"])


def test_a_password_typed_as_the_identifier_is_kept_only_as_a_digest(
    web: TestClient, provider: AuthProvider
) -> None:
    post_citizen(web, PASSWORD, "whatever")
    (event,) = auth_events(web, provider)
    assert event["agent"][0]["who"]["identifier"]["system"] == LOGIN_KEY_SYSTEM
    assert PASSWORD not in stored_audit_json(provider)


def test_a_wrong_code_then_a_lock_out_then_a_refusal_while_locked(
    web: TestClient, provider: AuthProvider
) -> None:
    enrolled = professional(provider)
    form = web.get("/auth/login/pro")
    web.post("/auth/login/pro", data={"csrf_token": csrf_of(form), "id_nat_ps": enrolled.account.login})
    page = web.get("/auth/login/totp")
    threshold = provider.settings.auth_lockout_threshold
    for _ in range(threshold):
        web.post("/auth/login/totp", data={"csrf_token": csrf_of(page), "code": "000000"})
    right = totp_now(enrolled.totp_secret, provider.clock())
    assert web.post("/auth/login/totp", data={"csrf_token": csrf_of(page), "code": right}).status_code == 429
    events = auth_events(web, provider)
    assert kinds(events) == [
        ("login-first-factor", "0"),
        *[("login-second-factor", "4")] * (threshold - 1),
        ("lockout", "8"),
        ("login-second-factor", "4"),
    ]
    assert all(e["agent"][0]["who"]["identifier"]["system"] == LOGIN_KEY_SYSTEM for e in events[1:])
    assert "verrouillé" in events[-1]["outcomeDesc"]
    (lockout,) = auth_events(web, provider, subtype="lockout", outcome="8")
    assert lockout["id"] == events[-2]["id"]
    stored = stored_audit_json(provider)
    assert right not in stored and "000000" not in stored


def test_a_citizen_lock_out_is_found_by_the_identifier_tried(
    web: TestClient, provider: AuthProvider, clock: FakeClock
) -> None:
    for _ in range(provider.settings.auth_lockout_threshold):
        post_citizen(web, "ghost@example.fr", "wrong-password-123")
    (lockout,) = auth_events(web, provider, altid="ghost@example.fr", outcome="8")
    assert kind(lockout) == "lockout"


def test_logout_is_traced_with_the_account(web: TestClient, provider: AuthProvider) -> None:
    logged_in = login_citizen(web, provider, citizen(provider))
    web.post("/auth/logout", data={"csrf_token": csrf_of(logged_in)})
    (logout,) = auth_events(web, provider, subtype="110123")
    assert kind(logout) == "logout" and logout["outcome"] == "0"
    assert logout["agent"][0]["who"]["reference"] == "Patient/pat-jeanne"


def test_each_grant_type_leaves_one_token_event_and_no_token_in_it(
    web: TestClient, provider: AuthProvider, rsa_key_pool: list[rsa.RSAPrivateKey]
) -> None:
    public_app(provider)
    hospital = system_client(provider, rsa_key_pool[0])
    code, verifier = citizen_code_flow(web, provider, citizen(provider))
    tokens = exchange(web, code, verifier).json()
    refreshed = web.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": "app"},
    ).json()
    system = web.post(
        "/auth/token",
        data={"grant_type": "client_credentials", **assertion_form(provider, "hopital", hospital.key)},
    ).json()
    replayed = exchange(web, code, verifier)
    assert replayed.status_code == 400

    events = auth_events(web, provider, subtype="ITI-71")
    assert kinds(events) == [
        ("token-authorization_code", "0"),
        ("token-refresh_token", "0"),
        ("token-client_credentials", "0"),
        ("token-authorization_code", "4"),
    ]
    by_code = events[0]
    client, person = (
        next(a for a in by_code["agent"] if a["requestor"]),
        next(a for a in by_code["agent"] if not a["requestor"]),
    )
    assert client["who"]["identifier"]["value"] == "app" and client["network"]["address"] == "testclient"
    assert person["who"]["reference"] == "Patient/pat-jeanne"
    assert by_code["entity"][0]["name"] == "authorization_code"
    assert "patient/*.rs" in by_code["entity"][0]["description"]
    assert [a["who"]["identifier"]["value"] for a in events[2]["agent"]] == ["hopital"]
    assert "invalid_grant" in events[3]["outcomeDesc"]

    stored = stored_audit_json(provider)
    secrets = [
        tokens["access_token"],
        tokens["refresh_token"],
        tokens["id_token"],
        refreshed["access_token"],
        refreshed["refresh_token"],
        system["access_token"],
        code,
        verifier,
        PASSWORD,
    ]
    assert not [secret for secret in secrets if secret in stored]


def test_a_refused_client_assertion_names_the_client_it_claimed(
    web: TestClient, provider: AuthProvider, rsa_key_pool: list[rsa.RSAPrivateKey]
) -> None:
    system_client(provider, rsa_key_pool[0])
    impostor = system_client(provider, rsa_key_pool[1], client_id="autre")
    response = web.post(
        "/auth/token",
        data={"grant_type": "client_credentials", **assertion_form(provider, "hopital", impostor.key)},
    )
    assert response.status_code in (400, 401)
    (event,) = auth_events(web, provider)
    assert kinds([event]) == [("token-client_credentials", "4")]
    assert event["agent"][0]["who"]["identifier"]["value"] == "hopital"


def test_introspection_and_revocation_are_traced_and_the_chain_holds(
    web: TestClient, provider: AuthProvider, rsa_key_pool: list[rsa.RSAPrivateKey]
) -> None:
    hospital = system_client(provider, rsa_key_pool[0])
    token = web.post(
        "/auth/token",
        data={"grant_type": "client_credentials", **assertion_form(provider, "hopital", hospital.key)},
    ).json()["access_token"]
    for endpoint in ("introspect", "revoke"):
        audience = provider.endpoint(endpoint)
        form = {"token": token, **assertion_form(provider, "hopital", hospital.key, audience=audience)}
        assert web.post(f"/auth/{endpoint}", data=form).status_code == 200
    assert web.post("/auth/introspect", data={"token": token}).status_code in (400, 401)

    events = auth_events(web, provider)
    assert kinds(events) == [
        ("token-client_credentials", "0"),
        ("introspection", "0"),
        ("revocation", "0"),
        ("introspection", "4"),
    ]
    assert "jeton actif" in events[1]["outcomeDesc"]
    assert events[2]["subtype"][0]["code"] == "110123"
    assert token not in stored_audit_json(provider)
    report = verify_chain(provider.engine)
    assert report.intact and report.entries >= len(events)
