"""The auth tables (SQLAlchemy Core, SQLite and PostgreSQL): credentials, clients, keys, codes, tokens.

No FHIR data lives here: an account only points at its Practitioner or Patient in the FHIR store.
Secrets are never stored in clear: private signing keys and TOTP secrets are sealed with the
key-encryption key (see `vault`), passwords are Argon2id hashes, and authorization codes, refresh
tokens and browser sessions are stored as SHA-256 digests of the random values handed out.
Times are epoch seconds (UTC). The schema is created by migration 0004; this module mirrors it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

signing_key = Table(
    "auth_signing_key",
    metadata,
    Column("kid", String(64), primary_key=True),  # RFC 7638 thumbprint of the public key
    Column("alg", String(16), nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("private_key", LargeBinary, nullable=False),  # PKCS#8 DER sealed by the vault
    Column("created_at", BigInteger, nullable=False),
    # Set when a newer key takes over: tokens it signed still verify until `verify_until`.
    Column("retired_at", BigInteger, nullable=True),
    Column("verify_until", BigInteger, nullable=True),
)

client = Table(
    "auth_client",
    metadata,
    Column("client_id", String(100), primary_key=True),
    Column("client_type", String(16), nullable=False),  # public | confidential | system
    Column("name", String(200), nullable=False),
    Column("redirect_uris", Text, nullable=False),  # JSON list
    Column("allowed_scopes", Text, nullable=False),  # JSON list
    Column("grant_types", Text, nullable=False),  # JSON list
    Column("auth_method", String(32), nullable=False),  # none | private_key_jwt
    Column("jwks", Text, nullable=True),  # the client's public keys, for private_key_jwt
    Column("pkce_required", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("disabled", Boolean, nullable=False),
)

account = Table(
    "auth_account",
    metadata,
    Column("account_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # professional | citizen
    Column("login", String(255), nullable=False),  # idNatPs, or a citizen's e-mail / user name
    Column("password_hash", Text, nullable=True),  # Argon2id; NULL for professionals (e-CPS stand-in)
    Column("totp_secret", LargeBinary, nullable=False),  # sealed by the vault
    Column("totp_last_step", BigInteger, nullable=False),  # refuses a replayed TOTP code
    Column("fhir_type", String(32), nullable=False),  # Practitioner | Patient
    Column("fhir_id", String(64), nullable=False),
    Column("given_name", String(200), nullable=False),
    Column("family_name", String(200), nullable=False),
    Column("national_id", String(64), nullable=True),  # idNatPs, or the citizen's INS matricule
    Column("profession", String(8), nullable=True),  # TRE_G15
    Column("specialty", String(16), nullable=True),  # TRE_R38
    Column("structure_id", String(64), nullable=True),  # idNatSt
    Column("structure_name", String(255), nullable=True),
    Column("structure_sector", String(16), nullable=True),  # TRE_R02
    Column("represented_patients", Text, nullable=False),  # JSON list of Patient ids (minors)
    Column("created_at", BigInteger, nullable=False),
    Column("disabled", Boolean, nullable=False),
    UniqueConstraint("kind", "login", name="uq_auth_account_login"),
)

# Failures are counted per submitted identifier (hashed), whether or not an account has it: an
# unknown login locks exactly like a known one, so the lock-out reveals nothing.
login_failure = Table(
    "auth_login_failure",
    metadata,
    Column("login_key", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", BigInteger, nullable=False),
    Column("locked_until", BigInteger, nullable=True),
)

session = Table(
    "auth_session",
    metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("csrf_token", String(64), nullable=False),
    Column("account_id", String(64), nullable=True),  # set once both factors passed
    Column("auth_time", BigInteger, nullable=True),
    Column("amr", Text, nullable=True),  # JSON list: ["pwd", "otp"] | ["otp"]
    # Between the first and the second factor: which login is being tried (the account may not exist).
    Column("pending_kind", String(16), nullable=True),
    Column("pending_login_key", String(64), nullable=True),
    Column("pending_account_id", String(64), nullable=True),
    Column("pending_until", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)
Index("ix_auth_session_expires", session.c.expires_at)

authorization_code = Table(
    "auth_code",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(100), nullable=False),
    Column("account_id", String(64), nullable=False),
    Column("grant_id", String(64), nullable=False),  # shared by every token this code leads to
    Column("redirect_uri", Text, nullable=True),
    Column("scope", Text, nullable=False),
    Column("nonce", String(255), nullable=True),
    Column("code_challenge", String(128), nullable=True),
    Column("code_challenge_method", String(16), nullable=True),
    Column("launch_patient", String(64), nullable=True),
    Column("auth_time", BigInteger, nullable=False),
    Column("amr", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),  # kept after use to detect a replayed code
)
Index("ix_auth_code_expires", authorization_code.c.expires_at)

refresh_token = Table(
    "auth_refresh_token",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("grant_id", String(64), nullable=False),
    Column("client_id", String(100), nullable=False),
    Column("account_id", String(64), nullable=False),
    Column("scope", Text, nullable=False),
    Column("launch_patient", String(64), nullable=True),
    Column("auth_time", BigInteger, nullable=False),
    Column("amr", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("rotated_at", BigInteger, nullable=True),  # used once: presenting it again revokes the grant
    Column("revoked_at", BigInteger, nullable=True),
)
Index("ix_auth_refresh_token_grant", refresh_token.c.grant_id)
Index("ix_auth_refresh_token_expires", refresh_token.c.expires_at)

# Revoked access-token ids (`jti`) and revoked grants (`sid`), kept until the tokens would have
# expired anyway; verification looks both up by primary key in one query.
revocation = Table(
    "auth_revocation",
    metadata,
    Column("revoked_id", String(100), primary_key=True),
    Column("kind", String(8), nullable=False),  # jti | grant
    Column("revoked_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)
Index("ix_auth_revocation_expires", revocation.c.expires_at)

# Client assertions (private_key_jwt) already seen, so that a captured one cannot be replayed.
assertion_jti = Table(
    "auth_assertion_jti",
    metadata,
    Column("client_id", String(100), nullable=False),
    Column("jti", String(255), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("client_id", "jti", name="pk_auth_assertion_jti"),
)
Index("ix_auth_assertion_jti_expires", assertion_jti.c.expires_at)

ALL_TABLES: tuple[Table, ...] = tuple(metadata.sorted_tables)
