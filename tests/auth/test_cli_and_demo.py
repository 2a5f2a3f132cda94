"""`socle token` (mounted from socle.auth.cli), key rotation from the CLI, and the demo accounts."""

from __future__ import annotations

import stat
from collections.abc import Iterator

import pytest
import typer
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from socle.auth.assertions import load_private_key
from socle.auth.cli import rotate_keys, token
from socle.auth.demo import seed_demo_accounts
from socle.auth.provider import AuthProvider
from socle.auth.settings import AuthSettings
from socle.config import get_settings
from socle.errors import Forbidden
from tests.auth.helpers import assertion_form, consent, login_citizen, pkce_pair

cli = typer.Typer()
cli.command()(token)
cli.command("rotate-keys")(rotate_keys)


@pytest.fixture
def env(provider: AuthProvider, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI reads the same database and key-encryption key as the server (here: `provider`)."""
    key = provider.settings.auth_key_encryption_key
    assert key is not None
    monkeypatch.setenv("SOCLE_DATABASE_URL", provider.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("SOCLE_BASE_URL", "http://testserver")
    monkeypatch.setenv("SOCLE_ENVIRONMENT", "test")
    monkeypatch.setenv("SOCLE_AUTH_KEY_ENCRYPTION_KEY", key.get_secret_value())
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_token_prints_a_bearer_the_server_accepts_on_its_last_line(env: None, provider: AuthProvider) -> None:
    result = CliRunner().invoke(cli, ["token", "--scope", "system/*.rs"])
    assert result.exit_code == 0, result.output
    bearer = result.stdout.strip().splitlines()[-1]
    claims = provider.verifier.verify(bearer)
    assert (claims.client_id, claims.actor_type, claims.scopes) == (
        "socle-operator",
        "system",
        ("system/*.rs",),
    )
    default = CliRunner().invoke(cli, ["token"])
    assert provider.verifier.verify(default.stdout.strip().splitlines()[-1]).scopes == ("system/*.*",)


def test_token_refuses_scopes_beyond_the_operator(env: None, provider: AuthProvider) -> None:
    result = CliRunner().invoke(cli, ["token", "--scope", "user/*.rs"])
    assert result.exit_code != 0
    assert isinstance(result.exception, Forbidden)


def test_rotate_keys_from_the_cli(env: None, provider: AuthProvider) -> None:
    before = provider.keyring.signing_key().kid
    assert CliRunner().invoke(cli, ["rotate-keys"]).exit_code == 0
    provider.keyring.reload()
    assert provider.keyring.signing_key().kid != before
    assert before in {key["kid"] for key in provider.keyring.jwks()["keys"]}


def test_demo_accounts_are_idempotent_and_usable(web: TestClient, provider: AuthProvider) -> None:
    settings = provider.settings
    first = seed_demo_accounts(provider.store, provider.engine, "http://testserver", settings=settings)
    again = seed_demo_accounts(provider.store, provider.engine, "http://testserver", settings=settings)
    assert [(a.login, a.totp_secret) for a in first] == [(a.login, a.totp_secret) for a in again]
    roles = [a.role for a in first]
    assert len(first) == 5 and any("Pharmacien" in r for r in roles) and any("Infirmière" in r for r in roles)
    parent, gp = first[0], first[1]
    assert parent.represented_patients == ("demo-leo-martin",)
    assert gp.login == "810001234565" and gp.current_code() and gp.otpauth_uri
    with provider.store.session(readonly=True) as session:
        assert session.exists("Patient", "demo-leo-martin")
        assert session.exists("Practitioner", "demo-dr-bernard")
        assert session.read("Patient", "demo-claire-martin").version == 1  # not rewritten by the 2nd run
    assert "otpauth://totp/Socle:" in parent.describe()

    # The citizen logs in with the printed password and TOTP, and authorizes the demo app.
    verifier, challenge = pkce_pair()
    url = (
        "/auth/authorize?response_type=code&client_id=demo-app&scope=openid+launch%2Fpatient+patient%2F*.rs"
        f"&redirect_uri=http%3A%2F%2Ftestserver%2Fauth%2Fdemo%2Fcallback&state=etat-123&code_challenge={challenge}"
        "&code_challenge_method=S256"
    )
    from socle.auth.accounts import EnrolledAccount, find_account

    account = find_account(provider.engine, "citizen", parent.login)
    assert account is not None and parent.totp_secret and parent.password
    login_citizen(
        web, provider, EnrolledAccount(account, parent.totp_secret), next_url=url, password=parent.password
    )
    redirected = consent(web, web.get(url), patient="demo-leo-martin")
    assert redirected.headers["location"].startswith("http://testserver/auth/demo/callback?code=")
    callback = web.get(redirected.headers["location"].removeprefix("http://testserver"))
    assert "autorisation reçu" in callback.text

    # The hospital software gets a system token with the private key the demo wrote.
    hospital = first[-1]
    assert hospital.private_key_path is not None and hospital.private_key_path.is_relative_to(
        settings.auth_demo_dir
    )
    assert stat.S_IMODE(hospital.private_key_path.stat().st_mode) == 0o600
    key = load_private_key(hospital.private_key_path)
    response = web.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "scope": "system/*.rs",
            **assertion_form(provider, "demo-hopital", key),
        },
    )
    assert response.status_code == 200, response.text
    assert verifier


def test_demo_is_refused_in_production(provider: AuthProvider) -> None:
    production = AuthSettings(
        environment="production",
        base_url="https://socle.example",
        auth_key_encryption_key=SecretStr("q8Zr3vN1pL6wX0tB5mK9cH2jF7gD4sA1eY6uI3oP"),
    )
    with pytest.raises(Forbidden):
        seed_demo_accounts(provider.store, provider.engine, "https://socle.example", settings=production)
