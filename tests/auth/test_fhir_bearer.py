"""The FHIR API behind real bearer tokens: no token, a bad token, an operator token, a citizen's token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from socle.app import create_app
from socle.auth.provider import AuthProvider
from socle.config import Settings
from socle.store.repository import FhirStore
from tests.auth.conftest import BASE_URL, FakeClock
from tests.auth.helpers import citizen, citizen_code_flow, exchange, public_app
from tests.factories import observation, patient


@pytest.fixture
def api(provider: AuthProvider, store: FhirStore) -> Iterator[TestClient]:
    """The real application (bearer authenticator, auth routes first) on this test's provider."""
    app = create_app(Settings(base_url=BASE_URL), store)
    app.state.auth = provider
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_without_a_token_the_api_answers_401_and_traces_the_attempt(
    api: TestClient, provider: AuthProvider
) -> None:
    response = api.get("/fhir/Patient/anyone")
    assert response.status_code == 401
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.headers["www-authenticate"].startswith("Bearer")
    operator = provider.mint_operator_token("system/*.*").token
    events = api.get("/fhir/AuditEvent", headers=bearer(operator)).json()["entry"]
    refused = [e["resource"] for e in events if e["resource"]["outcome"] != "0"]
    assert len(refused) == 1 and refused[0]["entity"][0]["what"]["reference"] == "Patient/anyone"


def test_the_capability_statement_needs_no_token(api: TestClient) -> None:
    assert api.get("/fhir/metadata").status_code == 200
    assert api.get("/fhir/.well-known/smart-configuration").json()["token_endpoint"].endswith("/auth/token")


def test_an_operator_token_reads_and_writes(api: TestClient, provider: AuthProvider) -> None:
    token = provider.mint_operator_token("system/*.*").token
    created = api.post("/fhir/Patient", json=patient(), headers=bearer(token))
    assert created.status_code == 201
    assert api.get(f"/fhir/Patient/{created.json()['id']}", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize("token", ["not-a-jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
def test_a_malformed_or_unsigned_token_is_refused(api: TestClient, token: str) -> None:
    response = api.get("/fhir/Patient", headers=bearer(token))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_an_expired_token_is_refused(api: TestClient, provider: AuthProvider, clock: FakeClock) -> None:
    token = provider.mint_operator_token("system/*.*").token
    clock.advance(3600)
    assert api.get("/fhir/Patient", headers=bearer(token)).status_code == 401


def test_a_citizen_token_reaches_only_their_record(api: TestClient, provider: AuthProvider) -> None:
    operator = bearer(provider.mint_operator_token("system/*.*").token)
    api.put(
        "/fhir/Patient/pat-jeanne", json={**patient("Martin", "Jeanne"), "id": "pat-jeanne"}, headers=operator
    )
    api.put("/fhir/Patient/pat-other", json={**patient("Autre"), "id": "pat-other"}, headers=operator)
    mine = api.post("/fhir/Observation", json=observation("Patient/pat-jeanne"), headers=operator).json()[
        "id"
    ]
    theirs = api.post("/fhir/Observation", json=observation("Patient/pat-other"), headers=operator).json()[
        "id"
    ]
    public_app(provider)
    enrolled = citizen(provider)
    code, verifier = citizen_code_flow(api, provider, enrolled)
    issued = exchange(api, code, verifier)
    assert issued.status_code == 200, issued.text
    assert issued.json()["patient"] == "pat-jeanne"
    token = bearer(issued.json()["access_token"])
    assert api.get(f"/fhir/Observation/{mine}", headers=token).status_code == 200
    assert api.get(f"/fhir/Observation/{theirs}", headers=token).status_code == 404
    assert api.get("/fhir/Patient/pat-other", headers=token).status_code == 404
    assert (
        api.post("/fhir/Observation", json=observation("Patient/pat-jeanne"), headers=token).status_code
        == 403
    )


def test_a_revoked_token_is_refused(api: TestClient, provider: AuthProvider) -> None:
    minted = provider.mint_operator_token("system/*.*")
    from socle.auth import records

    records.revoke_access_token(provider.engine, minted.jti, minted.expires_at, minted.issued_at)
    assert api.get("/fhir/Patient", headers=bearer(minted.token)).status_code == 401


def test_a_citizen_cannot_declare_bris_de_glace(api: TestClient, provider: AuthProvider) -> None:
    public_app(provider)
    enrolled = citizen(provider)
    code, verifier = citizen_code_flow(api, provider, enrolled)
    token = exchange(api, code, verifier).json()["access_token"]
    headers = {**bearer(token), "X-Purpose-Of-Use": "bris-de-glace", "X-Purpose-Reason": "urgence"}
    assert api.get("/fhir/Patient/pat-jeanne", headers=headers).status_code == 403
