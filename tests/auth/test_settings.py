"""The auth settings refuse weak production configurations; local, dev and tests stay easy."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from socle.auth.settings import AuthSettings
from socle.auth.vault import Vault, VaultError

GOOD_SECRET = "q8Zr3vN1pL6wX0tB5mK9cH2jF7gD4sA1eY6uI3oP"


def production(**overrides: object) -> AuthSettings:
    values: dict[str, object] = {
        "environment": "production",
        "base_url": "https://socle.example",
        "auth_key_encryption_key": SecretStr(GOOD_SECRET),
    }
    values.update(overrides)
    return AuthSettings(**values)  # type: ignore[arg-type]


def test_a_sound_production_configuration_loads() -> None:
    settings = production()
    assert settings.issuer == "https://socle.example" and settings.fhir_base == "https://socle.example/fhir"
    assert not settings.relaxed


@pytest.mark.parametrize(
    "secret",
    [None, "change-me", "x" * 40, "my-secret-key-for-production-deployment!", "short-but-random-7Gq"],
)
def test_placeholder_or_missing_key_encryption_keys_are_refused(secret: str | None) -> None:
    with pytest.raises(ValidationError, match="SOCLE_AUTH_KEY_ENCRYPTION_KEY"):
        production(auth_key_encryption_key=SecretStr(secret) if secret else None)


def test_production_wants_https_and_real_argon2_costs() -> None:
    with pytest.raises(ValidationError, match="https"):
        production(base_url="http://socle.example")
    with pytest.raises(ValidationError, match="Argon2"):
        production(auth_argon2_memory_cost=1024)
    with pytest.raises(ValidationError):
        production(auth_access_token_minutes=60)  # access tokens live 15 minutes at most


def test_local_mode_keeps_a_generated_key_outside_the_repository(tmp_path: object) -> None:
    from pathlib import Path

    key_file = Path(str(tmp_path)) / "kek"
    settings = AuthSettings(environment="local", auth_key_file=key_file)
    sealed = Vault.from_settings(settings).seal(b"secret", owner="kid-1")
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert Vault.from_settings(settings).open(sealed, owner="kid-1") == b"secret"
    with pytest.raises(VaultError):
        Vault.from_settings(settings).open(sealed, owner="kid-2")  # bound to its owner
    with pytest.raises(VaultError):
        Vault("another-key-entirely-0123456789abcdef").open(sealed, owner="kid-1")
