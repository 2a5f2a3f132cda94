"""The routes mounted on the real application, as socle.app will do it (auth router first)."""

from __future__ import annotations

import secrets

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from socle.app import create_app
from socle.auth.api import router as auth_router
from socle.auth.provider import AuthProvider
from socle.config import Settings
from socle.store.repository import FhirStore
from tests.auth.conftest import empty_auth_tables


def test_the_provider_is_built_on_first_use_from_the_app_state(
    engine: Engine, store: FhirStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty_auth_tables(engine)
    monkeypatch.setenv("SOCLE_AUTH_KEY_ENCRYPTION_KEY", secrets.token_urlsafe(32))
    app = create_app(Settings(base_url="http://testserver"), store)
    # What socle/app.py should do: the auth routes before the FHIR catch-all.
    app.router.routes[:0] = auth_router.routes
    with TestClient(app) as client:
        assert client.get("/.well-known/openid-configuration").json()["issuer"] == "http://testserver"
        assert (
            client.get("/fhir/.well-known/smart-configuration")
            .json()["token_endpoint"]
            .endswith("/auth/token")
        )
        assert client.get("/fhir/metadata").status_code == 200
        assert isinstance(app.state.auth, AuthProvider)
        bearer = app.state.auth.mint_operator_token("system/*.rs").token
        assert app.state.auth.verifier.verify(bearer).client_id == "socle-operator"
