"""The authentication settings, read once from the environment (prefix `SOCLE_`, e.g. `SOCLE_AUTH_ISSUER`).

Kept apart from `socle.config.Settings` so that the auth package owns its knobs: token lifetimes,
the key-encryption key that protects signing keys and TOTP secrets at rest, lock-out thresholds,
Argon2 costs. Outside local/dev/test the settings refuse to load with a missing or placeholder
key-encryption key, a non-https issuer, or Argon2 costs below the OWASP minimum; tests lower the
Argon2 costs through `environment="test"`.

    settings = AuthSettings(environment="test", key_encryption_key="...", argon2_memory_cost=8)
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

RELAXED_ENVIRONMENTS = frozenset({"local", "dev", "test"})
# Words that betray a secret copied from documentation or an example file.
PLACEHOLDER_MARKERS = ("change", "placeholder", "example", "secret", "xxxx", "todo", "dummy", "default")
MIN_SECRET_LENGTH = 32
# OWASP's floor for Argon2id (19 MiB, 2 passes); argon2-cffi's defaults (64 MiB, 3 passes) are above.
MIN_ARGON2_MEMORY_KIB = 19_456
MIN_ARGON2_TIME_COST = 2


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "socle"


def looks_like_placeholder(value: str) -> bool:
    lowered = value.strip().lower()
    return (
        len(lowered) < MIN_SECRET_LENGTH
        or len(set(lowered)) < 8
        or any(marker in lowered for marker in PLACEHOLDER_MARKERS)
    )


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOCLE_", extra="ignore")

    environment: str = "local"
    # Where the platform is reached; the issuer and the FHIR audience derive from it unless set.
    base_url: str = "http://127.0.0.1:8000"
    auth_issuer: str | None = None
    # Protects private signing keys and TOTP secrets at rest (AES-256-GCM under an HKDF-derived key).
    # Required outside local/dev/test; there, a random one is kept in `auth_key_file` (mode 0600).
    auth_key_encryption_key: SecretStr | None = None
    auth_key_file: Path = Field(default_factory=lambda: _data_home() / "auth-key-encryption.key")
    # Where the demo writes the hospital system client's private key (never inside the repository).
    auth_demo_dir: Path = Field(default_factory=lambda: _data_home() / "demo")

    auth_access_token_minutes: int = Field(default=10, ge=1, le=15)
    auth_id_token_minutes: int = Field(default=10, ge=1, le=60)
    auth_refresh_token_hours: int = Field(default=12, ge=1, le=24 * 90)
    auth_code_seconds: int = Field(default=60, ge=10, le=600)
    auth_session_hours: int = Field(default=8, ge=1, le=24)
    auth_login_step_minutes: int = Field(default=5, ge=1, le=30)
    # Clock skew tolerated on exp/nbf/iat, for our tokens and for client assertions.
    auth_leeway_seconds: int = Field(default=30, ge=0, le=300)
    # A client assertion must not live longer than this (its jti is remembered until it expires).
    auth_assertion_max_seconds: int = Field(default=300, ge=30, le=3600)
    # How long a process trusts its in-memory copy of the signing keys before re-reading them.
    auth_key_cache_seconds: int = Field(default=60, ge=0, le=3600)
    # How long a token found not revoked is trusted before the revocation table is probed again.
    # Bounds how late a revocation made by another process takes effect here (one made in this
    # process, e.g. through its revocation endpoint, is effective at once); 0 probes every request.
    auth_revocation_check_seconds: float = Field(default=2.0, ge=0, le=10)

    auth_lockout_threshold: int = Field(default=5, ge=1, le=100)
    auth_lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    auth_login_attempts_per_minute: int = Field(default=30, ge=1)

    auth_argon2_time_cost: int = Field(default=3, ge=1)
    auth_argon2_memory_cost: int = Field(default=65_536, ge=8)  # KiB
    auth_argon2_parallelism: int = Field(default=4, ge=1)

    @property
    def relaxed(self) -> bool:
        """Local, dev and test deployments: http allowed, a generated key-encryption key accepted."""
        return self.environment in RELAXED_ENVIRONMENTS

    @property
    def issuer(self) -> str:
        return (self.auth_issuer or self.base_url).rstrip("/")

    @property
    def fhir_base(self) -> str:
        return self.base_url.rstrip("/") + "/fhir"

    @model_validator(mode="after")
    def _refuse_weak_production_settings(self) -> AuthSettings:
        if self.environment != "test" and (
            self.auth_argon2_memory_cost < MIN_ARGON2_MEMORY_KIB
            or self.auth_argon2_time_cost < MIN_ARGON2_TIME_COST
        ):
            raise ValueError(
                "Argon2 costs below the OWASP minimum (19 MiB, 2 passes) are only allowed in tests "
                "(SOCLE_ENVIRONMENT=test)"
            )
        if self.relaxed:
            return self
        key = self.auth_key_encryption_key
        if key is None or looks_like_placeholder(key.get_secret_value()):
            raise ValueError(
                "SOCLE_AUTH_KEY_ENCRYPTION_KEY must be a random secret of at least 32 characters "
                f"outside local/dev (environment is {self.environment!r})"
            )
        if not self.issuer.startswith("https://"):
            raise ValueError(f"The issuer must be an https URL outside local/dev (got {self.issuer!r})")
        return self
