"""Fixtures of the auth tests: a provider on each backend, an app serving its routes, a fake clock.

The shared `engine` fixture empties the FHIR store's tables between PostgreSQL tests, not ours:
`provider` empties the auth tables itself. RSA signing keys are drawn from a small pool made once
per session (generating one costs ~100 ms); Argon2 runs at its lowest cost (test settings only).
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, delete

from socle.auth import schema
from socle.auth.api import router as auth_router
from socle.auth.db import epoch_now
from socle.auth.keys import new_rsa_private_key
from socle.auth.provider import AuthProvider
from socle.auth.settings import AuthSettings
from socle.config import Settings
from socle.fhir.api import router as fhir_router
from socle.store.repository import FhirStore

BASE_URL = "http://testserver"


class FakeClock:
    """Epoch seconds that tests move forward (token expiry, lock-out, TOTP steps)."""

    def __init__(self) -> None:
        self.now = float(epoch_now())

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def rsa_key_pool() -> list[rsa.RSAPrivateKey]:
    return [new_rsa_private_key() for _ in range(3)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def auth_settings(tmp_path: Path) -> AuthSettings:
    return AuthSettings(
        environment="test",
        base_url=BASE_URL,
        auth_key_encryption_key=SecretStr(secrets.token_urlsafe(32)),
        auth_key_file=tmp_path / "kek",
        auth_demo_dir=tmp_path / "demo",
        auth_argon2_time_cost=1,
        auth_argon2_memory_cost=8,
        auth_argon2_parallelism=1,
    )


def empty_auth_tables(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in reversed(schema.ALL_TABLES):
            connection.execute(delete(table))


@pytest.fixture
def provider(
    engine: Engine,
    store: FhirStore,
    auth_settings: AuthSettings,
    rsa_key_pool: list[rsa.RSAPrivateKey],
    clock: FakeClock,
) -> AuthProvider:
    empty_auth_tables(engine)
    keys = itertools.cycle(rsa_key_pool)
    return AuthProvider(engine, auth_settings, store=store, key_factory=lambda: next(keys), clock=clock)


@pytest.fixture
def web(provider: AuthProvider, store: FhirStore) -> Iterator[TestClient]:
    """An app with the auth routes mounted before the FHIR ones, as socle.app should do."""
    app = FastAPI()
    app.state.settings = Settings(base_url=BASE_URL)
    app.state.store = store
    app.state.auth = provider
    app.include_router(auth_router)
    app.include_router(fhir_router)
    with TestClient(app, base_url=BASE_URL, follow_redirects=False) as client:
        yield client
